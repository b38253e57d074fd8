"""Storing, listing and acknowledging envelopes. Plain functions over a DB session."""

import hashlib
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from server import frames, message_requests, quality
from server.billing import locked_campaign, reserve, settle_release
from server.frames import Frame
from server.known_accounts import KnownAccount, KnownAccounts
from server.message_requests import RequestBook, RequestRules
from server.models import (
    PENDING,
    BusinessChoice,
    Campaign,
    ChatContact,
    MailboxEntry,
    Template,
)
from server.notify import announce
from server.pricing import PriceTable
from server.ratelimit import TokenBuckets
from server.release import Candidate, decide
from server.sql_lists import one_of
from shared.api import ErrorDetail, SendResult
from shared.encoding import b64encode
from shared.envelope import CHAT_CATEGORIES, Envelope
from shared.templates import TemplateDraft, priced_category
from shared.version import MAX_CIPHERTEXT_BYTES

HOUR_MS = 3_600_000
_MAILBOX = MailboxEntry.__table__  # type: ignore[attr-defined]


@dataclass
class RoutingRules:
    """The relay's settings that decide what may be routed."""

    prices: PriceTable
    service_window_ms: int = 24 * HOUR_MS
    daily_cap: int = 2
    # Chat from one sender to one recipient, in envelopes and in bytes (server/ratelimit.py).
    # A bucket per pair, not a count of unread mail: what is unread depends on whether the
    # person reads or blocked the sender, and the answer would tell the sender which.
    # Campaign copies are bounded by one per person per campaign, and by money, instead.
    pair_envelopes: TokenBuckets | None = None
    pair_bytes: TokenBuckets | None = None
    # Strangers' messages before the person accepts them (server/message_requests.py).
    requests: RequestRules = field(default_factory=RequestRules)
    # What one mailbox holds undelivered, counting every sender's chats: the pair buckets
    # bound each sender, this bounds many senders (each one accepted) writing at once.
    mailbox_envelopes: int = 10_000
    mailbox_bytes: int = 256 * 1024 * 1024
    # Refuse copies of a template paused or disabled for its quality (server/quality.py).
    template_quality: bool = True


@dataclass
class StoreOutcome:
    results: list[SendResult]
    woken: set[str] = field(default_factory=set)  # recipients with new pending mail
    # Their new envelopes' stream frames, for recipients with a stream open in this process;
    # None for the others ("look in the database", in case a stream opened meanwhile).
    pushed: dict[str, list[Frame] | None] = field(default_factory=dict)


def envelope_digest(envelope: Envelope) -> str:
    """sha256 over every field of the envelope, so a "retry" that changes any is a conflict.

    Stored with the row, so these bytes must never change: each routing field as ``str()``
    would print it (None as "None"), a newline after each, then the base64 ciphertext.
    """
    e = envelope
    routing = (
        f"{e.id}\n{e.sender}\n{e.recipient}\n{e.kind}\n{e.category}\n{e.template_id}\n"
        f"{e.campaign_id}\n{e.not_before}\n{e.expires_at}\n{e.ciphertext}"
    )
    return hashlib.sha256(routing.encode()).hexdigest()


def _reject(envelope: Envelope, code: str, message: str) -> SendResult:
    return SendResult(
        id=envelope.id, status="rejected", error=ErrorDetail(code=code, message=message)
    )


class _Batch:
    """Everything a batch needs from the database, loaded once."""

    def __init__(
        self,
        session: Session,
        sender: KnownAccount,
        envelopes: Sequence[Envelope],
        directory: KnownAccounts,
        now_ms: int,
        mailbox_bytes: int,
        template_quality: bool = True,
    ) -> None:
        # Accounts never change once registered: the process's directory answers most of a
        # campaign's recipients from memory (server/known_accounts.py).
        self.accounts = directory.get_many(session, list({e.recipient for e in envelopes}))
        self.templates = {
            t.id: t
            for t in session.exec(
                select(Template).where(
                    one_of(Template.id, {e.template_id for e in envelopes if e.template_id})
                )
            )
        }
        # A paused or disabled template's copies are refused, as its new campaigns are.
        self.unusable = (
            quality.unusable(session, list(self.templates), now_ms) if template_quality else {}
        )
        campaign_ids = sorted({e.campaign_id for e in envelopes if e.campaign_id})
        # Locked in a fixed order so two batches of overlapping campaigns cannot deadlock.
        self.campaigns: dict[str, Campaign] = {}
        for cid in campaign_ids:
            campaign = locked_campaign(session, cid)
            if campaign is not None:
                self.campaigns[cid] = campaign
        # Who already has a copy of these campaigns: one copy per person per campaign is
        # what bounds one person's weight in the campaign's published figures.
        self.has_copy: set[tuple[str, str]] = set()
        if self.campaigns:
            self.has_copy = {
                (row.campaign_id, row.recipient)
                for row in session.execute(
                    select(MailboxEntry.campaign_id, MailboxEntry.recipient).where(
                        one_of(MailboxEntry.campaign_id, list(self.campaigns)),
                        one_of(
                            MailboxEntry.recipient,
                            list({e.recipient for e in envelopes if e.campaign_id}),
                        ),
                    )
                )
            }
        self._priced_as: dict[str, str] = {}
        # A template copy's verdict on everything but its recipient, per distinct routing:
        # a campaign batch is a thousand copies of one.
        self.template_verdicts: dict[tuple[Any, ...], tuple[str, str] | None] = {}
        # Blocks and service windows matter to chat messages only (template messages meet
        # the person's choices at release, server/release.py).
        persons = [
            e.recipient
            for e in envelopes
            if e.kind == "chat" and getattr(self.accounts.get(e.recipient), "kind", "") == "person"
        ]
        self.blocked_by: set[str] = set()
        self.windows: dict[str, int] = {}
        chats = [e for e in envelopes if e.kind == "chat" and e.recipient in self.accounts]
        self.requests = RequestBook.load(
            session,
            {(p, sender.handle) for p in persons},
            now_ms,
            # A person writing accepts whom they write to (_record_chat_contacts).
            writer=sender.handle if sender.kind == "person" else None,
            written={e.recipient for e in chats},
        )
        self.pending = _pending_sizes(session, chats, mailbox_bytes)
        if not persons:
            return
        self.blocked_by = set(
            session.exec(
                select(BusinessChoice.person).where(
                    BusinessChoice.business == sender.handle,
                    one_of(BusinessChoice.person, persons),
                    col(BusinessChoice.blocked),
                )
            )
        )
        if sender.kind == "business":
            for contact in session.exec(
                select(ChatContact).where(
                    ChatContact.business == sender.handle, one_of(ChatContact.person, persons)
                )
            ):
                self.windows[contact.person] = contact.last_at

    def priced_as(self, template_id: str) -> str:
        """The category this template's copies are priced as (shared/templates.py)."""
        if template_id not in self._priced_as:
            template = self.templates[template_id]
            draft = TemplateDraft.model_validate_json(template.definition)
            self._priced_as[template_id] = priced_category(template.category, draft)
        return self._priced_as[template_id]


def _chat_error(
    envelope: Envelope, sender: KnownAccount, batch: _Batch, rules: RoutingRules, now_ms: int
) -> SendResult | None:
    if envelope.category not in CHAT_CATEGORIES:
        return _reject(
            envelope, "invalid_category", "A chat message has category 'service' or 'quick_reply'."
        )
    recipient = batch.accounts[envelope.recipient]
    if envelope.category == "quick_reply" and (
        sender.kind != "person" or recipient.kind != "business"
    ):
        return _reject(
            envelope,
            "invalid_category",
            "A quick reply is a person's answer to a business's button; write a chat instead.",
        )
    if envelope.template_id or envelope.campaign_id:
        return _reject(envelope, "invalid_request", "Chat messages carry no template or campaign.")
    if sender.kind == "business" and recipient.kind == "person":
        last = batch.windows.get(recipient.handle)
        if last is None or now_ms - last > rules.service_window_ms:
            hours = rules.service_window_ms // HOUR_MS
            return _reject(
                envelope,
                "outside_service_window",
                f"A business may write free-form only within {hours} h of the person's last "
                "message to it; send an approved template instead.",
            )
    ciphertext = envelope.ciphertext  # base64: its decoded length, without decoding it
    size = len(ciphertext) * 3 // 4 - ciphertext[-2:].count("=")
    held, held_bytes = batch.pending.get(recipient.handle, (0, 0))
    if held >= rules.mailbox_envelopes or held_bytes + size > rules.mailbox_bytes:
        # Checked before the block, so a blocked sender is told what everyone is told.
        return _reject(
            envelope,
            "mailbox_full",
            f"{recipient.handle}'s mailbox holds as much undelivered mail as the relay keeps "
            f"for one account ({rules.mailbox_envelopes:,} messages or "
            f"{rules.mailbox_bytes:,} bytes); retry once they have caught up.",
        )
    error = _admit_chat(envelope, sender, recipient, batch, rules)
    if error is None:
        batch.pending[recipient.handle] = (held + 1, held_bytes + size)
    return error


def _admit_chat(
    envelope: Envelope,
    sender: KnownAccount,
    recipient: KnownAccount,
    batch: _Batch,
    rules: RoutingRules,
) -> SendResult | None:
    """The message-request and per-pair limits; None when the chat is stored."""
    if recipient.kind != "person":
        return _pair_limit(envelope, sender, rules)
    # Counted whether or not the person blocked the sender, so the answers match.
    code = batch.requests.refusal(recipient.handle, sender.handle, rules.requests)
    if code is not None:
        return SendResult(
            id=envelope.id, status="rejected", error=rules.requests.error(code, recipient.handle)
        )
    error = _pair_limit(envelope, sender, rules)
    if error is None:
        batch.requests.count(recipient.handle, sender.handle)
    return error


def _pending_sizes(
    session: Session, chats: Sequence[Envelope], mailbox_bytes: int
) -> dict[str, tuple[int, int]]:
    """Per recipient of ``chats``: envelopes and ciphertext bytes waiting in the mailbox.

    Bytes are summed only where they could reach ``mailbox_bytes`` with this batch: reading
    every waiting ciphertext's length on each submission cost more than the rest of it."""
    if not chats:
        return {}
    table = _MAILBOX
    coming: dict[str, int] = {}
    for envelope in chats:
        coming[envelope.recipient] = coming.get(envelope.recipient, 0) + len(envelope.ciphertext)
    counts = {
        r: int(n)
        for r, n in session.execute(
            select(table.c.recipient, func.count())
            .where(one_of(table.c.recipient, list(coming)), table.c.state == PENDING)
            .group_by(table.c.recipient)
        )
    }
    # Bounded by the largest ciphertext a waiting envelope can have (and the batch's own,
    # in base64, which is larger than its bytes).
    near = [r for r, n in counts.items() if n * MAX_CIPHERTEXT_BYTES + coming[r] > mailbox_bytes]
    sizes: dict[str, int] = {}
    if near:
        sizes = {
            r: int(size)
            for r, size in session.execute(
                select(table.c.recipient, func.sum(func.length(table.c.ciphertext)))
                .where(one_of(table.c.recipient, near), table.c.state == PENDING)
                .group_by(table.c.recipient)
            )
        }
    return {r: (n, sizes.get(r, 0)) for r, n in counts.items()}


def _pair_limit(envelope: Envelope, sender: KnownAccount, rules: RoutingRules) -> SendResult | None:
    """One sender's chat to one recipient, per hour, in envelopes and bytes; checked last, so
    only an envelope that would be stored spends anything."""
    if rules.pair_envelopes is None or rules.pair_bytes is None:
        return None
    pair = f"{sender.handle}>{envelope.recipient}"
    ciphertext = envelope.ciphertext  # base64: its decoded length, without decoding it
    size = len(ciphertext) * 3 // 4 - ciphertext[-2:].count("=")
    wait = rules.pair_envelopes.take(pair) or rules.pair_bytes.take(pair, size)
    if not wait:
        return None
    return _reject(
        envelope,
        "too_many_to_recipient",
        f"You have sent {envelope.recipient} as much as one sender may in an hour "
        f"({rules.pair_envelopes.burst:,} messages or {rules.pair_bytes.burst:,} bytes); "
        f"retry after {wait:.0f} s.",
    )


def _template_error(envelope: Envelope, sender: KnownAccount, batch: _Batch) -> SendResult | None:
    key = (
        envelope.template_id,
        envelope.campaign_id,
        envelope.category,
        envelope.not_before,
        envelope.expires_at,
    )
    if key in batch.template_verdicts:
        verdict = batch.template_verdicts[key]
    else:
        verdict = batch.template_verdicts[key] = _template_verdict(envelope, sender, batch)
    if verdict is not None:
        return _reject(envelope, *verdict)
    if batch.accounts[envelope.recipient].kind != "person":
        return _reject(envelope, "not_a_person", "Template messages go to persons only.")
    return None


def _template_verdict(
    envelope: Envelope, sender: KnownAccount, batch: _Batch
) -> tuple[str, str] | None:
    """Why a template envelope with this routing is refused (code, message), whoever it is for."""
    if not envelope.template_id or not envelope.campaign_id:
        return "invalid_request", "A template message names its template_id and campaign_id."
    template = batch.templates.get(envelope.template_id or "")
    if template is None or template.business != sender.handle:
        return (
            "unknown_template",
            f"No template '{envelope.template_id}' registered by {sender.handle}.",
        )
    if envelope.category != template.category:
        return (
            "category_mismatch",
            f"Template '{template.id}' is registered as {template.category}; the "
            f"envelope says {envelope.category}.",
        )
    campaign = batch.campaigns.get(envelope.campaign_id or "")
    if campaign is None or campaign.business != sender.handle:
        return (
            "unknown_campaign",
            f"No campaign '{envelope.campaign_id}' of {sender.handle}; create one first.",
        )
    if campaign.template_id != template.id:
        return (
            "campaign_mismatch",
            f"Campaign '{campaign.id}' sends template '{campaign.template_id}'.",
        )
    if campaign.cancelled:
        return "campaign_cancelled", f"Campaign '{campaign.id}' was cancelled."
    if campaign.stop_reason:
        return "campaign_stopped", f"Campaign '{campaign.id}' stopped: {campaign.stop_reason}."
    if template.id in batch.unusable:
        return batch.unusable[template.id]
    for name, value, want in (
        ("not_before", envelope.not_before, campaign.send_at),
        ("expires_at", envelope.expires_at, campaign.expires_at),
    ):
        if value is not None and value != want:
            return "campaign_mismatch", f"{name} must be omitted or equal the campaign's ({want})."
    return None


def store_envelopes(
    session: Session,
    sender: KnownAccount,
    envelopes: Sequence[Envelope],
    rules: RoutingRules,
    now_ms: int,
    *,
    listening: Callable[[str], bool] | None = None,
    origin: str = "",
    directory: KnownAccounts,
    retry: bool = True,
) -> StoreOutcome:
    """Validate routing and store new envelopes idempotently, in one transaction.

    Returns one result per envelope, in order. A resent envelope (same id, same sender, same
    bytes) is a ``duplicate``, not a second delivery; the same id with anything else is an
    ``id_conflict``. Template messages are priced and their money reserved here; those due now
    are released or refused at once by the recipient's choices, later ones wait in state
    ``scheduled`` for the dispatcher. ``listening(handle)`` says whether a stream of that
    recipient is open here: only those get their envelopes built for the push; ``origin``
    names this relay in its announcements to the others (server/notify.py); ``directory``,
    the process's cache of accounts, spares looking up known recipients.
    """
    batch = _Batch(
        session,
        sender,
        envelopes,
        directory,
        now_ms,
        rules.mailbox_bytes,
        template_quality=rules.template_quality,
    )
    existing = {
        row.msg_id: (row.sender, row.digest)
        for row in session.execute(
            select(MailboxEntry.msg_id, MailboxEntry.sender, MailboxEntry.digest).where(
                one_of(MailboxEntry.msg_id, [e.id for e in envelopes])
            )
        )
    }
    results: list[SendResult | None] = []
    rows: list[dict[str, Any] | None] = []  # plain dicts: ORM objects cost 10x more per row
    for envelope in envelopes:
        digest = envelope_digest(envelope)
        error = _first_error(envelope, sender, batch, rules, existing, digest, now_ms)
        if error is not None:
            results.append(error)
            rows.append(None)
            continue
        if envelope.kind == "template":
            copy = (envelope.campaign_id or "", envelope.recipient)
            if copy in batch.has_copy:
                results.append(
                    _reject(
                        envelope,
                        "duplicate_recipient",
                        f"Campaign '{copy[0]}' already has a copy for {copy[1]}; a campaign "
                        "sends one copy per person.",
                    )
                )
                rows.append(None)
                continue
            batch.has_copy.add(copy)
        existing[envelope.id] = (sender.handle, digest)
        row = _row(envelope, digest, now_ms)
        if envelope.kind == "template":
            campaign = batch.campaigns[envelope.campaign_id or ""]
            country = batch.accounts[envelope.recipient].country
            row.update(
                not_before=campaign.send_at,
                expires_at=campaign.expires_at,
                price=rules.prices.price(country, batch.priced_as(envelope.template_id or "")),
                state="scheduled",
            )
        elif envelope.recipient in batch.blocked_by:
            # Blocked: accepted as far as the sender can tell, but never delivered.
            row.update(state="refused", refusal="blocked", ciphertext=b"")
        else:
            row["released_at"] = now_ms
        results.append(SendResult(id=envelope.id, status="accepted"))
        rows.append(row)
    _reserve_campaign_money(session, batch, envelopes, rows, results, now_ms)
    _note_campaign_progress(batch, envelopes, results, now_ms)
    new_rows = [r for r in rows if r is not None]
    _release_due(session, new_rows, rules, now_ms)
    _record_chat_contacts(session, sender, batch, new_rows, now_ms)
    batch.requests.save(session, now_ms)
    woken = {r["recipient"] for r in new_rows if r["state"] == "pending"}
    pushed: dict[str, list[Frame] | None] = {}
    pending_seqs: list[int] = []
    try:
        if new_rows:
            seqs = _insert_rows(session, new_rows)
            # Decided once per recipient, so a stream opening mid-batch gets all or nothing.
            live = {r: listening is None or listening(r) for r in woken}
            for row, seq in zip(new_rows, seqs, strict=True):
                recipient = row["recipient"]
                if row["state"] != "pending":
                    continue
                pending_seqs.append(seq)
                if live[recipient]:
                    pushed.setdefault(recipient, []).append(frames.from_stored(row, seq))  # type: ignore[union-attr]
                else:
                    pushed[recipient] = None
        span = (min(pending_seqs), max(pending_seqs)) if pending_seqs else None
        announce(session, woken, origin, span)
        session.commit()
    except IntegrityError:
        # A concurrent request stored one of these ids first: redo the batch, which now sees it.
        session.rollback()
        if not retry:
            raise
        return store_envelopes(
            session,
            sender,
            envelopes,
            rules,
            now_ms,
            listening=listening,
            origin=origin,
            directory=directory,
            retry=False,
        )
    return StoreOutcome(results=[r for r in results if r is not None], woken=woken, pushed=pushed)


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert mailbox ``rows``; their ``seq`` numbers, in order."""
    table = _MAILBOX
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _insert_rows_pg(connection, rows)
    # SQLite: the driver's own executemany on this transaction's connection, several times
    # cheaper than INSERT ... RETURNING for a batch of 1,000 (and than SQLAlchemy turning
    # each row's dict into parameters). The transaction holds SQLite's only write lock
    # (BEGIN IMMEDIATE), and seq is the rowid, so the rows got consecutive numbers ending at
    # last_insert_rowid().
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_INSERT, [_row_values(r) for r in rows])
        last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
    finally:
        cursor.close()
    first = last - len(rows) + 1
    ends = dict(
        connection.execute(
            select(table.c.seq, table.c.msg_id).where(table.c.seq.in_({first, last}))
        ).all()
    )
    if ends.get(first) != rows[0]["msg_id"] or ends.get(last) != rows[-1]["msg_id"]:
        # Not consecutive after all: ask for each row's number.
        found = dict(
            connection.execute(
                select(table.c.msg_id, table.c.seq).where(
                    one_of(table.c.msg_id, [r["msg_id"] for r in rows])
                )
            ).all()
        )
        return [found[r["msg_id"]] for r in rows]
    return list(range(first, last + 1))


def _insert_rows_pg(connection: Any, rows: list[dict[str, Any]]) -> list[int]:
    """PostgreSQL: one short statement whose parameters are one array per column.

    A multi-row ``INSERT ... VALUES`` of 1,000 rows has 17,000 placeholders, and psycopg
    parses a query that long anew on every call (it caches only short ones): that parsing was
    a third of the relay's CPU while delivering. This statement is the same text each time,
    so psycopg parses it once and the server prepares it once. The arrays go in binary
    (``%b``): psycopg wrote them as text at ~10 ms per batch, in binary at ~2.
    """
    columns = [[row[name] for row in rows] for name in _ROW_COLUMNS]
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(_PG_INSERT, columns)
        found = dict(cursor.fetchall())
    finally:
        cursor.close()
    return [found[r["msg_id"]] for r in rows]


def _first_error(
    envelope: Envelope,
    sender: KnownAccount,
    batch: _Batch,
    rules: RoutingRules,
    existing: dict[str, tuple[str, str]],
    digest: str,
    now_ms: int,
) -> SendResult | None:
    if envelope.sender != sender.handle:
        return _reject(
            envelope,
            "sender_mismatch",
            f"Envelope sender is {envelope.sender} but the request is signed by {sender.handle}.",
        )
    if envelope.id in existing:
        if existing[envelope.id] == (sender.handle, digest):
            return SendResult(id=envelope.id, status="duplicate")
        return _reject(
            envelope,
            "id_conflict",
            "This message id is taken by another message; use a fresh random id.",
        )
    if envelope.recipient not in batch.accounts:
        return _reject(
            envelope, "unknown_recipient", f"No account '{envelope.recipient}' on this relay."
        )
    if envelope.kind == "chat":
        return _chat_error(envelope, sender, batch, rules, now_ms)
    return _template_error(envelope, sender, batch)


def _reserve_campaign_money(
    session: Session,
    batch: _Batch,
    envelopes: Sequence[Envelope],
    rows: list[dict[str, Any] | None],
    results: list[SendResult | None],
    now_ms: int,
) -> None:
    """Reserve each campaign's new messages in order; the ones that don't fit are refused."""
    for campaign_id, campaign in batch.campaigns.items():
        indexes = [
            i for i, r in enumerate(rows) if r is not None and r["campaign_id"] == campaign_id
        ]
        if not indexes:
            continue
        fitted, why = reserve(session, campaign, [rows[i]["price"] for i in indexes], now_ms)  # type: ignore[index]
        campaign.accepted += fitted
        if why == "budget_exhausted":
            campaign.rejected_budget += len(indexes) - fitted
        for i in indexes[fitted:]:
            message = (
                f"Campaign '{campaign_id}' has spent its budget: {campaign.stop_reason}."
                if why == "budget_exhausted"
                else "The business balance cannot cover this message; top up and resend."
            )
            results[i] = _reject(envelopes[i], why, message)
            rows[i] = None


def _note_campaign_progress(
    batch: _Batch,
    envelopes: Sequence[Envelope],
    results: Sequence[SendResult | None],
    now_ms: int,
) -> None:
    """When each campaign's copies last came, and how many were refused (other than for
    money, counted apart): what says a campaign's submission was cut short."""
    for envelope, result in zip(envelopes, results, strict=True):
        campaign = batch.campaigns.get(envelope.campaign_id or "")
        if campaign is None or campaign.business != envelope.sender:
            continue
        campaign.last_copy_at = now_ms
        if result is not None and result.error is not None:
            if result.error.code != "budget_exhausted":
                campaign.rejected += 1


def _release_due(
    session: Session, rows: list[dict[str, Any]], rules: RoutingRules, now_ms: int
) -> None:
    """Apply people's choices now to template messages already due, as the dispatcher would:
    sending them through a separate pass would cost a second write of every row."""
    due = [r for r in rows if r["state"] == "scheduled" and r["not_before"] <= now_ms]
    if not due:
        return
    candidates = [
        Candidate(r["recipient"], r["sender"], r["category"], r["expires_at"]) for r in due
    ]
    outcomes = decide(session, candidates, now_ms, rules.daily_cap, rules.requests)
    for row, outcome in zip(due, outcomes, strict=True):
        if outcome is None:
            row.update(state="pending", released_at=now_ms)
        elif outcome == "expired":  # expired before its send time: never sent
            row.update(state="expired", ciphertext=b"")
        else:
            row.update(state="refused", refusal=outcome, ciphertext=b"")
    settle_release(
        session,
        (
            ((r["campaign_id"], r["sender"], r["price"]), outcome)
            for r, outcome in zip(due, outcomes, strict=True)
        ),
        now_ms,
    )


def _record_chat_contacts(
    session: Session, sender: KnownAccount, batch: _Batch, rows: list[dict[str, Any]], now_ms: int
) -> None:
    """A person writing to a business opens its service window and counts as 'chatted'
    (a quick reply does neither: a business's button must not open the window for its
    free-form messages); writing to anyone accepts them (no longer a message request)."""
    if sender.kind != "person":
        return
    message_requests.accept(
        session,
        sender.handle,
        {r["recipient"] for r in rows if r["kind"] == "chat"},
        now_ms,
        known=batch.requests.writer_accepts,
    )
    for business in {r["recipient"] for r in rows if r["category"] == "service"}:
        if batch.accounts[business].kind != "business":
            continue
        contact = session.get(ChatContact, (sender.handle, business))
        if contact is None:
            session.add(ChatContact(person=sender.handle, business=business, last_at=now_ms))
        else:
            contact.last_at = now_ms


def _row(envelope: Envelope, digest: str, now_ms: int) -> dict[str, Any]:
    return {
        "msg_id": envelope.id,
        "sender": envelope.sender,
        "recipient": envelope.recipient,
        "kind": envelope.kind,
        "category": envelope.category,
        "template_id": envelope.template_id,
        "campaign_id": envelope.campaign_id,
        "not_before": envelope.not_before,
        "expires_at": envelope.expires_at,
        "digest": digest,
        "ciphertext": envelope.ciphertext_bytes(),
        "received_at": now_ms,
        "state": "pending",
        "released_at": None,
        "acked_at": None,
        "price": 0,
        "refusal": None,
    }


# Every column a stored row sets (all but seq), in the order of _SQLITE_INSERT's placeholders.
_ROW_COLUMNS = tuple(c.name for c in _MAILBOX.columns if c.name != "seq")
_row_values = operator.itemgetter(*_ROW_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO relay_mailbox ({', '.join(_ROW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_ROW_COLUMNS))})"
)


def _pg_array_type(column_type: Any) -> str:
    # text[], not varchar(n)[]: an explicit cast to varchar(n) truncates silently, while the
    # insert's own assignment to the column refuses a value that is too long.
    name = column_type.compile(dialect=postgresql.dialect())
    return "text[]" if name.startswith("VARCHAR") else f"{name}[]"


# RETURNING's order is not promised, so rows are matched to their numbers by id (unique).
_PG_INSERT = (
    f"INSERT INTO relay_mailbox ({', '.join(_ROW_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%b::{_pg_array_type(_MAILBOX.c[name].type)}" for name in _ROW_COLUMNS)
    + ") RETURNING msg_id, seq"
)


_ENVELOPE_COLUMNS = [
    getattr(_MAILBOX.c, name)
    for name in (
        "seq",
        "msg_id",
        "sender",
        "recipient",
        "kind",
        "category",
        "template_id",
        "campaign_id",
        "not_before",
        "expires_at",
        "ciphertext",
    )
]


# Built once: every stream re-reads its mailbox at each keepalive (a thousand streams, dozens
# of reads a second), and building the statement cost more than running it.
_PENDING = (
    select(*_ENVELOPE_COLUMNS)
    .where(
        _MAILBOX.c.recipient == bindparam("whose"),
        _MAILBOX.c.state == PENDING,
        _MAILBOX.c.seq > bindparam("after"),
    )
    .order_by(_MAILBOX.c.seq)
    .limit(bindparam("most"))
)


def pending_frames(
    session: Session, recipients: Sequence[str], limit: int, seqs: tuple[int, int] | None = None
) -> dict[str, list[Frame]] | None:
    """Every pending envelope of ``recipients`` (numbered within ``seqs``, when given), as
    stream frames, in one query; None if there are more than ``limit`` (then each stream had
    better read its own page).

    The range is another relay's new batch. Without it, a read after each of its batches
    returned everything still unacked too (acks come seconds later), more each time, until
    the limit sent every stream to the database on its own: on two relays that was most of
    PostgreSQL's work. A range holds at most a batch, so it is read whatever the limit.
    """
    table = _MAILBOX
    query = select(*_ENVELOPE_COLUMNS).where(
        one_of(table.c.recipient, recipients), table.c.state == PENDING
    )
    if seqs is not None:
        query = query.where(table.c.seq.between(*seqs))
        limit = max(limit, seqs[1] - seqs[0] + 1)
    query = query.order_by(table.c.seq).limit(limit + 1)
    rows = list(session.execute(query))
    if len(rows) > limit:
        return None
    found: dict[str, list[Frame]] = {}
    for row in rows:
        found.setdefault(row.recipient, []).append(frames.from_row(row))
    return found


def pending(session: Session, recipient: str, after: int, limit: int) -> list[Any]:
    """Envelopes waiting in ``recipient``'s mailbox with ``seq > after``, oldest first: rows
    of just the columns an envelope needs (ORM objects cost several times more to build)."""
    return list(session.execute(_PENDING, {"whose": recipient, "after": after, "most": limit}))


# Built once: acks are the relay's most frequent write, and building this statement cost more
# CPU than running it. Core, on the few columns needed: loading whole rows (ciphertext
# included) into the ORM cost most of an ack's CPU.
_ACK = (
    update(_MAILBOX)
    .where(
        # Parameter names unlike any column's: SQLAlchemy would take those for SET values.
        _MAILBOX.c.recipient == bindparam("whose"),
        _MAILBOX.c.state == PENDING,
        one_of(_MAILBOX.c.msg_id, param="which"),
    )
    .values(state="acked", acked_at=bindparam("when"), ciphertext=b"")
    .returning(_MAILBOX.c.msg_id)
)


def acknowledge(
    session: Session, recipient: str, ids: Sequence[str], now_ms: int
) -> tuple[list[str], list[str]]:
    """Remove acked envelopes from ``recipient``'s mailbox.

    Ids not pending in this mailbox change nothing (and are reported as unknown). The caller
    commits: several acks may share a transaction (server/group_commit.py).
    """
    # One UPDATE ... RETURNING: the rows it changed are exactly the ones acked now. Nothing is
    # charged here: copies are paid for when released, so an ack moves no money (a charge
    # at ack time would tell the business when a person was online).
    rows = list(session.execute(_ACK, {"whose": recipient, "which": list(ids), "when": now_ms}))
    found = {r.msg_id for r in rows}
    unique = list(dict.fromkeys(ids))
    return [i for i in unique if i in found], [i for i in unique if i not in found]


def to_envelope(row: Any) -> Envelope:
    """The stored row as the envelope the sender submitted (already validated on the way in)."""
    return Envelope.model_construct(
        v=1,
        id=row.msg_id,
        sender=row.sender,
        recipient=row.recipient,
        kind=row.kind,
        category=row.category,
        template_id=row.template_id,
        campaign_id=row.campaign_id,
        not_before=row.not_before,
        expires_at=row.expires_at,
        ciphertext=b64encode(row.ciphertext),
    )
