"""Storing, listing and acknowledging envelopes. Plain functions over a DB session."""

import hashlib
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from server.models import Account, MailboxEntry
from shared.api import ErrorDetail, SendResult
from shared.encoding import b64encode, canonical_json
from shared.envelope import Envelope


def _reject(envelope: Envelope, code: str, message: str) -> SendResult:
    return SendResult(
        id=envelope.id, status="rejected", error=ErrorDetail(code=code, message=message)
    )


def _routing_error(envelope: Envelope, sender: str, known: set[str]) -> SendResult | None:
    if envelope.sender != sender:
        return _reject(
            envelope,
            "sender_mismatch",
            f"Envelope sender is {envelope.sender} but the request is signed by {sender}.",
        )
    if envelope.recipient not in known:
        return _reject(
            envelope, "unknown_recipient", f"No account '{envelope.recipient}' on this relay."
        )
    if envelope.kind == "chat" and envelope.category != "service":
        return _reject(envelope, "invalid_category", "A chat message has category 'service'.")
    if envelope.kind == "template":
        return _reject(
            envelope,
            "unknown_template",
            "Template messages need a template registered on this relay.",
        )
    return None


def store_envelopes(
    session: Session,
    sender: str,
    envelopes: Sequence[Envelope],
    now_ms: int,
    *,
    retry: bool = True,
) -> tuple[list[SendResult], set[str]]:
    """Validate routing and store new envelopes idempotently.

    Returns one result per envelope, in order, and the recipients that got new mail. A resent
    envelope (same id, same sender, same ciphertext) is a ``duplicate``, not a second delivery;
    the same id with anything else is refused as ``id_conflict``.
    """
    recipients = {e.recipient for e in envelopes}
    known = set(session.exec(select(Account.handle).where(col(Account.handle).in_(recipients))))
    ids = [e.id for e in envelopes]
    existing = {
        row.msg_id: (row.sender, row.digest)
        for row in session.exec(select(MailboxEntry).where(col(MailboxEntry.msg_id).in_(ids)))
    }
    results: list[SendResult] = []
    new_rows: list[MailboxEntry] = []
    for envelope in envelopes:
        error = _routing_error(envelope, sender, known)
        if error:
            results.append(error)
            continue
        raw = envelope.ciphertext_bytes()
        # The digest covers routing fields too: a "retry" that changes them is a conflict.
        digest = hashlib.sha256(canonical_json(envelope.model_dump(mode="json"))).hexdigest()
        if envelope.id in existing:
            if existing[envelope.id] == (sender, digest):
                results.append(SendResult(id=envelope.id, status="duplicate"))
            else:
                results.append(
                    _reject(
                        envelope,
                        "id_conflict",
                        "This message id is taken by another message; use a fresh random id.",
                    )
                )
            continue
        existing[envelope.id] = (sender, digest)
        new_rows.append(
            MailboxEntry(
                msg_id=envelope.id,
                sender=sender,
                recipient=envelope.recipient,
                kind=envelope.kind,
                category=envelope.category,
                template_id=envelope.template_id,
                campaign_id=envelope.campaign_id,
                not_before=envelope.not_before,
                expires_at=envelope.expires_at,
                digest=digest,
                ciphertext=raw,
                received_at=now_ms,
            )
        )
        results.append(SendResult(id=envelope.id, status="accepted"))
    if not new_rows:
        return results, set()
    session.add_all(new_rows)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent request stored one of these ids first: redo the batch, which now sees it.
        session.rollback()
        if not retry:
            raise
        return store_envelopes(session, sender, envelopes, now_ms, retry=False)
    return results, {row.recipient for row in new_rows}


def pending(session: Session, recipient: str, after: int, limit: int) -> list[MailboxEntry]:
    """Unacknowledged envelopes of ``recipient`` with ``seq > after``, oldest first."""
    query = (
        select(MailboxEntry)
        .where(
            MailboxEntry.recipient == recipient,
            col(MailboxEntry.acked_at).is_(None),
            MailboxEntry.seq > after,
        )  # type: ignore[operator]
        .order_by(col(MailboxEntry.seq))
        .limit(limit)
    )
    return list(session.exec(query))


def acknowledge(
    session: Session, recipient: str, ids: Sequence[str], now_ms: int
) -> tuple[list[str], list[str]]:
    """Remove acked envelopes from ``recipient``'s mailbox; ids not pending there are untouched."""
    found = set(
        session.exec(
            select(MailboxEntry.msg_id).where(
                MailboxEntry.recipient == recipient,
                col(MailboxEntry.acked_at).is_(None),
                col(MailboxEntry.msg_id).in_(ids),
            )
        )
    )
    if found:
        session.exec(  # type: ignore[call-overload]
            update(MailboxEntry)
            .where(col(MailboxEntry.msg_id).in_(found), MailboxEntry.recipient == recipient)
            .values(acked_at=now_ms, ciphertext=b"")
        )
        session.commit()
    acked = [i for i in dict.fromkeys(ids) if i in found]
    unknown = [i for i in dict.fromkeys(ids) if i not in found]
    return acked, unknown


def to_envelope(row: MailboxEntry) -> Envelope:
    """The stored row as the envelope the sender submitted (already validated on the way in)."""
    return Envelope.model_construct(
        v=1,
        id=row.msg_id,
        sender=row.sender,
        recipient=row.recipient,
        kind=row.kind,  # type: ignore[arg-type]
        category=row.category,
        template_id=row.template_id,  # type: ignore[arg-type]
        campaign_id=row.campaign_id,
        not_before=row.not_before,
        expires_at=row.expires_at,
        ciphertext=b64encode(row.ciphertext),
    )
