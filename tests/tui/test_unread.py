"""Unread counts: the open chat never keeps one, whichever way its messages came."""

from pathlib import Path

from client.tui.app import SealpostApp
from client.tui.screens.help import HelpScreen
from client.tui.screens.main import MainScreen
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory
from tests.tui.conftest import SIZE, chat_list, conversation, make_app, until_online, wait_for


def unread_of(app: SealpostApp, peer: str) -> int:
    return next(r.unread for r in chat_list(app).rows if r.peer == peer)


async def test_the_chat_open_at_start_up_has_no_unread_count(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    """Bob wrote to Alice (so her chat opens first), then she wrote twice while his app was
    closed: both arrive on the stream into the chat already open."""
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.send_text("alice", "see you at 8?")
    await alice.send_text("bob", "yes")
    await alice.send_text("bob", "at the usual place")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await wait_for(pilot, lambda: len(conversation(app).messages) == 3)
        assert conversation(app).peer == "alice"
        assert unread_of(app, "alice") == 0
        assert app.store.conversation("alice").unread == 0  # type: ignore[union-attr]
        assert "unread" not in app.sub_title


async def test_a_message_that_came_while_a_dialog_covered_the_chat_is_read_on_return(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.send_text("alice", "see you at 8?")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        assert conversation(app).peer == "alice"
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await alice.send_text("bob", "yes!")
        # Unread while the help covers it: the person has not seen it yet.
        await wait_for(pilot, lambda: "1 unread" in app.sub_title)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.pause()
        assert unread_of(app, "alice") == 0
        assert app.store.conversation("alice").unread == 0  # type: ignore[union-attr]
        assert "unread" not in app.sub_title
