"""Settings, help, the privacy explainer, the palette and the theme."""

from pathlib import Path

from client.messenger import Messenger
from client.tui.screens.help import HelpScreen
from client.tui.screens.privacy import PrivacyExplainer
from client.tui.screens.settings import SettingsScreen
from client.tui.state import TuiState
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory
from tests.tui.conftest import SIZE, make_app, wait_for
from tests.tui.seed import seed_demo


async def test_settings_change_the_relay_prefs(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    await make_account("acme", sqlite_relay, business=True)
    seed_demo(bob.store, "bob")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.prefs is not None)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.click("#level-weekly")
        await pilot.click("#apply-level")
        await wait_for(pilot, lambda: app.prefs and app.prefs.level == "weekly")
        await pilot.click("#blocked")
        await wait_for(pilot, lambda: app.prefs and app.prefs.blocked == ["acme"])
        prefs = await bob.api.preferences()
        assert (prefs.level, prefs.weekly_limit, prefs.blocked) == ("weekly", 3, ["acme"])
        await pilot.click("#blocked")  # unblock
        await wait_for(pilot, lambda: app.prefs and app.prefs.blocked == [])
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))


async def test_help_privacy_palette_and_theme(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    seed_demo(bob.store, "bob")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.click("#privacy-marker")  # the business chat's marker opens the explainer
        await wait_for(pilot, lambda: isinstance(app.screen, PrivacyExplainer))
        await pilot.press("escape")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Settings", "Report this business", "Block / unblock this business"} <= titles
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
    assert TuiState.load(app.state_path).theme == "textual-light"
