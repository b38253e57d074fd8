"""JSON bodies of the relay's HTTP API, as the client sends and the relay answers them."""

from typing import Literal

from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import CryptoError
from nacl.public import PublicKey, SealedBox
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.display_names import DisplayName
from shared.encoding import b64decode
from shared.envelope import Envelope
from shared.identifiers import CAMPAIGN_ID_PATTERN, CountryCode, Handle, MessageId
from shared.templates import TemplateDraft
from shared.version import MAX_BATCH_ENVELOPES, MAX_INT64

AccountKind = Literal["person", "business"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _key_bytes(value: str) -> bytes:
    try:
        raw = b64decode(value)
    except ValueError as exc:
        raise ValueError("must be standard base64") from exc
    if len(raw) != 32:
        raise ValueError(f"must encode 32 bytes, got {len(raw)}")
    return raw


def _check_sign_key(value: str) -> str:
    if not crypto_core_ed25519_is_valid_point(_key_bytes(value)):
        raise ValueError("is not a valid Ed25519 public key")
    return value


def _check_box_key(value: str) -> str:
    # A low-order X25519 point (e.g. all zeros) cannot be sealed to: refuse it here rather
    # than let every sender's client fail on it.
    try:
        SealedBox(PublicKey(_key_bytes(value))).encrypt(b"\0")
    except CryptoError as exc:
        raise ValueError("is not a usable X25519 public key") from exc
    return value


class RegisterAccount(_Strict):
    """``POST /v1/accounts``; signed with the very key it registers (proof of possession)."""

    handle: Handle
    kind: AccountKind = "person"
    display_name: DisplayName = Field(
        description="1-64 characters after NFC; no control, format, bidi or line-separator "
        "characters and no check marks (shared/display_names.py)"
    )
    country: CountryCode | None = Field(
        default=None, description="Calling code such as +39; required for persons (pricing)"
    )
    sign_key: str = Field(description="base64 Ed25519 public key (32 bytes)")
    box_key: str = Field(description="base64 X25519 public key (32 bytes)")

    _sign = field_validator("sign_key")(classmethod(lambda cls, v: _check_sign_key(v)))
    _box = field_validator("box_key")(classmethod(lambda cls, v: _check_box_key(v)))

    @model_validator(mode="after")
    def _persons_have_a_country(self) -> "RegisterAccount":
        if self.kind == "person" and self.country is None:
            raise ValueError("a person account needs a country calling code, e.g. +39")
        return self


class AccountInfo(_Strict):
    """A key-directory entry: public by design (the country is not published)."""

    handle: Handle
    kind: AccountKind
    # Not checked here: one bad entry must not fail a whole page of lookups. The client checks
    # every name it pins (shared.display_names.name_or_handle) and shows the handle instead.
    display_name: str
    verified: bool
    sign_key: str
    box_key: str


class SendResult(_Strict):
    id: MessageId
    status: Literal["accepted", "duplicate", "rejected"]
    error: "ErrorDetail | None" = None


class BatchRequest(_Strict):
    envelopes: list[Envelope] = Field(min_length=1, max_length=MAX_BATCH_ENVELOPES)


class BatchResponse(_Strict):
    accepted: int
    duplicate: int
    rejected: int
    results: list[SendResult]


class MailboxItem(_Strict):
    seq: int
    envelope: Envelope


class MailboxPage(_Strict):
    items: list[MailboxItem]
    next_after: int = Field(description="Pass as ?after= to continue; equals after when empty")


class AckRequest(_Strict):
    ids: list[MessageId] = Field(min_length=1, max_length=MAX_BATCH_ENVELOPES)


class AckResponse(_Strict):
    acked: list[MessageId]
    unknown: list[MessageId] = Field(description="Not pending in this mailbox; nothing changed")


class ErrorDetail(_Strict):
    code: str
    message: str


class ErrorBody(_Strict):
    """Every error answer (4xx, and the rare 5xx): ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


class Health(_Strict):
    status: Literal["ok"]
    protocol: int


SendResult.model_rebuild()


# --- directory -------------------------------------------------------------------------------


class LookupRequest(_Strict):
    handles: list[Handle] = Field(min_length=1, max_length=MAX_BATCH_ENVELOPES)


class LookupResponse(_Strict):
    accounts: list[AccountInfo]
    unknown: list[str]


# --- templates -------------------------------------------------------------------------------


class TemplateInfo(_Strict):
    """A registered template as the registry publishes it."""

    id: str
    business: Handle
    hash: str = Field(description="template_hash(business, template), hex")
    category: str
    requested_category: str
    reclassified_reason: str | None
    template: TemplateDraft
    created_at: int
    priced_as: str = Field(
        default="",
        description="The category its copies are priced as: its own, or marketing for a "
        "utility template whose variables can hold free text (shared/templates.py)",
    )


class TemplateList(_Strict):
    templates: list[TemplateInfo]


# --- campaigns, budget, pricing --------------------------------------------------------------

RefusalClass = Literal[
    "blocked", "stopped_promotions", "marketing_level", "daily_cap", "message_request"
]
REFUSAL_CLASSES: tuple[RefusalClass, ...] = (
    "blocked",
    "stopped_promotions",
    "marketing_level",
    "daily_cap",
    "message_request",  # a stranger's copy past the few let through before the person accepts
)


class CampaignCreate(_Strict):
    id: str | None = Field(
        default=None,
        pattern=CAMPAIGN_ID_PATTERN,
        description="Chosen by the business (new_campaign_id), so that it can seal copies "
        "while the audience is still being looked up; omit to have the relay choose",
    )
    template_id: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")
    send_at: int | None = Field(
        default=None, ge=0, le=MAX_INT64, description="Unix ms; omit to send now"
    )
    budget: int = Field(
        ge=-MAX_INT64, le=MAX_INT64, description="Most this campaign may spend, micro-units"
    )
    audience_size: int = Field(ge=1, le=10_000_000, description="Copies the business will send")
    expires_in_days: int | None = Field(default=None, ge=1, le=365)
    open_ended: bool = Field(
        default=False,
        description="copies come as the business's own sends happen (a gateway's day of "
        "template messages): audience_size is a most, and falling short of it is not an "
        "interruption",
    )


class NoisyCount(_Strict):
    """A count published with differentially private noise: ``value`` may be off by up to
    ``margin`` either way (95 %), and may be below zero or above the audience."""

    value: int
    margin: int = Field(description="half-width of the 95 % interval around value")


class Estimate(_Strict):
    """An estimate from the anonymous reports, unclipped, with its 95 % interval."""

    value: float
    low: float
    high: float


class CampaignFigures(_Strict):
    """What happened to a campaign's copies, published once with noise (docs/privacy-boundary.md
    "What a business sees"). Nothing here is exact: that is what protects each person."""

    published_at: int
    epsilon: float = Field(description="privacy cost of this release to the business's budget")
    delivered: NoisyCount = Field(description="copies the person's device took")
    refused: NoisyCount = Field(description="copies people's choices stopped (sum of reasons)")
    refused_by_reason: dict[str, NoisyCount]
    not_delivered: NoisyCount = Field(description="copies still waiting or expired unread")
    signal_reports: NoisyCount = Field(description="anonymous interaction reports counted")
    no_signal: NoisyCount | None = Field(
        default=None,
        description="reports that carry no outcome (signals off, or the device's budget "
        "spent); null in figures published before report format 2",
    )
    interactions: dict[str, Estimate] = Field(
        description="Per outcome (not_read, read, clicked, dismissed): estimated people among "
        "the reports that carry one, from the randomized anonymous reports"
    )
    rebate: int = Field(description="micro-units given back for the estimated undelivered copies")


CampaignStatus = Literal[
    "open",
    "scheduled",
    "sending",
    "held",
    "interrupted",
    "sent",
    "done",
    "withheld",
    "cancelled",
    "stopped",
]


class CampaignReport(_Strict):
    """Exact where nothing depends on a person (what the business did and paid); the rest is
    in ``figures``, published once with noise."""

    id: str
    name: str
    template_id: str
    category: str
    status: CampaignStatus
    stop_reason: str | None
    send_at: int
    expires_at: int
    budget: int
    targeted: int
    accepted: int
    rejected_budget: int
    scheduled: int = Field(description="copies waiting for the send time")
    sent: int = Field(description="copies released at the send time and charged")
    cancelled: int
    spend: int
    reserved: int
    refunded: int = Field(description="cancellations and rebates given back")
    figures_at: int = Field(description="when the figures are (or were) due")
    figures_note: str = Field(description="where the figures stand, in words")
    figures: CampaignFigures | None = None
    held_until: int | None = Field(
        default=None,
        description="while held: when its template's pause ends and its copies go out",
    )


class CampaignList(_Strict):
    campaigns: list[CampaignReport]


class TopUp(_Strict):
    amount: int = Field(gt=0, le=10**15, description="micro-units to add")


class LedgerLine(_Strict):
    at: int
    kind: Literal["topup", "reserve", "charge", "refund", "rebate"]
    amount: int
    messages: int
    campaign_id: str | None
    note: str


class TemplateQualityView(_Strict):
    """A template's quality rating and what follows from it, from its published figures."""

    template_id: str
    name: str
    rating: Literal["high", "medium", "low"]
    share: float = Field(description="unwelcome answers over people reached (recent figures)")
    share_low: float
    share_high: float
    campaigns: int = Field(description="campaigns whose figures the rating stands on")
    lows: int = Field(description="times it fell to low; the third disables it")
    paused_until: int | None
    disabled: bool
    note: str = Field(description="in words: the rating, why, and what follows")


class BusinessQualityView(_Strict):
    """The business's overall quality and its marketing tier (limits apply where the relay
    turns tiers on)."""

    rating: Literal["high", "medium", "low"]
    tier: int = Field(description="1 to 5")
    limit_24h: int | None = Field(
        description="people its marketing may reach per 24 h; null: no limit"
    )
    used_24h: int = Field(description="copies of its marketing campaigns created in the last 24 h")
    enforced: bool = Field(description="whether this relay applies the limit")
    note: str


class QualityView(_Strict):
    business: BusinessQualityView
    templates: list[TemplateQualityView]


class FeatureAccess(_Strict):
    """Whether this account has one platform feature yet (a staged rollout), and why."""

    available: bool
    note: str = Field(description="in words: what is open to this account, or why not yet")


class BudgetView(_Strict):
    currency: str
    available: int
    reserved: int
    spent: int
    topped_up: int
    ledger: list[LedgerLine]
    privacy: "PrivacyBudget"


class PrivacyBudget(_Strict):
    """The business's privacy budget: every published figure spends some of it."""

    epsilon_30d: float = Field(description="what the business may spend in any 30 days")
    spent_30d: float = Field(description="spent in the last 30 days")
    remaining: float
    per_campaign: float = Field(description="what one campaign's figures cost")
    campaigns_left: int = Field(description="campaign reports that fit in the remaining budget")
    renews_at: int | None = Field(description="when the oldest spend in the window lapses")


BudgetView.model_rebuild()


# --- a person's choices ----------------------------------------------------------------------

MarketingLevel = Literal["all", "chatted", "weekly", "none"]


class SetLevel(_Strict):
    level: MarketingLevel
    weekly_limit: int | None = Field(default=None, ge=0, le=1000)

    @model_validator(mode="after")
    def _weekly_needs_limit(self) -> "SetLevel":
        if (self.level == "weekly") != (self.weekly_limit is not None):
            raise ValueError("weekly_limit is required with level 'weekly' and only with it")
        return self


class Preferences(_Strict):
    level: MarketingLevel
    weekly_limit: int | None
    blocked: list[str]
    promotions_stopped: list[str]
    accepted: list[str] = []  # accounts whose messages are not message requests


# --- privacy signals -------------------------------------------------------------------------


class CampaignKey(_Strict):
    """A campaign's token-issuer public key (ristretto255, base64)."""

    campaign_id: str
    public_key: str


class TokenRequest(_Strict):
    """Authenticated: one blinded element for a campaign copy the caller received and acked."""

    msg_id: MessageId
    blinded_element: str = Field(max_length=64, description="base64, 32 bytes")


class TokenResponse(_Strict):
    campaign_id: str
    evaluated_element: str
    proof: str
    public_key: str


MAX_TOKEN_BATCH = 100


class TokenBatchRequest(_Strict):
    """Authenticated: several ``TokenRequest`` at once (a synced page's campaign copies)."""

    tokens: list[TokenRequest] = Field(min_length=1, max_length=MAX_TOKEN_BATCH)


class TokenBatchResponse(_Strict):
    tokens: list[TokenResponse] = Field(description="In the order of the request")


class SignalBatch(_Strict):
    """Anonymous: reports as their canonical JSON text (see shared.signals.encode_report)."""

    reports: list[str] = Field(min_length=1, max_length=100)


class SignalResult(_Strict):
    counted: int
    refused: dict[int, str] = Field(description="index -> why (invalid_report, bad_token, ...)")
