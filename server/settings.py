"""The relay's one settings object, read from ``SEALPOST_RELAY_*`` environment variables and CLI."""

from pathlib import Path
from typing import Annotated

from platformdirs import user_data_dir
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.encoding import b64decode


def default_db_url() -> str:
    return f"sqlite:///{Path(user_data_dir('sealpost')) / 'relay.db'}"


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEALPOST_RELAY_", extra="ignore")

    db: str = Field(default_factory=default_db_url, description="SQLAlchemy URL")
    host: str = "127.0.0.1"
    port: int = 8700
    auth_window_s: int = Field(
        default=60, ge=5, description="Allowed clock skew of signed requests"
    )
    rate_per_s: float = Field(default=50.0, gt=0, description="Token-bucket refill per account")
    rate_burst: int = Field(default=200, ge=1, description="Token-bucket size per account")
    chat_rate_per_s: float = Field(
        default=100.0,
        gt=0,
        description="Chat envelopes a sender may submit per second (each envelope of a batch "
        "costs one); campaign copies are bounded by their budget instead",
    )
    chat_burst: int = Field(default=1000, ge=1, description="Chat envelopes at once per sender")
    chats_per_recipient_per_hour: int = Field(
        default=1000,
        ge=1,
        description="Chat envelopes one sender may send one recipient per hour (a bucket that "
        "refills continuously; it never depends on whether the person reads or blocked them)",
    )
    chat_bytes_per_recipient_per_hour: int = Field(
        default=16 * 1024 * 1024,
        ge=65536,
        description="The same, in ciphertext bytes",
    )
    mailbox_max_pending: int = Field(
        default=10_000,
        ge=1,
        description="Chat envelopes one mailbox holds undelivered; more are refused "
        "(mailbox_full) until the person catches up",
    )
    mailbox_max_pending_bytes: int = Field(
        default=256 * 1024 * 1024, ge=65536, description="The same, in ciphertext bytes"
    )
    request_hold: int = Field(
        default=3,
        ge=1,
        description="Messages (chat or template copies) a sender the person never wrote to nor "
        "accepted gets through before the person accepts its message request",
    )
    requests_per_day: int = Field(
        default=20,
        ge=1,
        description="New senders whose message requests reach one person per rolling 24 h",
    )
    registrations_per_hour: float = Field(
        default=20.0,
        ge=0,
        description="New accounts per client address per hour (0: no limit, for simulations "
        "and benchmarks that register thousands from one address)",
    )
    registration_burst: int = Field(
        default=20, ge=1, description="New accounts at once from one client address"
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # What a client may hold before any signature is checked (server/http_protocol.py,
    # server/request_guard.py; `sealpost relay` only, not relays embedded in tests and tools).
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Request line and headers together; more is refused with 431",
    )
    header_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="A request's headers must arrive within this long of the connection's "
        "start (or of the request's first byte on a kept-alive connection); then 408 and close",
    )
    body_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A request's body must arrive within this long of its headers; then 408 "
        "and close (a 16 MiB body needs about 2.2 Mbit/s)",
    )
    send_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A client that reads nothing of a response for this long, while the "
        "relay holds more of it than the socket takes, is dropped (and the response with it)",
    )
    max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Open connections (delivery streams included); beyond, a new one gets "
        "503 and is closed. Keep below the process's open-file limit",
    )
    max_requests_in_flight: int = Field(
        default=1024,
        ge=1,
        description="Requests being served at once, delivery streams not counted; beyond, "
        "503 server_busy with Retry-After. Bounds the memory of bodies being read",
    )
    max_requests_in_flight_per_address: int = Field(
        default=64,
        ge=0,
        description="The same, from one client address, so that one address cannot take "
        "every place (with bodies it sends slowly, say); beyond, 429 rate_limited. 0: no "
        "limit, for simulations that run thousands from one address",
    )
    max_streams_per_account: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Delivery streams one account may hold open at once; one more gets "
        "429 too_many_streams",
    )
    anonymous_per_s: float = Field(
        default=5.0,
        ge=0,
        description="Requests per second one client address may make to the endpoints that "
        "take no account signature (registration, direct signals, campaign keys, the key "
        "log, /readyz); 0: no limit, for simulations that run thousands from one address",
    )
    anonymous_burst: int = Field(
        default=100, ge=1, description="The same, at once from one address"
    )
    anonymous_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Body size on those endpoints (a registration or 100 reports is far less)",
    )
    keepalive_s: float = Field(default=15.0, gt=0, description="SSE comment interval")
    template_quality: bool = Field(
        default=True,
        description="act on templates' quality ratings: pause a template that falls to low "
        "(3 h, then 6 h), then disable it (server/quality.py); off, ratings are still computed "
        "and shown, and nothing is paused (`sealpost sim --no-quality` compares the two)",
    )
    marketing_tiers: bool = Field(
        default=False,
        description="limit the people a business's marketing reaches per 24 h by tier (250, "
        "1,000, 10,000, 100,000, unlimited), moved by its campaigns' quality (server/tiers.py); "
        "off, every business is unlimited",
    )
    wal_limit_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        le=1 << 40,
        description="SQLite: the write-ahead log is cut back to this size once checkpointed "
        "(a burst may grow it past that in between)",
    )
    durable_commits: bool = Field(
        default=True,
        description="SQLite: sync the log at every commit, so that what the relay answered "
        "for survives a power cut (synchronous=FULL); false keeps it across a process crash "
        "only (NORMAL), for speed. PostgreSQL: its own settings decide",
    )
    metrics: bool = Field(
        default=True,
        description="serve GET /metrics (Prometheus text format; totals only, no person named)",
    )
    request_log: bool = Field(
        default=False,
        description="one JSON line per request on the 'sealpost.access' logger: method, "
        "route template, status, milliseconds (never a body, header, handle or address)",
    )
    page_limit: int = Field(default=500, ge=1, le=1000, description="Envelopes per mailbox page")
    price_table: str | None = Field(
        default=None, description="JSON price table to use instead of the shipped one"
    )
    marketing_cap_24h: int = Field(
        default=2, ge=0, description="Marketing messages per person per rolling 24 h, all senders"
    )
    default_expiry_days: int = Field(default=30, ge=1, le=365)
    service_window_h: int = Field(
        default=24, ge=1, description="How long after a person writes a business may reply freely"
    )
    dispatch_interval_s: float = Field(
        default=1.0, gt=0, description="How often scheduled messages and expiries are checked"
    )
    figures_after_h: int = Field(
        default=72,
        ge=1,
        le=24 * 365,
        description="A campaign's figures are published this long after its send time (or at "
        "its expiry, if sooner)",
    )
    business_epsilon_30d: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="Privacy budget of each business over any 30 days (docs/privacy-boundary.md)",
    )
    # Split so that at 10,000 recipients every published count is within 2 % at 95 %: the
    # counts' noise (L1 sensitivity 2) at scale 25 (+-75, +-139 for the sum of four reasons),
    # the report count's (sensitivity 7) at scale 58 (+-175).
    figures_epsilon_counts: float = Field(
        default=0.08, gt=0, le=5, description="ε of a campaign's delivery and refusal counts"
    )
    figures_epsilon_interactions: float = Field(
        default=0.12, gt=0, le=5, description="ε of a campaign's interaction estimates"
    )
    shuffler_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Ed25519 public keys (base64, comma-separated in the environment) of the "
        "shufflers whose batches the relay counts (POST /v1/signals/shuffled); "
        "`sealpost shuffler --print-key` prints one",
    )
    allow_direct_signals: bool = Field(
        default=False,
        description="Also count reports sent straight to POST /v1/signals (the old channel: "
        "the relay then sees each report's arrival time and source address); off, that "
        "endpoint answers 403 and points to the shuffler",
    )
    shuffler_url: str | None = Field(
        default=None,
        description="Where devices should send reports, named in the refusal of a direct one",
    )
    auto_migrate: bool = Field(
        default=False, description="Upgrade the schema at start (embedded relays, tests)"
    )
    auto_verify_businesses: bool = Field(
        default=True, description="Simulator shortcut: every business gets the verified mark"
    )

    @field_validator("shuffler_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        # One environment variable holds several keys: "KEY1,KEY2".
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("shuffler_keys")
    @classmethod
    def _keys_are_ed25519(cls, value: list[str]) -> list[str]:
        for key in value:
            try:
                raw = b64decode(key)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError(f"shuffler key {key!r} is not a base64 Ed25519 public key")
        return value

    @model_validator(mode="after")
    def _figures_fit_the_budget(self) -> "RelaySettings":
        if self.figures_epsilon_counts + self.figures_epsilon_interactions > (
            self.business_epsilon_30d
        ):
            raise ValueError(
                "one campaign's figures (figures_epsilon_counts + figures_epsilon_interactions) "
                "must fit in business_epsilon_30d, or no campaign could ever be reported"
            )
        return self
