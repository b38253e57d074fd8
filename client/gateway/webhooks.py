"""Webhooks to the integration: the Cloud API's envelope, signed, delivered in order.

As Meta does, the gateway first proves the endpoint is the integration's with the
``hub.challenge`` handshake (the endpoint echoes a random challenge when given its verify
token), then posts each event signed with ``X-Hub-Signature-256`` (HMAC-SHA256 of the body
with the app secret). Events wait in the gateway's state until the endpoint answers 2xx.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from typing import Any

import httpx

from client.gateway.config import GatewayConfig
from client.gateway.state import GatewayState

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60.0


class WebhookError(Exception):
    """The webhook endpoint failed the verification handshake; the message says how."""


def signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(config: GatewayConfig, value: dict[str, Any], field: str = "messages") -> bytes:
    """One change in the Cloud API's webhook envelope, as bytes ready to sign."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": config.display_phone_number,
            "phone_number_id": config.phone_number_id,
        },
        **value,
    }
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": config.waba_id, "changes": [{"value": value, "field": field}]}],
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class Webhooks:
    def __init__(self, config: GatewayConfig, state: GatewayState) -> None:
        self.config = config
        self.state = state
        self._wake = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=15.0)
        self.delivered = 0  # events the endpoint took, since start (for the status line)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def verify(self) -> None:
        """The ``hub.challenge`` handshake with the configured endpoint."""
        url = self.config.webhook_url
        if url is None:
            return
        challenge = str(secrets.randbelow(10**10))
        params = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": self.config.verify_token,
        }
        try:
            answer = await self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise WebhookError(f"the webhook endpoint {url} cannot be reached: {exc}") from exc
        if answer.status_code != 200 or answer.text.strip() != challenge:
            raise WebhookError(
                f"the webhook endpoint {url} did not echo hub.challenge (HTTP "
                f"{answer.status_code}); give it the verify token printed by "
                "`sealpost gateway token`"
            )

    def post(self, value: dict[str, Any], field: str = "messages") -> None:
        """Queue one event (kept on disk) and wake the sender."""
        if self.config.webhook_url is None:
            return
        self.state.queue_webhook(envelope(self.config, value, field))
        self._wake.set()

    async def run(self) -> None:
        """Deliver queued events in order, for as long as the gateway runs."""
        backoff = 1.0
        while True:
            queued = self.state.next_webhook()
            if queued is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            seq, body = queued
            if await self._deliver(body):
                self.state.webhook_done(seq)
                self.delivered += 1
                backoff = 1.0
                continue
            # The endpoint is down or refused: wait (or until something new is queued,
            # which is as good a moment as any to try again), then retry the same event.
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _deliver(self, body: bytes) -> bool:
        assert self.config.webhook_url is not None
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature(self.config.app_secret, body),
        }
        try:
            answer = await self._http.post(self.config.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("webhook endpoint unreachable: %s", exc)
            return False
        if answer.is_success:
            return True
        log.warning("webhook endpoint answered HTTP %s", answer.status_code)
        return False
