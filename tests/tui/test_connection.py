"""Connection state: held by the app (from the relay's ``event: ready``), watched by screens."""

from pathlib import Path

from textual.widgets import Label

from client.tui.screens.main import MainScreen
from client.tui.state import Connection
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory, relay_settings
from tests.tui.conftest import SIZE, make_app, until_connection, until_online


def connection_label(screen: MainScreen) -> str:
    return str(screen.query_one("#connection", Label).content)


async def test_a_screen_mounted_after_the_stream_opened_shows_online(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    """A screen reads the app's connection state when it mounts: the state is not a one-off
    call into widgets that may not be composed yet (that call found no ``#connection`` and
    crashed, or a later mount drew "offline" over a connection that was up)."""
    await make_account("bob", sqlite_relay)
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        assert "● online" in connection_label(app.main)
        late = MainScreen()
        await app.push_screen(late)
        await pilot.pause()
        assert "● online" in connection_label(late)


async def test_the_label_and_header_follow_the_relay_going_and_coming_back(
    sqlite_url: str, make_account: PersonFactory, home: Path
) -> None:
    relay = EmbeddedRelay(relay_settings(sqlite_url)).start()
    port = relay.port
    try:
        await make_account("bob", relay)
        app = make_app(home, "bob")
        async with app.run_test(size=SIZE) as pilot:
            await until_online(app)
            assert app.connection == Connection("online")
            relay.stop()
            await until_connection(app, "offline")
            await pilot.pause()
            assert "offline, retrying" in connection_label(app.main)
            assert "offline, retrying" in app.sub_title
            relay = EmbeddedRelay(relay_settings(sqlite_url), port=port).start()
            await until_online(app)
            await pilot.pause()
            assert "● online" in connection_label(app.main)
            assert "· online" in app.sub_title
    finally:
        relay.stop()
