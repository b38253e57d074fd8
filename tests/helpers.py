"""Small helpers for black-box tests that speak raw HTTP to a relay, and run the CLI."""

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlmodel import Session

from client.business.audience import AudienceRow
from client.business.sealing import seal_copy
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
