"""Client settings, read from ``SEALPOST_*`` environment variables (CLI flags override them)."""

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEALPOST_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path(user_data_dir("sealpost")),
        description="Data directory holding profiles/",
    )
    request_timeout_s: float = 15.0
    max_retries: int = Field(default=5, description="Retries after 429 or a dropped connection")
    ack_delay_s: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="Longest wait before acking what the stream delivered (batched; a late "
        "ack only means a redelivery after a reconnect, which the store ignores)",
    )
    moderation_handle: str = Field(
        default="moderation", description="The report desk's account on the relay"
    )
    moderation_key_fingerprint: str | None = Field(
        default=None,
        description="SHA-256 (hex) of the desk's signing and box keys, as the relay's operator "
        "publishes it (`sealpost desk create` prints it): a report is sealed only to a desk "
        "whose keys match, so nobody else holding the desk's handle can read who reported whom",
    )
    shuffler_url: str | None = Field(
        default=None,
        description="The shuffler anonymous reports go to (one per request); unset, they go "
        "straight to the relay, which then sees when and from where each came (the privacy "
        "ledger says so on every such report)",
    )
    token_log_key_fingerprint: str | None = Field(
        default=None,
        description="SHA-256 (hex) of the relay's token key log signing key, as its operator "
        "publishes it (`sealpost relay --print-token-log-key`): a device checks its tokens' "
        "keys only against a log signed by that key. Unset, the first log key the device "
        "sees is kept, and a log signed by any other is refused",
    )
