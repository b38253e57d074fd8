"""Small helpers for black-box tests that speak raw HTTP to a relay, run the CLI, or drive the
business gateway as a Cloud API integration would."""

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from sqlmodel import Session

from client.business.audience import AudienceRow
from client.business.sealing import seal_copy
from client.gateway.app import Gateway
from client.gateway.config import load_config, save_config
from client.gateway.server import GatewayServer, listening_socket
from client.gateway.tokens import issue_token
from client.ledger import PrivacyLedger
from client.messenger import Messenger, now_ms
from client.profile import ProfileInfo, create_profile
from client.relay_api import RelayAPI
from client.settings import ClientSettings
from server.embedded import EmbeddedRelay
from server.known_accounts import KnownAccounts
from server.models import Account
from shared.api import CampaignCreate, TemplateInfo
from shared.auth import sign_request
from shared.envelope import ChatContent, ChatPayload
from shared.identifiers import new_message_id
from shared.keys import AccountKeys
from shared.seal import VerificationError, open_envelope, seal_envelope


def signed(
    base_url: str,
    keys: AccountKeys,
    handle: str,
    method: str,
    path: str,
    body: bytes | Any = b"",
    **sign_kwargs: Any,
) -> httpx.Response:
    """Send one request signed as ``handle`` (body: raw bytes or a JSON-able value)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = sign_request(keys.signing, handle, method, path, raw, **sign_kwargs)
    headers["Content-Type"] = "application/json"
    return httpx.request(method, base_url + path, content=raw, headers=headers, timeout=10)


def relay_storage_bytes(db_url: str) -> bytes:
    """Every byte the relay keeps: the SQLite file and its WAL, or a dump of all PG rows."""
    if db_url.startswith("sqlite"):
        from pathlib import Path

        path = Path(db_url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    import psycopg

    chunks: list[bytes] = []
    with psycopg.connect(db_url) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(chunks)


def legacy_account(relay: EmbeddedRelay, home: Path, handle: str, name: str) -> Messenger:
    """An account whose row holds ``name`` as it stands, as if registered before the rules (or
    served by a relay that never checked): the client is the last line of defence."""
    keys = AccountKeys.generate()
    with Session(relay.app.state.engine) as session:
        session.add(
            Account(
                handle=handle,
                kind="person",
                display_name=name,
                country="+39",
                sign_key=keys.public.sign_b64,
                box_key=keys.public.box_b64,
                verified=False,
                created_at=now_ms(),
            )
        )
        session.commit()
    info = ProfileInfo(name=handle, handle=handle, relay_url=relay.url, display_name=handle)
    return Messenger(create_profile(home, info, keys), ClientSettings(home=home))


def run_cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``sealpost --home HOME ARGS`` run in this process (test_cli.py covers the subprocess
    form): the same code path without paying an interpreter start-up per command."""
    from sealpost.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--home", str(home), *args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    result = subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
    if check:
        assert code == 0, result.stderr
    return result


async def hostile_copy(
    shop: Messenger, template: TemplateInfo, person: Messenger, variables: dict[str, str]
) -> None:
    """One copy sealed by hand, in a campaign of its own (a campaign reaches a person once)."""
    campaign = await shop.api.create_campaign(
        CampaignCreate(template_id=template.id, budget=1_000_000, audience_size=1)
    )
    row = AudienceRow(line=2, handle=person.profile.handle, variables=variables)
    envelope = seal_copy(
        shop.profile.keys,
        shop.profile.handle,
        template,
        row,
        person.profile.keys.public.box,
        campaign.id,
        int(time.time() * 1000),
    )
    answer = await shop.api.send_batch_json([envelope])
    assert answer.accepted == 1, answer


def chat_envelopes(
    sender: Messenger, recipient_keys: AccountKeys, to: str, n: int, text: str = "flood"
) -> list[str]:
    """``n`` chat envelopes from ``sender`` to ``to``, sealed and serialised as the client
    would send them, for posting by hand."""
    out = []
    for _ in range(n):
        payload = ChatPayload(
            id=new_message_id(),
            sender=sender.profile.handle,
            recipient=to,
            sent_at=0,
            content=ChatContent(text=text),
        )
        envelope = seal_envelope(
            payload, sender.profile.keys, recipient_keys.public.box, category="service"
        )
        out.append(envelope.model_dump_json())
    return out


def sealpost(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "sealpost", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def post_batch(relay: EmbeddedRelay, sender: Messenger, envelopes: list[str]) -> httpx.Response:
    """``POST /v1/messages/batch`` of these envelope JSONs, signed by ``sender``."""
    raw = ('{"envelopes":[' + ",".join(envelopes) + "]}").encode()
    return signed(
        relay.url, sender.profile.keys, sender.profile.handle, "POST", "/v1/messages/batch", raw
    )


def assert_error(response: httpx.Response, status: int, code: str | None, *says: str) -> str:
    """The response is exactly ``{"error": {"code", "message"}}`` with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message, body
    for fragment in says:
        assert fragment in message, message
    return message


def swap_keys(relay: EmbeddedRelay, handle: str) -> AccountKeys:
    """The attack: new keys for ``handle`` in the relay's database, served from now on."""
    keys = AccountKeys.generate()
    with relay.app.state.engine.begin() as conn:
        conn.execute(
            text("UPDATE relay_account SET sign_key = :s, box_key = :b WHERE handle = :h"),
            {"s": keys.public.sign_b64, "b": keys.public.box_b64, "h": handle},
        )
    relay.app.state.accounts = KnownAccounts()  # its cache held the real keys
    return keys


async def send_as(
    relay: EmbeddedRelay, handle: str, keys: AccountKeys, to: Messenger, text_: str
) -> str:
    """A chat from ``handle`` to ``to``, signed with ``keys`` and sent as ``handle``."""
    payload = ChatPayload(
        id=new_message_id(),
        sender=handle,
        recipient=to.profile.handle,
        sent_at=int(time.time() * 1000),
        content=ChatContent(text=text_),
    )
    async with RelayAPI(relay.url, handle, keys, PrivacyLedger(None)) as api:
        await api.send(seal_envelope(payload, keys, to.profile.keys.public.box))
    return payload.id


async def readable_by(
    relay: EmbeddedRelay, handle: str, keys: AccountKeys, sender: Messenger
) -> list[str]:
    """The texts from ``sender`` waiting in ``handle``'s mailbox that ``keys`` can open."""
    async with RelayAPI(relay.url, handle, keys, PrivacyLedger(None)) as api:
        page = await api.mailbox_page()
    texts = []
    for item in page.items:
        try:
            payload = open_envelope(item.envelope, keys, sender.profile.keys.public)
        except VerificationError as exc:
            assert exc.reason == "cannot_decrypt"  # sealed to the real keys: fine
            continue
        texts.append(payload.content.text)  # type: ignore[union-attr]
    return texts


# --- the business gateway (client/gateway/), driven as a Cloud API integration would ---------

APP_SECRET = "s3cret-app"
VERIFY_TOKEN = "verify-me"
ALICE_NUMBER = "393331234567"
# Bounds on waiting for something that is awaited, never a delay: a webhook arrives as soon
# as the gateway has it, and a test that waits longer than this has found a lost event.
EVENT_TIMEOUT_S = 20


class ToGateway(httpx.AsyncBaseTransport):
    """pywa's httpx transport, pointed at the gateway instead of graph.facebook.com."""

    def __init__(self, url: str) -> None:
        self.target = httpx.URL(url)
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self.target.scheme, host=self.target.host, port=self.target.port
        )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Served:
    """An ASGI app on a loopback socket, in this test's event loop."""

    def __init__(self, app: Any) -> None:
        self.sock = listening_socket()
        host, port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task
        self.sock.close()


@dataclass
class WebhookInbox:
    """A bare webhook endpoint: answers the handshake, checks each signature, keeps bodies."""

    bodies: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    refused: int = 0
    down: int = 0  # answer this many deliveries 503, as an endpoint being redeployed would

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/hook")
        async def challenge(request: Request) -> Response:
            params = request.query_params
            if params.get("hub.verify_token") != VERIFY_TOKEN:
                return Response("Forbidden", status_code=403)
            return Response(params.get("hub.challenge", ""), media_type="text/plain")

        @app.post("/hook")
        async def update(request: Request) -> Response:
            body = await request.body()
            if self.down:
                self.down -= 1
                return Response("busy", status_code=503)
            mac = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            if request.headers.get("x-hub-signature-256") != f"sha256={mac}":
                self.refused += 1
                return Response("Forbidden", status_code=403)
            self.bodies.put_nowait(json.loads(body))
            return Response("ok")

        return app

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.bodies.get(), EVENT_TIMEOUT_S)


@dataclass
class Running:
    relay: EmbeddedRelay
    shop: Messenger
    gateway: Gateway
    server: GatewayServer
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def phone_id(self) -> str:
        return self.gateway.config.phone_number_id

    @property
    def waba_id(self) -> str:
        return self.gateway.config.waba_id

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url + "/v23.0",
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=EVENT_TIMEOUT_S,
        )


def prepare_gateway(shop: Messenger, relay: EmbeddedRelay, webhook_url: str) -> Running:
    """A gateway for ``shop`` whose port is known (and already listening) but not served
    until ``running.server.start()``: its webhook endpoint must be up by then."""
    config = load_config(shop.profile).model_copy(
        update={"webhook_url": webhook_url, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}
    )
    save_config(shop.profile, config)
    token = issue_token(shop.profile, "test")
    gateway = Gateway(shop, load_config(shop.profile))
    server = GatewayServer(gateway, listening_socket())
    return Running(relay, shop, gateway, server, token)


SPRING = {
    "name": "spring_offer",
    "language": "en_US",
    "category": "MARKETING",
    "parameter_format": "NAMED",
    "components": [
        {
            "type": "BODY",
            "text": "Hi {{name}}, {{code}} takes 20% off your next pair",
            "example": {
                "body_text_named_params": [
                    {"param_name": "name", "example": "Ana"},
                    {"param_name": "code", "example": "SPRING20"},
                ]
            },
        },
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Yes please"}]},
    ],
}


def spring_to(to: str, name: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "spring_offer",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "name", "text": name},
                        {"type": "text", "parameter_name": "code", "text": "SPRING20"},
                    ],
                }
            ],
        },
    }


def same_shape(value: Any, handles: dict[str, str]) -> Any:
    """``value`` with what differs between any two sends made the same: ids, times, and
    the recipient's own handle and number (which the business gave), as placeholders."""
    if isinstance(value, dict):
        return {k: same_shape(v, handles) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [same_shape(v, handles) for v in value]
    if isinstance(value, str):
        if value in handles:
            return handles[value]
        if value.startswith("wamid."):
            return "<wamid>"
        if re.fullmatch(r"[0-9]{10}", value):
            return "<timestamp>"
    return value
