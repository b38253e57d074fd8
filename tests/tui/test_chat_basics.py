"""The app on a real relay: conversations from the store, live messages, untrusted text."""

from pathlib import Path

from client.tui.widgets.chat_list import ChatList
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory
from tests.tui.conftest import (
    SIZE,
    chat_list,
    conversation,
    conversation_text,
    make_app,
    toasts,
    until_online,
    wait_for,
)


async def test_starts_with_stored_conversations_then_shows_a_live_message(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    carol = await make_account("carol", sqlite_relay)
    for friend in ("alice", "carol"):  # contacts: their messages are no message requests
        await bob.accept_request(friend)
    await alice.send_text("bob", "hello from alice")
    await bob.sync()

    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        assert chat_list(app).visible_peers() == ["alice"]
        assert "hello from alice" in conversation_text(app)
        assert "online" in app.sub_title

        await carol.send_text("bob", "carol here, live")
        await wait_for(pilot, lambda: "carol" in chat_list(app).visible_peers())
        toast = "New message · carol"
        await wait_for(
            pilot, lambda: any(toast in t and "carol here, live" in t for t in toasts(app))
        )
        carol_row = next(r for r in app.main.query_one(ChatList).rows if r.peer == "carol")
        assert carol_row.unread == 1
        # The open conversation stays alice's; a live message elsewhere does not steal focus.
        assert conversation(app).peer == "alice"


async def test_markup_in_a_message_is_shown_literally(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("alice")
    tricky = "[bold]x[/] [red \x1b[31m"
    await alice.send_text("bob", tricky)

    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "alice" in chat_list(app).visible_peers())
        await wait_for(pilot, lambda: "[bold]x[/] [red" in conversation_text(app))
        assert "[bold]x[/] [red \\x1b[31m" in conversation_text(app)  # escape made visible
        # The toast is raised by its own handler: it may come a moment after the text.
        await wait_for(pilot, lambda: any("[bold]x[/] [red" in t for t in toasts(app)))
        await pilot.pause()
        # The screen itself still renders (a markup error would have crashed the app).
        assert app.is_running
