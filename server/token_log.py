"""The relay's token key log: each campaign's issuer public key, appended once, signed.

A device uses a token only if the key its issuance was proven against is the key this log
lists for the campaign, in a log that extends the one it saw before (client/key_log.py). The
format and the checks are in shared/token_log.py.

Which key goes in is server/signals.py's business (``publish_key``): the campaign's, appended
when the campaign is created (before any copy can be released, so before any token is asked
for), and, for campaigns created by an older relay or by a process that crashed in between,
when a relay process starts and before a token is issued. This module only keeps the chain.

The head is signed on every read with the relay's log key, kept with the relay's other shared
secrets (``relay_secret``) so that every process signs with the same one; Ed25519 signatures
are deterministic, so every reader of the same log gets the same bytes.
"""

from nacl.signing import SigningKey
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from server.models import Campaign, RelaySecret, TokenLogEntry
from shared.encoding import b64encode
from shared.token_log import GENESIS, KeyLog, KeyLogEntry, entry_hash, sign_head

LOG_KEY = "token_log_signing_seed"
# The log's advisory lock on PostgreSQL (the two-integer key space, apart from the one-bigint
# space other locks use): appends from several processes take turns, so no two entries get
# one index or chain to the same predecessor. SQLite has one writer at a time anyway.
_PG_LOCK = "SELECT pg_advisory_xact_lock(5801, 1)"


def log_signing_key(session: Session) -> SigningKey:
    """The relay's Ed25519 log key: created once, shared by every process."""
    row = session.get(RelaySecret, LOG_KEY)
    if row is None:
        session.add(RelaySecret(name=LOG_KEY, value=bytes(SigningKey.generate())))
        try:
            session.commit()
        except IntegrityError:  # another process created it first
            session.rollback()
        row = session.get(RelaySecret, LOG_KEY)
        assert row is not None
    return SigningKey(row.value)


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_PG_LOCK))


def append_key(session: Session, campaign_id: str, public_key: bytes, now_ms: int) -> None:
    """Append ``campaign_id``'s key unless the log has one for it, in the caller's
    transaction (which commits it). Appends take turns (see ``_PG_LOCK``)."""
    if session.get(TokenLogEntry, campaign_id) is not None:
        return
    _lock(session)
    if session.get(TokenLogEntry, campaign_id) is not None:
        return  # appended by another process while this one waited for the lock
    last = session.exec(
        select(TokenLogEntry).order_by(col(TokenLogEntry.idx).desc()).limit(1)
    ).first()
    entry = KeyLogEntry(
        index=0 if last is None else last.idx + 1,
        campaign_id=campaign_id,
        public_key=b64encode(public_key),
        valid_from=now_ms,
        prev=GENESIS if last is None else last.hash,
    )
    session.add(
        TokenLogEntry(
            campaign_id=entry.campaign_id,
            idx=entry.index,
            public_key=entry.public_key,
            valid_from=entry.valid_from,
            prev=entry.prev,
            hash=entry_hash(entry),
        )
    )
    session.flush()


def unlogged_campaigns(session: Session) -> list[str]:
    """Campaigns whose key is not in the log yet, oldest first."""
    return list(
        session.exec(
            select(Campaign.id)
            .where(col(Campaign.id).not_in(select(TokenLogEntry.campaign_id)))
            .order_by(col(Campaign.created_at), col(Campaign.id))
        )
    )


def current(session: Session) -> KeyLog:
    """The whole log with its signed head, as ``GET /v1/signals/key-log`` answers it."""
    key = log_signing_key(session)
    rows = list(session.exec(select(TokenLogEntry).order_by(col(TokenLogEntry.idx))))
    entries = [
        KeyLogEntry(
            index=r.idx,
            campaign_id=r.campaign_id,
            public_key=r.public_key,
            valid_from=r.valid_from,
            prev=r.prev,
        )
        for r in rows
    ]
    head_hash = rows[-1].hash if rows else GENESIS
    return KeyLog(head=sign_head(key, len(rows), head_hash), entries=entries)
