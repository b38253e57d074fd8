"""Replying from the composer, online and while the relay is away."""

from pathlib import Path

from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory, relay_settings
from tests.tui.conftest import (
    SIZE,
    conversation_text,
    make_app,
    until_connection,
    until_online,
    wait_for,
)


async def test_reply_reaches_the_other_side(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("alice")
    await alice.send_text("bob", "lunch?")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "lunch?" in conversation_text(app))
        await pilot.click("#composer")
        await pilot.press(*"yes, [b]12:30[/b]", "enter")
        await wait_for(pilot, lambda: "✓ sent" in conversation_text(app))
        assert "yes, [b]12:30[/b]" in conversation_text(app)
        assert app.main.query_one("#composer").value == ""
    [reply] = (await alice.sync()).stored
    assert (reply.sender, reply.text, reply.status) == ("bob", "yes, [b]12:30[/b]", "verified")


async def test_relay_loss_queues_then_recovers(
    sqlite_url: str, make_account: PersonFactory, home: Path
) -> None:
    relay = EmbeddedRelay(relay_settings(sqlite_url)).start()
    port = relay.port
    try:
        alice = await make_account("alice", relay)
        bob = await make_account("bob", relay)
        await bob.accept_request("alice")
        await alice.send_text("bob", "are you there?")
        app = make_app(home, "bob")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "are you there?" in conversation_text(app))
            relay.stop()
            await until_connection(app, "offline")
            assert "offline, retrying" in app.sub_title
            await pilot.click("#composer")
            await pilot.press(*"typed while offline", "enter")
            await wait_for(pilot, lambda: "◷ queued" in conversation_text(app))
            relay = EmbeddedRelay(relay_settings(sqlite_url), port=port).start()
            await until_online(app)
            await wait_for(pilot, lambda: "✓ sent" in conversation_text(app))
            assert "◷ queued" not in conversation_text(app)
        [got] = (await alice.sync()).stored
        assert got.text == "typed while offline"
    finally:
        relay.stop()
