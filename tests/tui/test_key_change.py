"""The app when a contact's key changes (issue #16), on a real relay: the chat and its header
warn, the safety number opens from the chat, a message signed by the new key stays held until
the person accepts the key, and a reply is sealed to the new key only once they have."""

from pathlib import Path

from textual.widgets import Label, Static

from client.tui.screens.safety_number import SafetyNumberModal
from server.embedded import EmbeddedRelay
from shared.safety_numbers import format_safety_number
from tests.conftest import PersonFactory
from tests.helpers import readable_by, send_as, swap_keys
from tests.tui.conftest import (
    SIZE,
    chat_list,
    conversation_text,
    make_app,
    toasts,
    until_online,
    wait_for,
)

WARNING = "alice's safety number changed — compare it before trusting new messages"


def header(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.main.query_one("#peer-name", Label).content)


def digits(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one("#safety-digits", Static).content)


async def test_the_safety_number_opens_from_the_chat_and_can_be_marked_verified(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("alice")
    await alice.send_text("bob", "hello bob")
    number = alice.safety_number(await alice.contact("bob"))

    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "hello bob" in conversation_text(app))
        assert "safety number" not in header(app)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, SafetyNumberModal))
        assert digits(app) == format_safety_number(number)  # the digits alice's device shows
        await pilot.click("#verify")
        await wait_for(pilot, lambda: "safety number verified" in header(app))
        assert app.messenger.store.contact("alice").safety_verified  # type: ignore[union-attr]
        # Also in the command palette, for those who do not know the key.
        assert any(c.title == "Safety number" for c in app.get_system_commands(app.screen))


async def test_a_key_change_warns_and_a_reply_asks_before_sealing_to_the_new_key(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("alice")
    await alice.send_text("bob", "hello bob")
    await bob.sync()  # bob's device pins alice's real keys

    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await wait_for(pilot, lambda: "hello bob" in conversation_text(app))
        app.messenger.mark_verified("alice")
        app.contact_changed("alice")
        await wait_for(pilot, lambda: "safety number verified" in header(app))

        mallory = swap_keys(sqlite_relay, "alice")
        await send_as(sqlite_relay, "alice", mallory, bob, "wire the money today")
        await wait_for(pilot, lambda: WARNING in conversation_text(app))
        text = conversation_text(app)
        assert "wire the money today" not in text  # held, not shown as genuine
        assert "key_changed" in text
        assert "⚠ safety number changed" in header(app)
        assert "safety number verified" not in header(app)  # cleared by the change
        assert any("safety number changed" in t for t in toasts(app))
        [row] = chat_list(app).rows
        assert row.preview == "⚠ safety number changed"

        # A reply asks first, showing the new number; Cancel keeps the text, sends nothing.
        await pilot.click("#composer")
        await pilot.press(*"is this you?", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SafetyNumberModal))
        contact = app.messenger.store.contact("alice")
        assert contact is not None
        new_number = app.messenger.safety_number(contact, new=True)
        assert digits(app) == format_safety_number(new_number)
        await pilot.click("#close")
        await wait_for(pilot, lambda: not isinstance(app.screen, SafetyNumberModal))
        assert app.main.query_one("#composer").value == "is this you?"  # type: ignore[attr-defined]
        assert await readable_by(sqlite_relay, "alice", mallory, bob) == []
        assert "is this you?" not in conversation_text(app)

        # Accept and send: the held message is shown, the warning goes, the reply is sealed
        # to the accepted key (here the attacker's: the person chose to trust it).
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SafetyNumberModal))
        await pilot.click("#accept")
        await wait_for(pilot, lambda: "wire the money today" in conversation_text(app))
        await wait_for(pilot, lambda: "✓ sent" in conversation_text(app))
        assert WARNING not in conversation_text(app)
        assert "safety number changed" not in header(app)
        assert app.main.query_one("#composer").value == ""  # type: ignore[attr-defined]
    assert await readable_by(sqlite_relay, "alice", mallory, bob) == ["is this you?"]
