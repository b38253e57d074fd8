"""A delivery stream's keepalive runs on its own schedule, however busy the stream is: it is
also the stream's safety net, the moment it re-reads its mailbox for anything a push missed."""

import asyncio
import json
import secrets
import sqlite3
import time
from urllib.parse import urlsplit

from sealpost.benchmarks.seeding import seed_persons
from sealpost.benchmarks.wire import Connection
from server.embedded import EmbeddedRelay
from shared.encoding import b64encode
from tests.conftest import relay_settings


def _envelope(sender: str, recipient: str) -> tuple[str, str]:
    msg_id = secrets.token_hex(16)
    envelope = {
        "v": 1,
        "id": msg_id,
        "sender": sender,
        "recipient": recipient,
        "kind": "chat",
        "category": "service",
        "ciphertext": b64encode(secrets.token_bytes(256)),
    }
    return msg_id, json.dumps(envelope)


def _store_behind_the_relays_back(db_path: str, recipient: str) -> str:
    """A pending row the relay's notifier never hears of, as if its push had been lost."""
    msg_id = secrets.token_hex(16)
    with sqlite3.connect(db_path) as db:
        db.execute(
            "INSERT INTO relay_mailbox (msg_id, sender, recipient, kind, category, digest, "
            "ciphertext, received_at, state, price) VALUES (?, ?, ?, 'chat', 'service', ?, ?, "
            "?, 'pending', 0)",
            (msg_id, "nobody", recipient, "0" * 64, secrets.token_bytes(256), int(time.time())),
        )
    return msg_id


async def test_a_busy_stream_keeps_alive_and_finds_what_a_push_missed(sqlite_url: str) -> None:
    (ana, ana_keys), (bo, bo_keys) = seed_persons(sqlite_url, 2)
    with EmbeddedRelay(relay_settings(sqlite_url, keepalive_s=0.5)) as relay:
        where = urlsplit(relay.url)
        host, port = where.hostname or "", where.port or 0
        sender = Connection(host, port, bo, bo_keys)
        events = Connection(host, port, ana, ana_keys).events(f"/v1/mailboxes/{ana}/stream")
        assert b"event: ready" in await anext(events)

        async def send() -> str:
            msg_id, envelope = _envelope(bo, ana)
            body = ('{"envelopes":[' + envelope + "]}").encode()
            status, answer = await sender.request("POST", "/v1/messages/batch", body)
            assert status == 200, answer
            return msg_id

        # Once a pushed message has arrived, the stream's first read is behind it.
        first = await send()
        assert first.encode() in await anext(events)
        missed = _store_behind_the_relays_back(sqlite_url.removeprefix("sqlite:///"), ana)

        async def keep_busy() -> None:
            # A push every 0.1 s: under the old per-wait timeout, the keepalive never came.
            while True:
                await send()
                await asyncio.sleep(0.1)

        busy = asyncio.create_task(keep_busy())
        seen: list[bytes] = []
        try:
            async with asyncio.timeout(10):
                while not (
                    any(missed.encode() in e for e in seen)
                    and any(e.startswith(b": keepalive") for e in seen)
                ):
                    seen.append(await anext(events))
        finally:
            busy.cancel()
            sender.close()
            await events.aclose()
        found = next(i for i, e in enumerate(seen) if missed.encode() in e)
        assert sum(e.startswith(b"id: ") for e in seen[:found]) >= 2, "pushes came meanwhile"


async def test_a_stream_the_client_closed_stops_watching(sqlite_url: str) -> None:
    """No disconnect check of its own: the server's notice of the closed connection must end
    the stream, or the relay would keep rendering frames for a client that left."""
    [(ana, ana_keys)] = seed_persons(sqlite_url, 1)
    with EmbeddedRelay(relay_settings(sqlite_url, keepalive_s=60)) as relay:
        where = urlsplit(relay.url)
        events = Connection(where.hostname or "", where.port or 0, ana, ana_keys).events(
            f"/v1/mailboxes/{ana}/stream"
        )
        assert b"event: ready" in await anext(events)
        notifier = relay.app.state.notifier
        assert notifier.listening(ana)
        await events.aclose()  # closes the connection
        for _ in range(100):
            if not notifier.listening(ana):
                break
            await asyncio.sleep(0.05)
        assert not notifier.listening(ana), "still watching 5 s after the client left"
