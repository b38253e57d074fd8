"""The relay's token key log, passed through to devices (``GET /v1/key-log``).

Devices check the key of each token against this log before they report (client/key_log.py).
Fetching it from the relay themselves would show the relay their address and, worse, the
moment each report is about to leave, which is what the shuffler hides. So they fetch it here:
the shuffler holds one copy of the relay's answer, bytes unchanged, and serves it to every
device that asks. The relay sees the shuffler's requests only, on the shuffler's own timer
(``key_log_refresh_s``), and every device behind this shuffler gets the same copy, so the
relay cannot show one of them a log of her own (Privacy Pass's "consistency mirror",
draft-group-privacypass-consistency-mirror).

A device names the campaign it is about to check (``?campaign=``, which its report names
anyway): a held copy that does not list it is fetched again at once. With the timer running
this does not happen for honest relays (a campaign's key is logged before any copy is sent,
and a device waits a minute after its own signed requests), so such a fetch tells the relay
nothing it could tie to a report.
"""

import asyncio
import time
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from shared.token_log import KEY_LOG_PATH, KeyLog
from shuffler import tls


class KeyLogUnavailable(Exception):
    """The relay did not give a usable log and no copy is held."""


@dataclass(frozen=True)
class HeldLog:
    body: bytes  # exactly as the relay answered
    campaigns: frozenset[str]
    fetched_at: float  # time.monotonic()


class KeyLogMirror:
    def __init__(self, relay_url: str, max_age_s: float, timeout_s: float = 15.0) -> None:
        self.url = relay_url.rstrip("/") + KEY_LOG_PATH
        self.max_age_s = max_age_s
        self.timeout_s = timeout_s
        self.held: HeldLog | None = None
        self.last_error: str | None = None
        self._lock = asyncio.Lock()  # one fetch at a time; waiters take its result

    async def get(self, campaign: str | None = None) -> bytes:
        """The log for a device: the held copy, fetched again first if it is too old or
        does not list ``campaign``. A failed fetch falls back on the held copy."""
        if self._usable(campaign):
            assert self.held is not None
            return self.held.body
        async with self._lock:
            if not self._usable(campaign):  # nobody fetched it while this one waited
                try:
                    await self.refresh()
                except KeyLogUnavailable:
                    if self.held is None:
                        raise
        assert self.held is not None
        return self.held.body

    def _usable(self, campaign: str | None) -> bool:
        held = self.held
        if held is None or time.monotonic() - held.fetched_at >= self.max_age_s:
            return False
        return campaign is None or campaign in held.campaigns

    async def refresh(self) -> None:
        """Fetch the relay's log now. Raises :class:`KeyLogUnavailable`; the copy held
        stays as it was."""
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, verify=tls.relay_channel()
            ) as http:
                answer = await http.get(self.url)
        except httpx.HTTPError as exc:
            self.last_error = f"relay unreachable: {exc}"
            raise KeyLogUnavailable(self.last_error) from exc
        if answer.status_code != 200:
            self.last_error = f"relay answered {answer.status_code}: {answer.text[:200]}"
            raise KeyLogUnavailable(self.last_error)
        try:
            # Parsed only to know which campaigns it lists; devices check it themselves.
            log = KeyLog.model_validate_json(answer.content)
        except ValidationError as exc:
            self.last_error = "the relay's answer is not a key log"
            raise KeyLogUnavailable(self.last_error) from exc
        self.held = HeldLog(
            answer.content, frozenset(e.campaign_id for e in log.entries), time.monotonic()
        )
        self.last_error = None
