"""Anonymous interaction signals on the relay: token issuance, redemption, tallies.

Issuance happens on the authenticated channel (the relay knows who received a campaign
anyway); redemption on the anonymous one. The VOPRF blinding (shared.tokens) means the
relay cannot link a redeemed token to the issuance it came from, and the per-campaign key is
published with a proof on every evaluation, so it cannot tag one person with a key of their
own. Only per-campaign sums are stored, never the reports.
"""

import functools
import hashlib
import secrets
import weakref
from typing import Any

from sqlalchemy import Engine, bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from server import token_log
from server.errors import ApiError
from server.models import (
    Campaign,
    MailboxEntry,
    RelaySecret,
    SignalTally,
    TokenIssue,
    TokenLogEntry,
    TokenSpent,
)
from shared.encoding import b64encode
from shared.signals import REPORT_VALUES, InvalidReport, ReportValue, SignalReport, decode_report
from shared.tokens import IssuerKey, TokenError, evaluate, verify_token

MASTER = "signal_token_master"


def master_secret(session: Session) -> bytes:
    """The relay-wide secret campaign keys derive from; created once, shared by processes."""
    row = session.get(RelaySecret, MASTER)
    if row is None:
        session.add(RelaySecret(name=MASTER, value=secrets.token_bytes(32)))
        try:
            session.commit()
        except IntegrityError:  # another process created it first
            session.rollback()
        row = session.get(RelaySecret, MASTER)
        assert row is not None
    return row.value


# Per database (its engine), what never changes once found, so that issuing a token does not
# read it again for every copy: each known campaign's key (campaigns are never deleted, and a
# key is a function of the master secret and the campaign), and the campaigns whose key the
# token key log holds (append-only: an entry once committed stays).
_KNOWN_KEYS: "weakref.WeakKeyDictionary[object, dict[str, IssuerKey]]" = weakref.WeakKeyDictionary()
_LOGGED: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()


def _per_database(
    cache: "weakref.WeakKeyDictionary[object, Any]", session: Session, new: Any
) -> Any:
    bind = session.get_bind()
    found = cache.get(bind)
    if found is None:
        found = cache[bind] = new
    return found


def campaign_key(session: Session, campaign_id: str) -> IssuerKey:
    known: dict[str, IssuerKey] = _per_database(_KNOWN_KEYS, session, {})
    key = known.get(campaign_id)
    if key is None:
        if session.get(Campaign, campaign_id) is None:
            raise ApiError(404, "unknown_campaign", f"No campaign '{campaign_id}'.")
        key = known[campaign_id] = _derived(master_secret(session), campaign_id)
    return key


@functools.lru_cache(maxsize=4096)
def _derived(master: bytes, campaign_id: str) -> IssuerKey:
    """The campaign's key pair: the same for the same secret and campaign, so derived once
    (a hash to a scalar and a base-point multiplication, on every token it issued)."""
    return IssuerKey.derive(master, f"campaign:{campaign_id}")


def publish_key(session: Session, campaign_id: str, now_ms: int) -> None:
    """Put the campaign's key in the token key log (once), in the caller's transaction: the
    key everyone's token for this campaign is evaluated with, which devices check theirs
    against (server/token_log.py)."""
    logged: set[str] = _per_database(_LOGGED, session, set())
    if campaign_id in logged:
        return
    if session.get(TokenLogEntry, campaign_id) is None:
        token_log.append_key(
            session, campaign_id, campaign_key(session, campaign_id).public_key, now_ms
        )
    else:
        logged.add(campaign_id)  # committed before this transaction: there for good


def publish_missing_keys(engine: Engine, now_ms: int) -> int:
    """At start: log the keys of campaigns that have none (created before the log existed,
    or by a process that crashed between creating a campaign and logging its key)."""
    with Session(engine) as session:
        missing = token_log.unlogged_campaigns(session)
        for campaign_id in missing:
            publish_key(session, campaign_id, now_ms)
        session.commit()
    return len(missing)


def issuing_key(session: Session, person: str, campaign_id: str) -> IssuerKey:
    """The key ``person``'s token for a copy of ``campaign_id`` is evaluated with: the
    campaign's, the same for everyone. ``person`` is unused by an honest relay; it is in the
    signature so that the attack tests can replace this function with what a curious relay
    would run (a key of her own, to tag her report), and show that her device notices."""
    return campaign_key(session, campaign_id)


def issue(
    session: Session, person: str, msg_id: str, blinded: bytes, now_ms: int
) -> tuple[str, bytes, bytes, bytes]:
    """Evaluate one blinded element for a campaign copy ``person`` has received and acked.

    Returns (campaign id, evaluated element, proof, public key). One token per copy.
    """
    [issued] = issue_many(session, person, [(msg_id, blinded)], now_ms)
    return issued


def issue_many(
    session: Session, person: str, items: list[tuple[str, bytes]], now_ms: int
) -> list[tuple[str, bytes, bytes, bytes]]:
    """:func:`issue` for several copies (``(msg_id, blinded)``), in one transaction: all are
    issued, or none (the error names the first item that could not be)."""
    issued = []
    for index, (msg_id, blinded) in enumerate(items):
        try:
            issued.append(_issue_one(session, person, msg_id, blinded, now_ms))
        except ApiError as exc:
            session.rollback()
            where = f"tokens[{index}]: " if len(items) > 1 else ""
            raise ApiError(exc.status, exc.code, where + exc.message) from None
    session.commit()
    return issued


# The copy a token is asked for: just the columns the checks need (loading the whole row into
# the ORM, and building the statement, cost more than the rest of the request's reads).
_MAILBOX = MailboxEntry.__table__  # type: ignore[attr-defined]
_COPY = select(_MAILBOX.c.recipient, _MAILBOX.c.campaign_id, _MAILBOX.c.state).where(
    _MAILBOX.c.msg_id == bindparam("which")
)


def _issue_one(
    session: Session, person: str, msg_id: str, blinded: bytes, now_ms: int
) -> tuple[str, bytes, bytes, bytes]:
    row = session.execute(_COPY, {"which": msg_id}).first()
    if row is None or row.recipient != person or row.campaign_id is None:
        raise ApiError(
            404, "unknown_message", "No campaign message with this id was delivered to you."
        )
    if row.state != "acked":
        raise ApiError(409, "not_delivered", "Ack the message before asking for its token.")
    # A key not in the log would make the device keep its report: log it first, if a crash
    # left it out.
    publish_key(session, row.campaign_id, now_ms)
    key = issuing_key(session, person, row.campaign_id)
    digest = hashlib.sha256(blinded).digest()
    earlier = session.get(TokenIssue, msg_id)
    if earlier is not None and earlier.blinded_digest != digest:
        raise ApiError(409, "token_already_issued", "A token was already issued for this message.")
    if earlier is None:
        session.add(
            TokenIssue(
                msg_id=msg_id,
                campaign_id=row.campaign_id,
                issued_at=now_ms,
                blinded_digest=digest,
            )
        )
        try:
            session.flush()  # before evaluating: of two requests racing for one copy, one loses
        except IntegrityError:
            raise ApiError(
                409, "token_already_issued", "A token was already issued for this message."
            ) from None
    # The same element again is the same token (a retry after a lost answer): the
    # evaluation is deterministic, so nothing new is issued.
    try:
        [evaluated], proof = evaluate(key, [blinded])
    except TokenError as exc:
        raise ApiError(422, "invalid_request", f"blinded_element: {exc}") from None
    return row.campaign_id, evaluated, proof, key.public_key


def redeem(session: Session, raw_reports: list[str]) -> list[str | None]:
    """Count each valid report once; per report None (counted) or the reason it was not."""
    outcomes: list[str | None] = []
    keys: dict[str, IssuerKey | None] = {}
    for raw in raw_reports:
        try:
            report = decode_report(raw.encode())
        except InvalidReport:
            outcomes.append("invalid_report")
            continue
        if report.campaign_id not in keys:
            exists = session.get(Campaign, report.campaign_id) is not None
            keys[report.campaign_id] = (
                _derived(master_secret(session), report.campaign_id) if exists else None
            )
        key = keys[report.campaign_id]
        if key is None:
            outcomes.append("unknown_campaign")
            continue
        token = report.token
        if not verify_token(key, token.input, token.output):
            outcomes.append("bad_token")
            continue
        outcomes.append(_count(session, report, b64encode(token.input)))
    return outcomes


def _count(session: Session, report: SignalReport, token_input: str) -> str | None:
    session.add(TokenSpent(campaign_id=report.campaign_id, token_input=token_input))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return "token_spent"
    tally = session.exec(
        select(SignalTally).where(SignalTally.campaign_id == report.campaign_id).with_for_update()
    ).first()
    if tally is None:
        tally = SignalTally(campaign_id=report.campaign_id)
        session.add(tally)
    tally.reports += 1
    setattr(tally, report.outcome, getattr(tally, report.outcome) + 1)
    session.commit()  # per report: a spent token and its count land together
    return None


def tally_of(session: Session, campaign_id: str) -> tuple[int, dict[ReportValue, int]]:
    """The campaign's report count and its count per reported value (exact: never shown)."""
    row = session.get(SignalTally, campaign_id)
    if row is None:
        return 0, dict.fromkeys(REPORT_VALUES, 0)
    return row.reports, {value: getattr(row, value) for value in REPORT_VALUES}
