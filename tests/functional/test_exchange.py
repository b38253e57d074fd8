"""Two people exchanging sealed messages through a real relay, on SQLite and PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator

import httpx

from client.events import ClientEvent, ConnectionChanged, MessageStored
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory, relay_settings
from tests.helpers import relay_storage_bytes


async def test_two_persons_exchange_messages(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay, country="+44")

    sent = await alice.send_text("bob", "hello bob")
    assert sent.status == "sent"
    report = await bob.sync()
    assert [(m.sender, m.text, m.status) for m in report.stored] == [
        ("alice", "hello bob", "verified")
    ]

    await bob.send_text("alice", "hi alice")
    report = await alice.sync()
    assert [m.text for m in report.stored] == ["hi alice"]
    assert [m.text for m in alice.store.messages("bob")] == ["hello bob", "hi alice"]
    convo = bob.store.conversations()[0]
    assert (convo.peer, convo.unread) == ("alice", 1)


async def test_offline_recipient_catches_up_in_order(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    for i in range(25):
        await alice.send_text("bob", f"message {i}")
    report = await bob.sync()
    assert [m.text for m in report.stored] == [f"message {i}" for i in range(25)]
    assert (await bob.api.mailbox_page()).items == []  # all acked, gone from the relay
    assert (await bob.sync()).stored == []


async def test_relay_restart_with_pending_messages_loses_nothing(db_url, make_account):
    relay = EmbeddedRelay(relay_settings(db_url)).start()
    port = relay.port
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    for i in range(5):
        await alice.send_text("bob", f"before restart {i}")
    relay.stop()
    restarted = EmbeddedRelay(relay_settings(db_url), port=port).start()
    try:
        report = await bob.sync()
        assert [m.text for m in report.stored] == [f"before restart {i}" for i in range(5)]
    finally:
        restarted.stop()


async def test_redelivery_never_duplicates_the_store(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    for i in range(3):
        await alice.send_text("bob", f"m{i}")
    # Bob stores the page but his ack is lost (crash between store and ack).
    page = await bob.api.mailbox_page()
    for item in page.items:
        await bob._receive(item)
    report = await bob.sync()
    assert report.stored == [] and report.duplicates == 3
    assert len(bob.store.messages("alice")) == 3
    assert (await bob.api.mailbox_page()).items == []


async def test_sender_retry_of_the_same_envelope_is_a_duplicate(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    message = await alice.send_text("bob", "once")
    page = await bob.api.mailbox_page()
    envelope = page.items[0].envelope
    # Alice never saw the first answer and resends the same sealed envelope, before and after
    # Bob acked it: the relay recognises it both times and Bob gets one message.
    assert (await alice.api.send(envelope)).status == "duplicate"
    await bob.sync()
    assert (await alice.api.send(envelope)).status == "duplicate"
    assert (await bob.sync()).stored == []
    assert [m.msg_id for m in bob.store.messages("alice")] == [message.msg_id]


async def test_stream_pushes_live_and_resumes_after_disconnect(relay, make_account):
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    received: list[str] = []
    states: list[bool] = []
    got, online = asyncio.Event(), asyncio.Event()

    def on_event(event):
        if isinstance(event, MessageStored):
            received.append(event.message.text)
            if len(received) >= 2:
                got.set()
        elif isinstance(event, ConnectionChanged):
            states.append(event.online)
            if event.online:
                online.set()

    stop = asyncio.Event()
    listener = asyncio.create_task(bob.listen(on_event, stop))
    await asyncio.wait_for(online.wait(), timeout=20)  # the stream is open: what follows is live
    await alice.send_text("bob", "live one")
    await alice.send_text("bob", "live two")
    await asyncio.wait_for(got.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(listener, timeout=20)
    assert received == ["live one", "live two"]
    assert states[0] is True

    # Offline messages arrive on the next connection, exactly once.
    await alice.send_text("bob", "while away")
    received.clear()
    got.clear()
    stop = asyncio.Event()
    listener = asyncio.create_task(bob.listen(on_event, stop))
    await alice.send_text("bob", "after reconnect")
    await asyncio.wait_for(got.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(listener, timeout=20)
    assert received == ["while away", "after reconnect"]
    assert len(bob.store.messages("alice")) == 4


async def test_a_message_arriving_while_an_ack_is_on_the_wire_is_acked_too(
    sqlite_relay, make_account, monkeypatch
):
    """The stream acks in batches; one that lands during an ack request must not be left
    pending (it would be delivered again, never charged, never get its signal token)."""
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    bob.settings.ack_delay_s = 0.05
    in_flight, release = asyncio.Event(), asyncio.Event()
    real_ack = bob.api.ack

    async def slow_ack(ids):
        in_flight.set()
        await release.wait()  # hold the first ack on the wire
        return await real_ack(ids)

    monkeypatch.setattr(bob.api, "ack", slow_ack)
    stored = []
    stop, online = asyncio.Event(), asyncio.Event()

    def on_event(event):  # type: ignore[no-untyped-def]
        if isinstance(event, MessageStored):
            stored.append(event.message)
        elif isinstance(event, ConnectionChanged) and event.online:
            online.set()

    listener = asyncio.create_task(bob.listen(on_event, stop))
    await asyncio.wait_for(online.wait(), timeout=20)
    await alice.send_text("bob", "first")
    await asyncio.wait_for(in_flight.wait(), timeout=10)
    await alice.send_text("bob", "during the ack")
    for _ in range(100):
        if len(stored) == 2:
            break
        await asyncio.sleep(0.05)
    release.set()
    for _ in range(60):
        pending = (await bob.api.mailbox_page()).items
        if not pending:
            break
        await asyncio.sleep(0.05)
    stop.set()  # (stopping acks what is left: so look before)
    await asyncio.wait_for(listener, timeout=20)
    assert [m.text for m in stored] == ["first", "during the ack"]
    assert pending == []


async def test_message_typed_while_relay_is_down_is_queued_then_sent(sqlite_url, make_account):
    relay = EmbeddedRelay(relay_settings(sqlite_url)).start()
    port = relay.port
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    await alice.send_text("bob", "first")  # pins bob's keys
    relay.stop()
    alice.api.max_retries = 0
    queued = await alice.send_text("bob", "typed while offline")
    assert queued.status == "queued"
    assert [e.msg_id for e in alice.store.outbox()] == [queued.msg_id]
    restarted = EmbeddedRelay(relay_settings(sqlite_url), port=port).start()
    try:
        report = await alice.flush_outbox()
        assert report.sent == [queued.msg_id]
        assert [m.text for m in (await bob.sync()).stored] == ["first", "typed while offline"]
    finally:
        restarted.stop()


async def test_relay_storage_holds_no_plaintext(relay, make_account):
    canaries = ["canary-7f3a9 the rain in Spain", "CANARY coupon Z9Q-4471", "Giulia Bianchi +39"]
    alice = await make_account("alice", relay)
    bob = await make_account("bob", relay)
    for text in canaries:
        await alice.send_text("bob", text)
    await bob.send_text("alice", canaries[0] + " back")
    stored = relay_storage_bytes(relay.settings.db)
    assert len(stored) > 0
    assert alice.profile.keys.public.sign_b64.encode() in stored  # the search can find things
    for text in canaries:
        assert text.encode() not in stored
    # Pending (unacked) and acked mail alike: sync Bob, then search again.
    await bob.sync()
    stored = relay_storage_bytes(relay.settings.db)
    for text in canaries:
        assert text.encode() not in stored


def _requests_since(person, start: int) -> list[str]:
    """What ``person``'s device sent after its ledger's first ``start`` entries."""
    return [f"{e['method']} {e['url'].split('/v1/')[1]}" for e in person.ledger.entries()[start:]]


async def test_a_sync_asks_no_more_than_it_needs(sqlite_relay, make_account):
    alice = await make_account("alice", sqlite_relay)
    carol = await make_account("carol", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await alice.send_text("bob", "from alice")
    await carol.send_text("bob", "from carol")

    start = len(bob.ledger.entries())
    report = await bob.sync()
    assert sorted(m.text for m in report.stored) == ["from alice", "from carol"]
    sent = _requests_since(bob, start)
    # One page (shorter than asked for: nothing more to fetch), both senders' keys in one
    # directory request, one ack.
    assert [r.split("?")[0] for r in sent] == [
        "GET mailboxes/bob",
        "POST accounts/lookup",
        "POST mailboxes/bob/ack",
    ]
    assert bob.store.contact("alice") and bob.store.contact("carol")  # pinned


async def test_a_full_first_page_is_followed_by_the_next(sqlite_relay, make_account, monkeypatch):
    import client.messenger

    monkeypatch.setattr(client.messenger, "FIRST_SYNC_PAGE", 3)
    monkeypatch.setattr(client.messenger, "SYNC_PAGE", 3)
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    for i in range(6):  # exactly two full pages
        await alice.send_text("bob", f"message {i}")
    start = len(bob.ledger.entries())
    report = await bob.sync()
    assert [m.text for m in report.stored] == [f"message {i}" for i in range(6)]
    pages = [r for r in _requests_since(bob, start) if r.startswith("GET mailboxes")]
    assert len(pages) == 3  # two full pages, then the empty one that says it is over
    assert (await bob.api.mailbox_page()).items == []


async def test_online_means_the_relay_said_the_stream_is_ready(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory
) -> None:
    """``ConnectionChanged(online=True)`` comes from the relay's ``event: ready`` on the stream,
    not from sending the request: a relay that has not answered yet is not online."""
    bob = await make_account("bob", sqlite_relay)
    asked, answer = asyncio.Event(), asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        asked.set()  # the client is reading the stream's answer
        await answer.wait()  # the relay has the request and has not answered yet
        yield b"retry: 2000\nevent: ready\ndata: {}\n\n"
        await asyncio.Event().wait()  # then quiet, as a stream with nothing pending is

    def relay(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/mailboxes/bob/stream"
        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    await bob.api._http.aclose()
    bob.api._http = httpx.AsyncClient(
        transport=httpx.MockTransport(relay), base_url=bob.api.base_url
    )
    states: list[bool] = []
    came = asyncio.Event()

    def on_event(event: ClientEvent) -> None:
        if isinstance(event, ConnectionChanged):
            states.append(event.online)
            came.set()

    stop = asyncio.Event()
    listener = asyncio.create_task(bob.listen(on_event, stop))
    try:
        await asyncio.wait_for(asked.wait(), timeout=10)
        assert states == []  # asked, not answered: neither online nor offline yet
        answer.set()
        await asyncio.wait_for(came.wait(), timeout=10)
        assert states == [True]
    finally:
        stop.set()
        await asyncio.wait_for(listener, timeout=10)
