"""Acks take the relay's lean path (server/hot_routes.py) and, on SQLite, run on the event loop
(server/transactions.py). They must answer exactly as the FastAPI route did, on both backends,
and never wait on the loop for a write lock another thread holds."""

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from server.embedded import EmbeddedRelay
from server.group_commit import MAX_GROUP
from shared.auth import sign_request
from shared.identifiers import new_message_id
from tests.conftest import PersonFactory, relay_settings
from tests.helpers import assert_error


def _ack(
    relay: EmbeddedRelay,
    person: Any,
    ids: list[str],
    *,
    handle: str | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    me = person.profile.handle
    path = f"/v1/mailboxes/{handle or me}/ack"
    body = httpx.Request("POST", "/", json={"ids": ids}).content
    headers = headers or sign_request(person.profile.keys.signing, me, "POST", path, body)
    return httpx.post(
        relay.url + path,
        content=body,
        headers={**headers, "Content-Type": content_type},
        timeout=10,
    )


def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=10
    )


async def test_acks_answer_as_before_on_each_backend(
    relay: EmbeddedRelay, make_account: PersonFactory
) -> None:
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    sent = await alice.send_text("bob", "hi")
    [item] = (await bob.api.mailbox_page()).items

    done = _ack(relay, bob, [item.envelope.id, "0" * 32])
    assert done.status_code == 200, done.text
    assert done.json() == {"acked": [sent.msg_id], "unknown": ["0" * 32]}
    assert (await bob.api.mailbox_page()).items == []

    assert_error(_ack(relay, bob, ["x"]), 422, "invalid_request", "ids")
    assert_error(_ack(relay, alice, [sent.msg_id], handle="bob"), 403, "forbidden")
    # Someone else's key under bob's name; then no signature at all.
    ids = [new_message_id()]
    body = httpx.Request("POST", "/", json={"ids": ids}).content
    forged = sign_request(alice.profile.keys.signing, "bob", "POST", "/v1/mailboxes/bob/ack", body)
    assert_error(_ack(relay, bob, ids, headers=forged), 401, "bad_signature")
    assert_error(_ack(relay, bob, ids, headers={"X-None": "1"}), 401, "unauthenticated")


async def test_a_refused_ack_cannot_be_replayed(
    relay: EmbeddedRelay, make_account: PersonFactory
) -> None:
    alice = await make_account("alice", relay)
    await make_account("bob", relay)
    body = b'{"ids":["' + new_message_id().encode() + b'"]}'
    path = "/v1/mailboxes/bob/ack"
    headers = sign_request(alice.profile.keys.signing, "alice", "POST", path, body)
    assert_error(_post(relay.url + path, body, headers), 403, "forbidden")
    assert_error(_post(relay.url + path, body, headers), 401, "replayed_request")


async def test_a_body_not_sent_as_json_is_refused_alike_everywhere(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory
) -> None:
    """Another content type, or none, gets the same answer on the ack's lean path as on any
    route (an ack without one was parsed as JSON, a message without one refused), and the
    answer says what to send rather than pydantic's words."""
    bob = await make_account("bob", sqlite_relay)
    for content_type in ("text/plain", ""):
        answers = [
            _ack(sqlite_relay, bob, [new_message_id()], content_type=content_type),
            await asyncio.to_thread(
                httpx.post,
                sqlite_relay.url + "/v1/messages",
                content=b"{}",
                headers={
                    **sign_request(bob.profile.keys.signing, "bob", "POST", "/v1/messages", b"{}"),
                    "Content-Type": content_type,
                },
                timeout=10,
            ),
        ]
        for answer in answers:
            assert_error(answer, 422, "invalid_request", "Content-Type: application/json")


async def test_rate_limited_acks_say_when_to_retry(tmp_path, make_account: PersonFactory) -> None:
    settings = relay_settings(f"sqlite:///{tmp_path / 'relay.db'}", rate_burst=3, rate_per_s=0.1)
    with EmbeddedRelay(settings) as relay:
        bob = await make_account("bob", relay)
        answers = [_ack(relay, bob, [new_message_id()]) for _ in range(6)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited, [a.status_code for a in answers]
        assert_error(limited[0], 429, "rate_limited")
        assert float(limited[0].headers["Retry-After"]) > 0


@pytest.mark.parametrize("requests", [1, 5])
async def test_a_held_write_lock_sends_requests_to_a_thread_not_the_loop(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, requests: int
) -> None:
    """While another thread holds SQLite's write lock, acks wait on worker threads: the event
    loop keeps answering, and every ack completes once the lock is free."""
    bob = await make_account("bob", sqlite_relay)
    lock = sqlite_relay.app.state.write_lock
    assert lock is not None
    lock.acquire()
    try:
        loop = asyncio.get_running_loop()
        pending = [
            loop.run_in_executor(None, _ack, sqlite_relay, bob, [new_message_id()])
            for _ in range(requests)
        ]
        await asyncio.sleep(0.3)
        assert not any(p.done() for p in pending)  # they wait for the lock...
        # ...but not on the event loop: it answers while the lock is still held (the lock
        # is released only after this, so a blocked loop would time out here).
        health = await loop.run_in_executor(
            None, lambda: httpx.get(sqlite_relay.url + "/healthz", timeout=5)
        )
        assert health.status_code == 200
    finally:
        releaser = threading.Timer(0.1, lock.release)
        releaser.start()
    answers = await asyncio.gather(*pending)
    assert [a.status_code for a in answers] == [200] * requests


async def test_a_refusal_for_shape_spends_no_nonce(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory
) -> None:
    """Shape comes before signature, window and nonce (protocol.md §4.5): the same bytes
    refused for their shape are refused the same way again, not as a replay."""
    bob = await make_account("bob", sqlite_relay)
    body = b'{"ids": ["not-an-id"]}'
    path = "/v1/mailboxes/bob/ack"
    headers = sign_request(bob.profile.keys.signing, "bob", "POST", path, body)
    for _ in range(2):
        assert_error(_post(sqlite_relay.url + path, body, headers), 422, "invalid_request")


class _LoopCatcher:
    """ASGI layer that remembers the relay's event loop, so a test can hold it still."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


async def _acks_arriving_together(
    relay: EmbeddedRelay, acks: list[tuple[bytes, dict[str, str], str]]
) -> list[httpx.Response]:
    """Send ``acks`` (body, headers, path), each on a connection of its own, while the relay's
    loop is held still, so that it reads them all in the same turn."""
    catcher = relay.served  # the relay was started with wrap=_LoopCatcher
    assert isinstance(catcher, _LoopCatcher) and catcher.loop is not None
    connections = [socket.create_connection(("127.0.0.1", relay.port)) for _ in acks]
    try:
        await asyncio.sleep(0.2)  # accepted and watched by the relay
        asleep = threading.Event()

        def hold_still() -> None:
            asleep.set()
            time.sleep(0.5)

        catcher.loop.call_soon_threadsafe(hold_still)
        assert await asyncio.to_thread(asleep.wait, 10)  # the relay's loop is asleep now
        for connection, (body, headers, path) in zip(connections, acks, strict=True):
            head = [f"POST {path} HTTP/1.1", "Host: relay", "Content-Type: application/json"]
            head += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
            connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        loop = asyncio.get_running_loop()
        return await asyncio.gather(
            *(loop.run_in_executor(None, _read_response, c) for c in connections)
        )
    finally:
        for connection in connections:
            connection.close()


def _read_response(connection: socket.socket) -> httpx.Response:
    connection.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += connection.recv(65536)
    return httpx.Response(int(lines[0].split()[1]), headers=headers, content=body)


def _signed_ack(
    person: Any, ids: list[str], handle: str | None = None
) -> tuple[bytes, dict[str, str], str]:
    path = f"/v1/mailboxes/{handle or person.profile.handle}/ack"
    body = httpx.Request("POST", "/", json={"ids": ids}).content
    headers = sign_request(person.profile.keys.signing, person.profile.handle, "POST", path, body)
    return body, headers, path


async def test_acks_arriving_together_share_one_transaction_and_a_failure_spoils_none(
    db_url: str, make_account: PersonFactory
) -> None:
    with EmbeddedRelay(relay_settings(db_url), wrap=_LoopCatcher) as relay:
        alice = await make_account("alice", relay)
        readers = [await make_account(f"reader{i}", relay) for i in range(6)]
        sent = {
            r.profile.handle: (await alice.send_text(r.profile.handle, "hi")).msg_id
            for r in readers
        }
        group = relay.app.state.group_commit

        # Together, all fine: one transaction, every ack applied.
        answers = await _acks_arriving_together(
            relay, [_signed_ack(r, [sent[r.profile.handle]]) for r in readers[:3]]
        )
        assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
        assert [a.json()["acked"] for a in answers] == [
            [sent[r.profile.handle]] for r in readers[:3]
        ]
        assert group.groups == 1

        # Together with one that must fail (someone else's mailbox) and one replayed.
        trespass = _signed_ack(readers[3], [sent["reader4"]], handle="reader4")
        replayed = _signed_ack(readers[0], [new_message_id()])
        assert _post(relay.url + replayed[2], replayed[0], replayed[1]).status_code == 200
        fine = [_signed_ack(r, [sent[r.profile.handle]]) for r in readers[3:]]
        # Fine ones first: nothing of theirs may be committed before the failure is known.
        answers = await _acks_arriving_together(relay, [*fine, trespass, replayed])
        assert (group.groups, group.fallbacks) == (1, 1)
        assert_error(answers[3], 403, "forbidden")
        assert_error(answers[4], 401, "replayed_request")
        assert [a.json()["acked"] for a in answers[:3]] == [
            [sent[r.profile.handle]] for r in readers[3:]
        ]
        for reader in readers:
            assert (await reader.api.mailbox_page()).items == []
        # The refused request kept its nonce, as it would have on its own.
        assert_error(
            _post(relay.url + trespass[2], trespass[0], trespass[1]), 401, "replayed_request"
        )


async def test_a_wave_of_acks_is_served_in_groups_of_at_most_max_group(
    sqlite_url: str, make_account: PersonFactory
) -> None:
    """A thousand acks in one turn must not hold the loop (and every stream) as one group."""
    with EmbeddedRelay(
        relay_settings(sqlite_url, rate_burst=1000),
        wrap=_LoopCatcher,
    ) as relay:
        bob = await make_account("bob", relay)
        acks = [_signed_ack(bob, [new_message_id()]) for _ in range(MAX_GROUP + 6)]
        answers = await _acks_arriving_together(relay, acks)
        assert [a.status_code for a in answers] == [200] * len(acks)
        assert relay.app.state.group_commit.groups == 2
