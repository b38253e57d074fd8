"""Async HTTP client for the relay: signs every request, records it, backs off on 429."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
from pydantic import BaseModel

from client import tls
from client.ledger import PrivacyLedger
from shared.api import (
    AccountInfo,
    AckRequest,
    AckResponse,
    BatchResponse,
    BudgetView,
    CampaignCreate,
    CampaignList,
    CampaignReport,
    FeatureAccess,
    LookupRequest,
    LookupResponse,
    MailboxItem,
    MailboxPage,
    Preferences,
    RegisterAccount,
    SendResult,
    SetLevel,
    TemplateInfo,
    TemplateList,
    TopUp,
)
from shared.auth import sign_request
from shared.envelope import Envelope
from shared.keys import AccountKeys
from shared.pricing import PriceTable
from shared.templates import TemplateDraft

MAX_RETRY_AFTER_S = 30.0
CONNECT_RETRIES = 2
STREAM_SILENCE_S = 45.0


class RelayError(Exception):
    """The relay refused a request; ``code`` and ``message`` come from its error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth retrying later as is: rate limited, a stale clock, or the relay's own fault."""
        return self.status == 429 or self.status >= 500 or self.code == "stale_request"


class RelayUnavailable(Exception):
    """The relay could not be reached; the work is kept and can be retried later."""


class RelayAPI:
    def __init__(
        self,
        base_url: str,
        handle: str,
        keys: AccountKeys,
        ledger: PrivacyLedger | None = None,
        timeout_s: float = 15.0,
        max_retries: int = 5,
        other_urls: Sequence[str] = (),
    ) -> None:
        # The relay in use first, then the others of the same deployment, tried in turn
        # when the one in use cannot be reached (a relay that answers is never left).
        self.urls = list(dict.fromkeys(u.rstrip("/") for u in (base_url, *other_urls)))
        self.base_url = self.urls[0]
        self.handle = handle
        self.keys = keys
        self.ledger = ledger
        self.max_retries = max_retries
        # When this client last signed a request, in ``clock`` seconds (a simulation sets
        # its virtual clock): anonymous reports keep away from it (client/signals.py).
        self.clock: Callable[[], float] = time.time
        self.last_signed_at: float | None = None
        # The person's choices as the relay last answered them, and when (time.monotonic()):
        # every call that reads or changes them refreshes it (client/local_choices.py).
        self.known_preferences: tuple[float, Preferences] | None = None
        # Silence on the delivery stream for this long means a dead link (the relay sends a
        # keepalive every 15 s by default; a simulation's relay, less often).
        self.stream_silence_s = STREAM_SILENCE_S
        self._timeout_s = timeout_s
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._http = self._client(self.base_url)

    def _client(self, url: str) -> httpx.AsyncClient:
        if url not in self._clients:
            self._clients[url] = httpx.AsyncClient(
                base_url=url, timeout=self._timeout_s, verify=tls.account_channel()
            )
        return self._clients[url]

    def _next_relay(self) -> bool:
        """Move on to the next relay of the deployment; False when there is only one."""
        if len(self.urls) == 1:
            return False
        self.base_url = self.urls[(self.urls.index(self.base_url) + 1) % len(self.urls)]
        self._http = self._client(self.base_url)
        return True

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def __aenter__(self) -> "RelayAPI":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _signed(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = sign_request(self.keys.signing, self.handle, method, path, body)
        self.last_signed_at = self.clock()
        if body:
            headers["Content-Type"] = "application/json"
        if self.ledger:
            # Every body this client sends is JSON it serialised itself.
            self.ledger.record(method, self.base_url + path, headers, body, is_json=True)
        return headers

    async def request(self, method: str, path: str, body: BaseModel | bytes | None = None) -> Any:
        """Send one signed request and return its JSON; retries 429 and dropped connections."""
        return _json_or_raise(await self._send(method, path, body))

    async def _send(
        self, method: str, path: str, body: BaseModel | bytes | None = None
    ) -> httpx.Response:
        """Send one signed request, retrying 429, a busy 503 and dropped connections, and on
        the other relays of the deployment if this one cannot be reached; the last response."""
        if isinstance(body, BaseModel):
            raw = body.model_dump_json().encode()
        else:
            raw = body or b""
        for _ in range(len(self.urls) - 1):
            try:
                return await self._send_here(method, path, raw)
            except RelayUnavailable:
                self._next_relay()
        return await self._send_here(method, path, raw)

    async def _send_here(self, method: str, path: str, raw: bytes) -> httpx.Response:
        delay = 0.5
        for attempt in range(self.max_retries + 1):
            # A fresh signature (new nonce, new timestamp) each try: a resend is not a replay.
            headers = self._signed(method, path, raw)
            try:
                response = await self._http.request(method, path, content=raw, headers=headers)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                # Nothing listening is unlikely to change within seconds: give up sooner than
                # on a connection that dropped mid-request.
                refused = isinstance(exc, httpx.ConnectError) and attempt >= CONNECT_RETRIES
                if attempt == self.max_retries or refused:
                    raise RelayUnavailable(f"Relay {self.base_url} unreachable: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            # 429, and 503 with a Retry-After (the relay is serving as many requests or
            # connections as it takes): nothing was done, so the same request is sent again.
            busy = response.status_code == 503 and "Retry-After" in response.headers
            if (response.status_code == 429 or busy) and attempt < self.max_retries:
                retry_after = float(response.headers.get("Retry-After", "1"))
                await asyncio.sleep(min(retry_after, MAX_RETRY_AFTER_S))
                continue
            return response
        raise AssertionError("unreachable")

    # --- endpoints -------------------------------------------------------------------------

    async def register(self, body: RegisterAccount) -> AccountInfo:
        return AccountInfo.model_validate(await self.request("POST", "/v1/accounts", body))

    async def lookup(self, handle: str) -> AccountInfo:
        return AccountInfo.model_validate(await self.request("GET", f"/v1/accounts/{handle}"))

    async def send(self, envelope: Envelope) -> SendResult:
        return SendResult.model_validate(await self.request("POST", "/v1/messages", envelope))

    async def send_batch_json(self, envelopes: list[str]) -> BatchResponse:
        """``POST /v1/messages/batch`` of envelopes already serialised as JSON."""
        body = ('{"envelopes":[' + ",".join(envelopes) + "]}").encode()
        return BatchResponse.model_validate(await self.request("POST", "/v1/messages/batch", body))

    async def mailbox_page(self, after: int = 0, limit: int | None = None) -> MailboxPage:
        query = f"?after={after}" + (f"&limit={limit}" if limit else "")
        response = await self._send("GET", f"/v1/mailboxes/{self.handle}{query}")
        if response.is_success:  # up to 1,000 envelopes: parsed straight from the bytes
            return MailboxPage.model_validate_json(response.content)
        return _json_or_raise(response)  # raises

    async def ack(self, ids: list[str]) -> AckResponse:
        return AckResponse.model_validate(
            await self.request("POST", f"/v1/mailboxes/{self.handle}/ack", AckRequest(ids=ids))
        )

    async def lookup_many(self, handles: list[str]) -> LookupResponse:
        response = await self._send("POST", "/v1/accounts/lookup", LookupRequest(handles=handles))
        if response.is_success:  # up to 1,000 entries: parsed straight from the bytes
            return LookupResponse.model_validate_json(response.content)
        return _json_or_raise(response)  # raises

    # --- templates, campaigns, budget (businesses) ------------------------------------------

    async def register_template(self, draft: TemplateDraft) -> TemplateInfo:
        return TemplateInfo.model_validate(await self.request("POST", "/v1/templates", draft))

    async def templates_of(self, business: str) -> TemplateList:
        return TemplateList.model_validate(
            await self.request("GET", f"/v1/templates?business={business}")
        )

    async def template(self, template_id: str) -> TemplateInfo:
        return TemplateInfo.model_validate(
            await self.request("GET", f"/v1/templates/{template_id}")
        )

    async def create_campaign(self, body: CampaignCreate) -> CampaignReport:
        return CampaignReport.model_validate(await self.request("POST", "/v1/campaigns", body))

    async def campaigns(self) -> CampaignList:
        return CampaignList.model_validate(await self.request("GET", "/v1/campaigns"))

    async def campaign(self, campaign_id: str) -> CampaignReport:
        return CampaignReport.model_validate(
            await self.request("GET", f"/v1/campaigns/{campaign_id}")
        )

    async def cancel_campaign(self, campaign_id: str) -> CampaignReport:
        return CampaignReport.model_validate(
            await self.request("POST", f"/v1/campaigns/{campaign_id}/cancel")
        )

    async def budget(self) -> BudgetView:
        return BudgetView.model_validate(await self.request("GET", "/v1/budget"))

    async def top_up(self, amount: int) -> BudgetView:
        return BudgetView.model_validate(
            await self.request("POST", "/v1/budget/top-up", TopUp(amount=amount))
        )

    async def pricing(self) -> PriceTable:
        return PriceTable.model_validate(await self.request("GET", "/v1/pricing"))

    async def features(self) -> dict[str, FeatureAccess]:
        """Which platform features this account has yet (a staged rollout)."""
        found = await self.request("GET", "/v1/features")
        return {name: FeatureAccess.model_validate(access) for name, access in found.items()}

    # --- a person's choices -----------------------------------------------------------------

    def _known(self, prefs: Preferences) -> Preferences:
        self.known_preferences = (time.monotonic(), prefs)
        return prefs

    async def preferences(self) -> Preferences:
        return self._known(Preferences.model_validate(await self.request("GET", "/v1/prefs")))

    async def set_level(self, body: SetLevel) -> Preferences:
        return self._known(
            Preferences.model_validate(await self.request("PUT", "/v1/prefs/level", body))
        )

    async def set_choice(self, choice: str, business: str, on: bool) -> Preferences:
        """``choice``: "blocked", "promotions-stopped" or "accepted" (a message request)."""
        method = "PUT" if on else "DELETE"
        return self._known(
            Preferences.model_validate(await self.request(method, f"/v1/prefs/{choice}/{business}"))
        )

    async def stream(
        self, on_ready: Callable[[], None] | None = None
    ) -> AsyncIterator[MailboxItem]:
        """Yield envelopes from the SSE stream until the connection ends.

        Every (re)connection starts with all envelopes still unacked. ``on_ready`` is called
        when the relay's ``event: ready`` arrives (before any envelope): from then on the
        stream is open and anything sent to this account reaches it live.

        Raises :class:`RelayUnavailable` when the connection cannot be made or drops.
        """
        path = f"/v1/mailboxes/{self.handle}/stream"
        headers = self._signed("GET", path, b"")
        # The relay sends a keepalive every 15 s; silence for much longer means a dead link.
        timeout = httpx.Timeout(10.0, read=self.stream_silence_s)
        try:
            async with self._http.stream("GET", path, headers=headers, timeout=timeout) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    _json_or_raise(resp)
                event, data = "message", []
                async for line in resp.aiter_lines():
                    if line == "":
                        if event == "envelope" and data:
                            yield MailboxItem.model_validate_json("\n".join(data))
                        elif event == "ready" and on_ready is not None:
                            on_ready()
                        event, data = "message", []
                    elif line.startswith(":"):
                        continue
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            dropped = self.base_url
            self._next_relay()  # the caller's reconnect tries the next relay, if any
            raise RelayUnavailable(f"Stream from {dropped} dropped: {exc}") from exc


def _json_or_raise(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json()
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", response.text[:200] or response.reason_phrase
    raise RelayError(response.status_code, code, message)
