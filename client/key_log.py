"""The device's side of the token key log: fetch it anonymously, check it, remember its head.

Before a signal report leaves, the device makes sure the key its token was proven against is
the key the relay publishes for that campaign to everybody (shared/token_log.py). The log is
fetched on the anonymous channel, through the shuffler when there is one (the relay then sees
the shuffler's request, on the shuffler's timer, and every device behind it gets the same
copy), and checked whole: the chain, the head's signature, the log key (pinned with
``SEALPOST_TOKEN_LOG_KEY_FINGERPRINT``, or the one this device saw first), and that it extends
the head this device saw last, which is kept in the profile (``key_log_head.json``). A log that
does not is a fork: the relay showed this device, at two moments, histories that cannot both
be true.
"""

import json
import os
from pathlib import Path

import httpx
from pydantic import ValidationError

from client import tls
from client.ledger import PrivacyLedger
from client.relay_api import RelayUnavailable
from shared.token_log import (
    KEY_LOG_PATH,
    SHUFFLER_KEY_LOG_PATH,
    KeyLog,
    KeyLogBehind,
    KeyLogHead,
    KeyLogView,
    verify_log,
)

KEY_LOG_DIRECT_WARNING = (
    "no shuffler set (SEALPOST_SHUFFLER_URL): the token key log was fetched straight from the "
    "relay, which sees when and from which address"
)


class KeyLogUnavailable(RelayUnavailable):
    """No usable log right now (unreachable, refused, or an older copy than one seen before):
    the report waits, and goes once the log can be checked."""


class KeyLogReader:
    """Fetches and checks the log for one profile, and remembers the last head it verified."""

    def __init__(
        self, profile_dir: Path, ledger: PrivacyLedger, pinned_fingerprint: str | None = None
    ) -> None:
        self.dir = profile_dir
        self.ledger = ledger
        self.pinned_fingerprint = pinned_fingerprint

    @property
    def _head_path(self) -> Path:
        return self.dir / "key_log_head.json"

    def seen(self) -> KeyLogHead | None:
        """The head of the last log this device verified, or None before the first."""
        try:
            return KeyLogHead.model_validate_json(self._head_path.read_bytes())
        except FileNotFoundError:
            return None

    def _remember(self, head: KeyLogHead) -> None:
        # Never backwards: another process (the app and `sealpost inbox`) may have seen a
        # longer log meanwhile; the longer one is the stronger check next time. The same
        # head again (every report while no campaign is added) needs no write.
        seen = self.seen()
        if seen is not None and (seen.size > head.size or seen == head):
            return
        temporary = self._head_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(head.model_dump(), indent=2))
        os.replace(temporary, self._head_path)

    async def fetch(self, base_url: str, *, via_shuffler: bool, campaign_id: str) -> KeyLog:
        """The log, on a fresh client with no credential. Through the shuffler the request
        names the campaign (its report names it anyway) so that a copy held from before the
        campaign existed is fetched again; straight to the relay it names nothing."""
        if via_shuffler:
            url = f"{base_url}{SHUFFLER_KEY_LOG_PATH}?campaign={campaign_id}"
            marks = {"channel": "anonymous", "via": "shuffler"}
        else:
            url = base_url + KEY_LOG_PATH
            marks = {"channel": "anonymous", "via": "relay", "warning": KEY_LOG_DIRECT_WARNING}
        self.ledger.record("GET", url, marks, b"")
        try:
            async with httpx.AsyncClient(timeout=15, verify=tls.anonymous_channel()) as http:
                answer = await http.get(url)
        except httpx.HTTPError as exc:
            raise KeyLogUnavailable(f"the token key log could not be fetched: {exc}") from exc
        if answer.status_code != 200:
            raise KeyLogUnavailable(
                f"the token key log could not be fetched (HTTP {answer.status_code})"
            )
        try:
            return KeyLog.model_validate_json(answer.content)
        except ValidationError as exc:
            raise KeyLogUnavailable("the answer was not a token key log") from exc

    def check(self, log: KeyLog, seen: KeyLogHead | None = None) -> KeyLogView:
        """Verify ``log`` against the pinned key and the head seen last (``seen``, if the
        caller just read it), then remember its head. Raises shared.token_log's
        ``KeyLogInvalid`` (the relay misbehaved: the head seen last is kept) or
        :class:`KeyLogUnavailable` (an older copy: try later)."""
        seen = self.seen() if seen is None else seen
        try:
            view = verify_log(log, seen=seen, pinned_fingerprint=self.pinned_fingerprint)
        except KeyLogBehind as exc:
            raise KeyLogUnavailable(f"the token key log served is out of date: {exc}") from exc
        self._remember(view.head)
        return view
