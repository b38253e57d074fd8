"""At 80x24: dialogs scroll rather than cut their buttons; footers hold the current screen's
keys; ``?`` opens the help of the screen it is pressed on."""

from pathlib import Path

from textual.widget import Widget
from textual.widgets import Button, DataTable, Label
from textual.widgets._footer import FooterKey

from client.messenger import Messenger
from client.tui.app import SealpostApp
from client.tui.screens.help import HelpScreen
from client.tui.screens.ledger import LedgerScreen
from client.tui.screens.report import ReportModal
from client.tui.widgets.conversation_header import PRIVACY_MARKER
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory
from tests.tui.conftest import make_app, wait_for
from tests.tui.seed import seed_demo

SMALL = (80, 24)


def inside(widget: Widget, frame: Widget) -> bool:
    """``widget`` is drawn whole within ``frame`` (screen coordinates)."""
    return frame.region.contains_region(widget.region)


def footer_keys(app: SealpostApp) -> set[str]:
    return {key.description for key in app.screen.query(FooterKey)}


async def test_the_report_dialog_shows_its_buttons_at_80x24(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    seed_demo(bob.store, "bob")
    app = make_app(home, "bob")
    async with app.run_test(size=SMALL) as pilot:
        assert app.main.current_peer == "acme"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportModal))
        await pilot.pause()
        body = app.screen.query_one("#report")
        assert inside(app.screen.query_one("#confirm"), body)
        assert inside(app.screen.query_one("#cancel"), body)


async def test_footers_and_help_follow_the_screen(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    seed_demo(bob.store, "bob")
    app = make_app(home, "bob")
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        main_keys = footer_keys(app)
        assert {"Block", "Report", "Help"} <= main_keys
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, LedgerScreen))
        await pilot.pause()
        ledger_keys = footer_keys(app)
        assert "Export JSON lines" in ledger_keys
        assert not {"Block", "Report", "Promos on/off", "Not interested"} & ledger_keys
        await pilot.press("ctrl+b")  # not an action of this screen: nothing opens
        await pilot.pause()
        assert isinstance(app.screen, LedgerScreen)

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = app.screen.query_one(DataTable)
        actions = {str(rows.get_row_at(i)[1]) for i in range(rows.row_count)}
        assert "Export JSON lines" in actions
        assert "Block" not in actions
        assert "Privacy ledger" in str(app.screen.query_one(".modal-title").content)


async def test_the_chat_header_keeps_the_name_and_the_privacy_marker_at_80x24(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    seed_demo(bob.store, "bob")
    app = make_app(home, "bob")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert app.main.current_peer == "acme"
        header = app.main.query_one("#conversation-header")
        marker = app.main.query_one("#privacy-marker", Button)
        assert inside(marker, header) and inside(app.main.query_one("#peer-name"), header)
        assert marker.region.width >= len(PRIVACY_MARKER)  # the whole sentence, not cut
        assert "ACME Shoes" in str(app.main.query_one("#peer-name", Label).content)
