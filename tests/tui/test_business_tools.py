"""Business tools: templates with live validation, a campaign from a CSV, budget, analytics."""

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, Select, Static, TabbedContent

from client.business.figures import about
from client.messenger import Messenger
from client.tui.app import SealpostApp
from client.tui.screens.business import BusinessToolsScreen, check_draft
from client.tui.widgets.bar_chart import BarChart
from server import rollout
from server.clock import ManualClock
from server.embedded import EmbeddedRelay
from shared.api import CampaignFigures, CampaignReport, Estimate, NoisyCount
from tests.conftest import PersonFactory
from tests.tui.conftest import make_app, until_online, wait_for
from tests.tui.seed import T0

SIZE = (130, 44)
HOUR = 3_600_000
# "about 2 delivered (± 75)": a published figure always comes with its margin.
ABOUT = r"about -?[\d,]+ {} \(± [\d,]+\)"


def text_of(screen: BusinessToolsScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def test_check_draft_reports_problems_in_plain_words() -> None:
    check = check_draft("Bad Name", "marketing", "", "Hi {{name}}", "", "", "")
    assert check.draft is None
    assert any("lowercase letters" in p for p in check.problems)
    check = check_draft("offer", "utility", "", "Hi {{name}}, 20% off", "", "oops", "name=Ana")
    assert any("button line 1" in p for p in check.problems)
    check = check_draft("offer", "utility", "", "Hi {{name}}, 20% off", "", "", "name=Ana")
    assert check.problems == [] and check.final and check.final.category == "marketing"
    assert check.reclassified and check.preview and check.preview.body == "Hi Ana, 20% off"


async def test_business_tools_template_campaign_budget_and_analytics(
    clocked_relay: EmbeddedRelay,
    clock: ManualClock,
    make_account: PersonFactory,
    home: Path,
    tmp_path: Path,
) -> None:
    await make_account("acme", clocked_relay, business=True, display_name="ACME Shoes")
    ann = await make_account("ann", clocked_relay)
    ben = await make_account("ben", clocked_relay)
    audience = tmp_path / "customers.csv"
    audience.write_text("handle,name\nann,Ann\nben,Ben\n")

    app = make_app(home, "acme")
    async with app.run_test(size=SIZE) as pilot:
        assert any(c.title == "Business tools" for c in app.get_system_commands(app.screen))
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, BusinessToolsScreen))
        screen = app.screen
        assert isinstance(screen, BusinessToolsScreen)

        # A template, checked as it is typed: a problem shows, then goes once it is fixed.
        await pilot.click("#tpl-name")
        await pilot.press(*"offer")
        await pilot.click("#tpl-body")
        await pilot.press(*"Hi {{name}}!")
        await wait_for(pilot, lambda: "no example value" in text_of(screen, "#tpl-problems"))
        assert screen.query_one("#tpl-register").disabled
        await pilot.click("#tpl-examples")
        await pilot.press(*"name=Ana")
        await wait_for(pilot, lambda: "ready to register" in text_of(screen, "#tpl-problems"))
        preview = text_of(screen, "#tpl-preview")
        assert "Hi Ana!" in preview and "Stop promotions" in preview
        await pilot.click("#tpl-register")
        await wait_for(pilot, lambda: len(screen.templates) == 1)
        [template] = screen.templates
        assert template.template.name == "offer"
        table = screen.query_one("#tpl-table", DataTable)
        assert table.row_count == 1
        # Its quality: medium until published figures say otherwise (server/quality.py).
        await wait_for(pilot, lambda: str(table.get_row_at(0)[2]) == "medium")
        # Where the business stands, on the campaign form: its rating, tier and room left.
        await wait_for(pilot, lambda: "tier 1 of 5" in text_of(screen, "#cmp-quality"))
        assert "250 of 250 people left in 24 hours" in text_of(screen, "#cmp-quality")

        # Money first: a top-up from the budget tab.
        await pilot.click("#--content-tab-tab-budget")
        assert app.focused is screen.query_one("#topup-amount")
        await pilot.press(*"50", "enter")
        await wait_for(pilot, lambda: screen.budget and screen.budget.available == 50_000_000)
        summary = text_of(screen, "#budget-summary")
        assert "Available: 50.00" in summary
        assert "Privacy budget: 1.0 of 1.0 left this 30 days — 5 more campaign reports" in summary

        # A campaign to the two people of the CSV, with a progress bar.
        screen.query_one(TabbedContent).active = "tab-campaigns"
        screen.query_one("#cmp-template", Select).value = template.id
        await pilot.pause()
        assert "handle, name" in text_of(screen, "#cmp-columns")
        screen.query_one("#cmp-audience", Input).value = str(audience)
        screen.query_one("#cmp-name", Input).value = "Spring"
        screen.query_one("#cmp-budget", Input).value = "5"
        await pilot.click("#cmp-run")
        await wait_for(pilot, lambda: screen.last_run is not None)
        assert screen.last_run and screen.last_run.accepted == 2
        assert screen.query_one("#cmp-progress", ProgressBar).percentage == 1.0
        assert "2 of 2 copies accepted" in text_of(screen, "#cmp-result")

        # The people sync; the analytics show what was sent and spent, exactly, and say when
        # the figures about people are due.
        await ann.sync()
        await ben.sync()
        screen.query_one(TabbedContent).active = "tab-analytics"
        await pilot.press("f5")
        await wait_for(pilot, lambda: screen.campaigns and screen.campaigns[0].sent == 2)
        report = screen.campaigns[0]
        assert report.spend > 0 and report.status == "sent" and report.figures is None
        detail = text_of(screen, "#cmp-detail")
        assert "Spring" in detail and "sent 2" in detail
        assert f"spend {screen.money(report.spend)}" in detail
        assert "Figures: due at" in detail and "delivered" not in detail
        chart = screen.query_one("#chart-delivery", BarChart)
        assert [(b.label, b.value) for b in chart.bars] == [("sent", 2)]
        assert not screen.query_one("#chart-interactions", BarChart).bars

        # Once the relay's clock passes the due time, the figures are published, with margins.
        clock.advance(report.figures_at - clock.now_ms())
        clocked_relay.app.state.dispatcher.run_once()
        await pilot.press("f5")
        await wait_for(pilot, lambda: screen.campaigns[0].figures is not None)
        report = screen.campaigns[0]
        figures = report.figures
        assert figures is not None and report.status == "done"
        detail = text_of(screen, "#cmp-detail")
        assert about(figures.delivered, "delivered") in detail
        assert re.search(ABOUT.format("delivered"), detail)
        assert re.search(ABOUT.format("not delivered"), detail)
        assert ("rebate: " in detail) == (figures.rebate > 0)
        bars = {b.label: (b.value, b.note) for b in chart.bars}
        assert bars["sent"] == (2, "exact")
        assert bars["delivered"] == (figures.delivered.value, f"± {figures.delivered.margin:,}")
        assert "refused: stopped promotions" in bars
        interactions = screen.query_one("#chart-interactions", BarChart)
        labels = [b.label for b in interactions.bars]
        assert labels == ["not read", "read", "clicked", "dismissed", "no signal"]

        # The report spent a fifth of the privacy budget; a rebate, if any, is in the ledger.
        await wait_for(pilot, lambda: screen.budget and screen.budget.privacy.spent_30d > 0)
        summary = text_of(screen, "#budget-summary")
        assert "Privacy budget: 0.8 of 1.0 left this 30 days — 4 more campaign reports" in summary
        assert "a rebate gives back" in summary
        rebates = [line.amount for line in screen.budget.ledger if line.kind == "rebate"]
        assert rebates == ([figures.rebate] if figures.rebate else [])
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, BusinessToolsScreen))
        await pilot.press("f7")  # the same tools again, with what they held
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.templates == [template]


async def test_person_profile_has_no_business_tools(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    await make_account("bob", sqlite_relay)
    app = make_app(home, "bob")
    async with app.run_test() as pilot:
        await pilot.press("f7")
        await pilot.pause()
        assert not isinstance(app.screen, BusinessToolsScreen)
        assert all(c.title != "Business tools" for c in app.get_system_commands(app.screen))


def _about(value: int, margin: int = 60) -> NoisyCount:
    return NoisyCount(value=value, margin=margin)


# A campaign of 1,180 copies at 0.0691 EUR, published with the noise of a relay set to ε 0.1
# for counts (margins of ± 60), of which about 73 copies came back as a rebate.
REPORT = CampaignReport(
    id="cmp_0123456789abcdef",
    name="Winter sale",
    template_id="tpl_0123456789abcdef",
    category="marketing",
    status="done",
    stop_reason=None,
    send_at=T0,
    expires_at=T0 + 7 * 86_400_000,
    budget=100_000_000,
    targeted=1200,
    accepted=1180,
    rejected_budget=0,
    scheduled=0,
    sent=1180,
    cancelled=0,
    spend=1180 * 69_100 - 73 * 69_100,
    reserved=0,
    refunded=73 * 69_100,
    figures_at=T0 + 72 * HOUR,
    figures_note="published",
    figures=CampaignFigures(
        published_at=T0 + 72 * HOUR,
        epsilon=0.2,
        delivered=_about(1104),
        refused=_about(22, 111),
        refused_by_reason={
            "blocked": _about(14),
            "stopped_promotions": _about(9),
            "marketing_level": _about(-3),  # noise can push a small count below zero
            "daily_cap": _about(2),
        },
        not_delivered=_about(51),
        signal_reports=_about(1093, 104),
        no_signal=_about(43, 50),
        interactions={
            "not_read": Estimate(value=251.5, low=105.2, high=397.8),
            "read": Estimate(value=560.5, low=414.8, high=706.2),
            "clicked": Estimate(value=148.0, low=5.3, high=290.7),
            "dismissed": Estimate(value=90.0, low=-52.1, high=232.1),
        },
        rebate=73 * 69_100,
    ),
)
# Later campaigns: one whose figures wait for a spent privacy budget, one not yet due.
WITHHELD = REPORT.model_copy(
    update={
        "id": "cmp_1123456789abcdef",
        "name": "Spring teaser",
        "status": "withheld",
        "send_at": T0 + 96 * HOUR,
        "figures_at": T0 + 168 * HOUR,
        "spend": 1180 * 69_100,
        "refunded": 0,
        "figures_note": "withheld: your privacy budget for the last 30 days is spent; the "
        "figures are published once it renews, at about 2026-01-31 10:00 UTC",
        "figures": None,
    }
)
DUE = WITHHELD.model_copy(
    update={
        "id": "cmp_2123456789abcdef",
        "name": "Easter",
        "status": "sent",
        "send_at": T0 + 120 * HOUR,
        "figures_at": T0 + 192 * HOUR,
        "figures_note": "due at 2026-01-09 10:00 UTC",
    }
)


def test_analytics_snapshot(
    sqlite_relay: EmbeddedRelay, home: Path, snap_compare: Callable[..., bool]
) -> None:
    async def create() -> None:
        shop = await Messenger.create_account(
            home, "acme", "acme", sqlite_relay.url, business=True, display_name="ACME Shoes"
        )
        await shop.aclose()

    asyncio.run(create())
    app = make_app(home, "acme")

    async def ready(pilot: Pilot) -> None:
        await until_online(app)
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, BusinessToolsScreen))
        screen = app.screen
        assert isinstance(screen, BusinessToolsScreen)
        await wait_for(pilot, lambda: screen.budget is not None and not loading(app))
        # The screen opens on Templates with the name field focused; that focus reaches the
        # tabs as a message, which on a loaded machine could land after the switch below and
        # switch back. Let it settle first, then check the switch held.
        await wait_for(pilot, lambda: getattr(app.focused, "id", None) == "tpl-name")
        await pilot.pause(0.2)
        tabs = screen.query_one(TabbedContent)
        tabs.active = "tab-analytics"
        await wait_for(pilot, lambda: getattr(app.focused, "id", None) == "cmp-table")
        await wait_for(pilot, lambda: not loading(app))
        assert tabs.active == "tab-analytics"
        # Fixed figures (ids, times and noise are random otherwise), the published one shown.
        screen.selected_campaign = REPORT.id
        screen.show_campaigns([REPORT, WITHHELD, DUE])
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def loading(app: SealpostApp) -> bool:
    return any(w.group.startswith("business") and w.is_running for w in app.workers)


async def test_a_business_outside_the_rollout_is_told_before_it_tries(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    with Session(sqlite_relay.app.state.engine) as session:  # the operator: beta testers only
        rollout.set_share(session, "marketing", 0, 0)
        session.commit()
    app = make_app(home, "acme")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, BusinessToolsScreen))
        screen = app.screen
        assert isinstance(screen, BusinessToolsScreen)
        screen.query_one(TabbedContent).active = "tab-campaigns"
        note = screen.query_one("#cmp-availability", Static)
        await wait_for(pilot, lambda: note.display)
        said = " ".join(text_of(screen, "#cmp-availability").split())
        assert "Marketing messages are not available to your account yet" in said
        assert "now to 0 % of accounts" in said
