"""The gateway's settings, kept in the business profile (``<profile>/gateway.json``, 0600).

The Cloud API names a business by two numeric ids (its WhatsApp Business Account and its phone
number), and people by phone numbers; Sealpost names both by handles. The ids are derived from
the business's handle on first use and kept, so an integration configured once keeps working;
the numbers are the business's own customer list, mapped to handles here, on its machine
(the relay never learns them).
"""

import hashlib
import json
import logging
import os
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, Field

from client.profile import Profile
from shared.identifiers import HANDLE_PATTERN

log = logging.getLogger(__name__)
CONFIG_FILE = "gateway.json"
PHONE_NUMBER = re.compile(r"^\+?[0-9]{6,15}$")


class GatewayConfig(BaseModel):
    phone_number_id: str
    waba_id: str
    display_phone_number: str
    # The app secret signs webhooks (X-Hub-Signature-256); the verify token answers the
    # hub.challenge handshake. Both are the integration's to copy into its own settings.
    app_secret: str = Field(default_factory=lambda: secrets.token_hex(16))
    verify_token: str = Field(default_factory=lambda: secrets.token_urlsafe(12))
    webhook_url: str | None = None
    # Phone-number-like ids (digits only) the business uses for people, and their handles.
    recipients: dict[str, str] = Field(default_factory=dict)
    # Copies one campaign is declared for (its audience size): the gateway groups a day's
    # sends of a template into campaigns of at most this many (docs/gateway.md).
    campaign_size: int = Field(default=1000, ge=1, le=1_000_000)
    # The most one such campaign may spend, micro-units; None: what the balance allows.
    campaign_budget: int | None = Field(default=None, gt=0)


def _digits(seed: str, n: int) -> str:
    """``n`` decimal digits derived from ``seed``, never starting with 0 (ids look like Meta's)."""
    value = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(10 ** (n - 1) + value % (9 * 10 ** (n - 1)))


def normalise_number(number: str) -> str:
    """``+39 333-123 4567`` as the Cloud API's wa_id: digits only."""
    return re.sub(r"[^0-9]", "", number)


def config_path(profile: Profile) -> Path:
    return profile.dir / CONFIG_FILE


def load_config(profile: Profile) -> GatewayConfig:
    """The profile's gateway settings, created (and kept) on first use."""
    path = config_path(profile)
    if path.exists():
        return GatewayConfig.model_validate_json(path.read_text())
    handle = profile.handle
    config = GatewayConfig(
        phone_number_id=_digits(f"phone-number-id:{handle}", 15),
        waba_id=_digits(f"waba-id:{handle}", 15),
        display_phone_number=_digits(f"display-number:{handle}", 11),
    )
    save_config(profile, config)
    return config


def save_config(profile: Profile, config: GatewayConfig) -> None:
    path = config_path(profile)
    tmp = path.with_suffix(".tmp")
    # 0600 from the start: the app secret signs what the integration will trust.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(config.model_dump(), indent=2))
    os.replace(tmp, path)


def map_recipient(profile: Profile, number: str, handle: str) -> GatewayConfig:
    """Record that the business writes to ``handle`` as ``number``."""
    if not PHONE_NUMBER.match(number.replace(" ", "").replace("-", "")):
        raise ValueError(f"'{number}' is not a phone-number-like id (6 to 15 digits, + allowed)")
    name = handle.removeprefix("@")
    # Checked as written (lower() makes the Kelvin sign an ASCII k), and whole: the handle
    # becomes a path of the relay's API when the gateway looks its keys up.
    if not name.isascii() or not re.fullmatch(HANDLE_PATTERN, name.lower()):
        raise ValueError(f"'{handle}' is not a Sealpost handle (3 to 32 of a-z, 0-9, _ . -)")
    config = load_config(profile)
    config.recipients[normalise_number(number)] = name.lower()
    save_config(profile, config)
    return config


class MappingWatch:
    """Keeps a running gateway's ``config.recipients`` as ``gateway.json`` has them, so a
    number mapped while it runs (``sealpost gateway map``) works from its next request on, as
    a token issued meanwhile does; the other settings take effect at the next start."""

    def __init__(self, profile: Profile, config: GatewayConfig) -> None:
        self._profile = profile
        self._config = config
        self._seen = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            found = config_path(self._profile).stat()
        except FileNotFoundError:
            return None
        # Replaced whole on each save: a new inode even within one tick of the clock.
        return (found.st_mtime_ns, found.st_ino, found.st_size)

    def refresh(self) -> None:
        seen = self._stat()
        if seen == self._seen or seen is None:
            return
        self._seen = seen
        try:
            self._config.recipients = load_config(self._profile).recipients
        except (OSError, ValueError) as exc:  # a hand edit that does not parse
            # The mapping in use stays: a broken file must not stop every send.
            log.warning("gateway.json could not be read again (%s); the mapping in use stays", exc)
