"""The relay's tables. Ciphertexts are stored as opaque bytes; nothing here is plaintext."""

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

# SQLite only auto-numbers an INTEGER PRIMARY KEY (a rowid alias), not a BIGINT one.
SeqType = BigInteger().with_variant(Integer, "sqlite")


class Account(SQLModel, table=True):
    __tablename__ = "relay_account"

    handle: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=16)
    display_name: str = Field(max_length=64)
    country: str | None = Field(default=None, max_length=5)
    sign_key: str = Field(max_length=64)
    box_key: str = Field(max_length=64)
    verified: bool = False
    created_at: int = Field(sa_type=BigInteger)


class MailboxEntry(SQLModel, table=True):
    """One envelope waiting for (or, once acked, remembered after) its recipient.

    After an ack the ciphertext is wiped but the row stays as a tombstone, so a sender's retry
    of the same id is still recognised as a duplicate instead of being delivered twice.
    """

    __tablename__ = "relay_mailbox"
    __table_args__ = (
        UniqueConstraint("msg_id", name="uq_mailbox_msg_id"),
        Index("ix_mailbox_pending", "recipient", "acked_at", "seq"),
    )

    seq: int | None = Field(default=None, primary_key=True, sa_type=SeqType)
    msg_id: str = Field(max_length=32)
    sender: str = Field(max_length=32)
    recipient: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    category: str = Field(max_length=16)
    template_id: str | None = Field(default=None, max_length=64)
    campaign_id: str | None = Field(default=None, max_length=64)
    not_before: int | None = Field(default=None, sa_type=BigInteger)
    expires_at: int | None = Field(default=None, sa_type=BigInteger)
    digest: str = Field(max_length=64, description="sha256 of the canonical envelope (idempotency)")
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: int = Field(sa_type=BigInteger)
    acked_at: int | None = Field(default=None, sa_type=BigInteger)


class RequestNonce(SQLModel, table=True):
    """Nonces of recently accepted signed requests, so a captured request cannot be replayed."""

    __tablename__ = "relay_request_nonce"

    handle: str = Field(primary_key=True, max_length=32)
    nonce: str = Field(primary_key=True, max_length=32)
    seen_at: int = Field(index=True, sa_type=BigInteger)


RELAY_TABLES = [Account.__table__, MailboxEntry.__table__, RequestNonce.__table__]
