"""The relay's tables. Ciphertexts are stored as opaque bytes; nothing here is plaintext."""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.sql.elements import ColumnClause
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


# Mailbox states and the marketing category, written into SQL as literals. Each mailbox index
# below covers only the rows its queries look for (pending ones, scheduled ones, marketing
# ones): an ack then updates one index entry instead of moving four, and a chat message is
# stored with two index entries instead of five. SQLite uses such a partial index only when
# the query's WHERE repeats the index's condition word for word, so queries compare with
# these literals, never with bound parameters.
PENDING: ColumnClause[str] = literal_column("'pending'")
SCHEDULED: ColumnClause[str] = literal_column("'scheduled'")
MARKETING: ColumnClause[str] = literal_column("'marketing'")


def _only(condition: str) -> dict[str, Any]:
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class MailboxEntry(SQLModel, table=True):
    """One envelope, from submission until it is acked, refused, expired or cancelled.

    ``state``: ``scheduled`` (held by the relay until ``not_before``; template messages always
    start here so user choices are applied at release), ``pending`` (in the mailbox, visible
    to its recipient), then one of ``acked``, ``refused``, ``expired``, ``cancelled``. Leaving
    ``pending``/``scheduled`` wipes the ciphertext; the row stays as a tombstone so a
    sender's retry of the same id is recognised as a duplicate, never delivered twice.
    """

    __tablename__ = "relay_mailbox"
    __table_args__ = (
        UniqueConstraint("msg_id", name="uq_mailbox_msg_id"),
        Index("ix_mailbox_pending", "recipient", "seq", **_only("state = 'pending'")),
        Index("ix_mailbox_due", "not_before", **_only("state = 'scheduled'")),
        Index(
            "ix_mailbox_expiring",
            "expires_at",
            **_only("state IN ('pending', 'scheduled') AND expires_at IS NOT NULL"),
        ),
        Index("ix_mailbox_released", "recipient", "released_at", **_only("category = 'marketing'")),
        Index("ix_mailbox_campaign", "campaign_id", "state", **_only("campaign_id IS NOT NULL")),
        # One copy per person per campaign: what bounds one person's weight in its figures.
        Index(
            "uq_mailbox_campaign_recipient",
            "campaign_id",
            "recipient",
            unique=True,
            **_only("campaign_id IS NOT NULL"),
        ),
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
    state: str = Field(default="pending", max_length=16)
    released_at: int | None = Field(default=None, sa_type=BigInteger)
    acked_at: int | None = Field(default=None, sa_type=BigInteger)
    price: int = Field(default=0, sa_type=BigInteger, description="micro-units reserved")
    refusal: str | None = Field(default=None, max_length=32, description="reason class")


class RequestNonce(SQLModel, table=True):
    """Nonces of recently accepted signed requests, so a captured request cannot be replayed."""

    __tablename__ = "relay_request_nonce"

    handle: str = Field(primary_key=True, max_length=32)
    nonce: str = Field(primary_key=True, max_length=32)
    seen_at: int = Field(index=True, sa_type=BigInteger)


class Template(SQLModel, table=True):
    """A registered message template: public, like on real platforms."""

    __tablename__ = "relay_template"
    __table_args__ = (UniqueConstraint("business", "name", "language", name="uq_template_name"),)

    id: str = Field(primary_key=True, max_length=64)
    business: str = Field(index=True, max_length=32)
    name: str = Field(max_length=64)
    language: str = Field(max_length=8)
    category: str = Field(max_length=16)
    requested_category: str = Field(max_length=16)
    reclassified_reason: str | None = None
    definition: str = Field(description="the finalized TemplateDraft as JSON")
    hash: str = Field(max_length=64)
    created_at: int = Field(sa_type=BigInteger)


class Campaign(SQLModel, table=True):
    """A business's send of one template to an audience it keeps to itself.

    The relay knows only counts: how many the business says it targets, and what happened to
    the envelopes it submitted. Money columns are integer micro-units.
    """

    __tablename__ = "relay_campaign"

    id: str = Field(primary_key=True, max_length=64)
    business: str = Field(index=True, max_length=32)
    name: str = Field(max_length=100)
    template_id: str = Field(max_length=64)
    category: str = Field(max_length=16)
    send_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    budget: int = Field(sa_type=BigInteger)
    reserved: int = Field(default=0, sa_type=BigInteger)
    spent: int = Field(default=0, sa_type=BigInteger)
    refunded: int = Field(default=0, sa_type=BigInteger)
    targeted: int = 0
    accepted: int = 0
    rejected_budget: int = 0
    # Copies refused at submission for any other reason (duplicate recipient, unknown
    # recipient, ...), and when a copy last came: a campaign short of its audience whose
    # copies stopped coming is interrupted (server/campaigns.py).
    rejected: int = 0
    open_ended: bool = False  # copies come as they come (a gateway): never "interrupted"
    last_copy_at: int | None = Field(default=None, sa_type=BigInteger)
    delivered: int = 0
    cancelled: bool = False
    stop_reason: str | None = None
    created_at: int = Field(sa_type=BigInteger)


class Balance(SQLModel, table=True):
    """A business's money: ``available + reserved + spent == topped_up`` at all times."""

    __tablename__ = "relay_balance"

    business: str = Field(primary_key=True, max_length=32)
    available: int = Field(default=0, sa_type=BigInteger)
    reserved: int = Field(default=0, sa_type=BigInteger)
    spent: int = Field(default=0, sa_type=BigInteger)
    topped_up: int = Field(default=0, sa_type=BigInteger)


class LedgerEntry(SQLModel, table=True):
    """One money movement: topup, reserve, charge or refund (amount always positive)."""

    __tablename__ = "relay_ledger"

    id: int | None = Field(default=None, primary_key=True, sa_type=SeqType)
    business: str = Field(index=True, max_length=32)
    campaign_id: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)
    amount: int = Field(sa_type=BigInteger)
    messages: int = 0
    note: str = ""
    at: int = Field(sa_type=BigInteger)


class Preference(SQLModel, table=True):
    """A person's global marketing level: all, chatted, weekly (with a limit) or none."""

    __tablename__ = "relay_preference"

    person: str = Field(primary_key=True, max_length=32)
    level: str = Field(default="all", max_length=16)
    weekly_limit: int | None = None


class BusinessChoice(SQLModel, table=True):
    """A person's choice about one business: ``blocked`` or ``promotions_stopped``."""

    __tablename__ = "relay_business_choice"

    person: str = Field(primary_key=True, max_length=32)
    business: str = Field(primary_key=True, max_length=32)
    blocked: bool = False
    promotions_stopped: bool = False


class ChatContact(SQLModel, table=True):
    """That a person has written to a business (routing metadata the relay sees anyway).

    Feeds the "only businesses I have chatted with" level and the business's 24-hour service
    window for free-form replies.
    """

    __tablename__ = "relay_chat_contact"

    person: str = Field(primary_key=True, max_length=32)
    business: str = Field(primary_key=True, max_length=32)
    last_at: int = Field(sa_type=BigInteger)


class Acceptance(SQLModel, table=True):
    """That a person accepts messages from an account: they wrote to it, or accepted its
    message request. Anyone else is a stranger to them (server/message_requests.py)."""

    __tablename__ = "relay_acceptance"

    person: str = Field(primary_key=True, max_length=32)
    peer: str = Field(primary_key=True, max_length=32)
    at: int = Field(sa_type=BigInteger)


class MessageRequest(SQLModel, table=True):
    """A stranger's messages to a person that the relay let through before the person accepted
    them: a few per stranger, and only so many new strangers a day."""

    __tablename__ = "relay_message_request"
    __table_args__ = (Index("ix_message_request_person_first", "person", "first_at"),)

    person: str = Field(primary_key=True, max_length=32)
    sender: str = Field(primary_key=True, max_length=32)
    delivered: int = 0
    first_at: int = Field(sa_type=BigInteger)


class RelaySecret(SQLModel, table=True):
    """Secrets every relay process must share (e.g. the master key of signal tokens)."""

    __tablename__ = "relay_secret"

    name: str = Field(primary_key=True, max_length=64)
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TokenIssue(SQLModel, table=True):
    """One anonymous signal token was issued for this delivered campaign copy (at most one)."""

    __tablename__ = "relay_token_issue"

    msg_id: str = Field(primary_key=True, max_length=32)
    campaign_id: str = Field(max_length=64)
    issued_at: int = Field(sa_type=BigInteger)
    # SHA-256 of the blinded element it was issued for: the same request again (a retry after
    # a lost answer) gets the same evaluation; any other element for this copy is a second
    # token. A digest, not the element: recognising a retry needs no more, and the relay keeps
    # nothing of an issuance that a redeemed token could be compared with.
    blinded_digest: bytes | None = Field(default=None, sa_type=LargeBinary)


class TokenSpent(SQLModel, table=True):
    """Redeemed tokens: a report is counted once per token, whichever process receives it."""

    __tablename__ = "relay_token_spent"

    campaign_id: str = Field(primary_key=True, max_length=64)
    token_input: str = Field(primary_key=True, max_length=64)


class SignalTally(SQLModel, table=True):
    """Per campaign: how many reports arrived, and how many carried each value (an outcome
    after randomized response, or no_signal). Reports themselves are not kept: only these
    sums."""

    __tablename__ = "relay_signal_tally"

    campaign_id: str = Field(primary_key=True, max_length=64)
    reports: int = 0
    not_read: int = 0
    read: int = 0
    clicked: int = 0
    dismissed: int = 0
    no_signal: int = 0


class PrivacySpend(SQLModel, table=True):
    """One release of figures to a business and what it cost its privacy budget.

    ε is kept in millionths so sums over the 30-day window are exact."""

    __tablename__ = "relay_privacy_spend"

    id: int | None = Field(default=None, primary_key=True, sa_type=SeqType)
    business: str = Field(index=True, max_length=32)
    campaign_id: str = Field(max_length=64)
    micro_epsilon: int = Field(sa_type=BigInteger)
    at: int = Field(sa_type=BigInteger)


class PublishedFigures(SQLModel, table=True):
    """A campaign's figures as published, noise included, so every read shows the same."""

    __tablename__ = "relay_campaign_figures"

    campaign_id: str = Field(primary_key=True, max_length=64)
    published_at: int = Field(sa_type=BigInteger)
    body: str = Field(description="the CampaignFigures JSON")


class TokenLogEntry(SQLModel, table=True):
    """One campaign's token issuer public key in the published key log (shared/token_log.py):
    rows are only ever added, in ``idx`` order, each naming the hash of the one before."""

    __tablename__ = "relay_token_log"
    __table_args__ = (UniqueConstraint("idx", name="uq_token_log_idx"),)

    campaign_id: str = Field(primary_key=True, max_length=64)
    idx: int = Field(sa_type=BigInteger)
    public_key: str = Field(max_length=64)
    valid_from: int = Field(sa_type=BigInteger)
    prev: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class ReadinessProbe(SQLModel, table=True):
    """One row that ``GET /readyz`` rewrites and commits: proof that the database takes a
    write of real size right now (a full disk refuses it; a read would not notice)."""

    __tablename__ = "relay_readiness_probe"

    id: int = Field(primary_key=True)
    at: int = Field(sa_type=BigInteger)
    data: bytes = Field(sa_type=LargeBinary)


class Rollout(SQLModel, table=True):
    """How far a platform feature is open: a share of accounts, by a stable bucket of their
    handle (server/rollout.py). No row: open to every account."""

    __tablename__ = "relay_rollout"

    feature: str = Field(primary_key=True, max_length=32)
    percent: int
    updated_at: int = Field(sa_type=BigInteger)


class RolloutBeta(SQLModel, table=True):
    """An account that has a feature before its share of accounts does: a beta tester."""

    __tablename__ = "relay_rollout_beta"

    feature: str = Field(primary_key=True, max_length=32)
    handle: str = Field(primary_key=True, max_length=32)


class TemplateQuality(SQLModel, table=True):
    """A template's quality rating, read off its recent published figures (server/quality.py),
    and the pauses it brought."""

    __tablename__ = "relay_template_quality"

    template_id: str = Field(primary_key=True, max_length=64)
    rating: str = Field(max_length=8)  # high, medium, low
    share: float = 0.0  # unwelcome answers over people reached, and its interval
    share_low: float = 0.0
    share_high: float = 1.0
    campaigns: int = 0  # how many campaigns' figures the rating stands on
    lows: int = 0  # times it fell to low
    paused_until: int | None = Field(default=None, sa_type=BigInteger)
    disabled: bool = False
    updated_at: int = Field(sa_type=BigInteger)


class BusinessTier(SQLModel, table=True):
    """A business's marketing tier: how many people its marketing may reach per 24 hours
    (server/tiers.py), and the quality rating of all its campaigns that moves it."""

    __tablename__ = "relay_business_tier"

    business: str = Field(primary_key=True, max_length=32)
    tier: int = 0
    rating: str = Field(default="medium", max_length=8)
    moved_at: int = Field(default=0, sa_type=BigInteger)
    reason: str = ""
