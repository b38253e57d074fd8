"""A deterministic snapshot of the main screen, and a large store opening fast."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from client.messenger import Messenger
from client.tui.screens.report import ReportModal
from client.tui.widgets.conversation import FIRST_PAGE
from sealpost.commands.desk import FINGERPRINT_ENV, create_desk
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory
from tests.tui.conftest import (
    SIZE,
    chat_list,
    conversation,
    make_app,
    toasts,
    until_online,
    wait_for,
)
from tests.tui.seed import seed_bulk, seed_demo


def test_main_screen_snapshot(
    sqlite_relay: EmbeddedRelay, home: Path, snap_compare: Callable[..., bool]
) -> None:
    # snap_compare runs the app in its own event loop, so this test is synchronous.
    async def create() -> None:
        bob = await Messenger.create_account(home, "bob", "bob", sqlite_relay.url, country="+39")
        seed_demo(bob.store, "bob")
        await bob.aclose()

    asyncio.run(create())
    app = make_app(home, "bob")

    async def ready(pilot: Pilot) -> None:
        await until_online(app)
        await wait_for(pilot, lambda: app.prefs is not None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


async def test_report_shows_what_will_be_sent_and_seals_it_to_moderation(
    sqlite_relay: EmbeddedRelay,
    make_account: PersonFactory,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    fingerprint = create_desk(
        home, "desk", "moderation", sqlite_relay.url, sqlite_relay.app.state.engine, "Desk"
    )
    monkeypatch.setenv(FINGERPRINT_ENV, fingerprint)
    desk = Messenger.open(home, "desk")
    seed_demo(bob.store, "bob")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        assert conversation(app).peer == "acme"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportModal))
        modal = app.screen
        assert isinstance(modal, ReportModal)
        shown = [m.msg_id for m in modal.messages]
        assert shown == ["acme-000006"]  # only what acme sent
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: any("moderation desk" in t for t in toasts(app)))
    [report] = (await desk.sync()).stored
    assert report.sender == "bob" and report.status == "verified"
    body = json.loads(report.text or "")["report"]
    assert body["business"] == "acme"
    assert [m["id"] for m in body["messages"]] == shown  # exactly what was shown, no more
    await desk.aclose()


async def test_ten_thousand_messages_open_fast(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    seed_bulk(bob.store, "bob", chats=50, per_chat=20, big=10_000)
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        view = conversation(app)
        assert len(chat_list(app).rows) == 50
        assert view.peer == "peer000"  # the big one is the newest
        assert view.messages[-1].msg_id == "peer000-009999"
        for peer in ("peer001", "peer000"):  # switching chats only reads one page
            app.main.open_conversation(peer)
            await pilot.pause()
            # Its cost is one page, whatever the chat's length (the time: `sealpost bench`).
            assert view.peer == peer and len(view.messages) <= FIRST_PAGE
        # Scrolling to the top pages older messages in; the same message stays in view.
        before = len(view.messages)
        view.scroll_to(y=0, animate=False, immediate=True)
        await wait_for(pilot, lambda: len(view.messages) > before)
        assert view.scroll_y > 0
