"""The shuffler's settings, read from ``SEALPOST_SHUFFLER_*`` environment variables and CLI."""

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.shuffle_bound import DEFAULT_DELTA
from shared.shuffled import MAX_SHUFFLED


def _data(name: str) -> Path:
    return Path(user_data_dir("sealpost")) / name


class ShufflerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEALPOST_SHUFFLER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8710
    db: Path = Field(
        default_factory=lambda: _data("shuffler.db"),
        description="The shuffler's own SQLite file (never the relay's database)",
    )
    relay: str = Field(default="http://127.0.0.1:8700", description="The relay's base URL")
    batch: int = Field(
        default=20,
        ge=2,
        le=MAX_SHUFFLED // 2,
        description="B: reports from distinct tokens held before any is forwarded; no batch "
        "the relay gets holds fewer",
    )
    max_hold_s: float = Field(
        default=300.0,
        ge=0,
        description="Once B are held, the batch leaves at a random moment within this long "
        "(so its time does not say when the B-th report came; more may join meanwhile)",
    )
    key_path: Path = Field(
        default_factory=lambda: _data("shuffler.key"),
        description="The shuffler's Ed25519 signing key (created 0600 on first start)",
    )
    max_held: int = Field(
        default=100_000, ge=1, description="Reports held at most; beyond, new ones get 503"
    )
    retry_s: float = Field(default=30.0, gt=0, description="Wait after the relay refused")
    delta: float = Field(
        default=DEFAULT_DELTA, gt=0, lt=1, description="δ of the central ε shown in /v1/status"
    )
    local_epsilon: float | None = Field(
        default=None,
        gt=0,
        description="ε0 of one report for /v1/status (default: shared.signals' per-report ε)",
    )
    key_log_refresh_s: float = Field(
        default=30.0,
        ge=0,
        description="Fetch the relay's token key log on this timer (0: only when a device "
        "asks and the copy held is too old), so that the relay's log requests follow the "
        "shuffler's clock, never a device's report",
    )
    key_log_max_age_s: float = Field(
        default=60.0,
        ge=0,
        description="A held copy of the key log older than this is fetched again when a "
        "device asks (0: every time)",
    )
    auto_forward: bool = Field(
        default=True,
        description="Forward on its own timer (off: only when forward_ready() is called, "
        "as simulations on a virtual clock do)",
    )
