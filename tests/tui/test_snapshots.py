"""Deterministic SVG snapshots of the main screens: fixed store content and times, a fixed
terminal size, no cursor blink, a real relay (the app waits until it is online)."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from client.messenger import Messenger
from client.tui.app import SealpostApp
from client.tui.screens.ledger import LedgerScreen
from client.tui.screens.search import SearchScreen
from server.embedded import EmbeddedRelay
from tests.tui.conftest import SIZE, make_app, until_online, utc_time, wait_for
from tests.tui.seed import T0, seed_demo

SnapCompare = Callable[..., bool]
Step = Callable[[SealpostApp, Pilot], Awaitable[None]]

# What the ledger screen shows in its snapshot: recorded requests with fixed values.
LEDGER = [
    {
        "at": T0,
        "method": "POST",
        "url": "http://127.0.0.1:8700/v1/accounts",
        "headers": {
            "Sealpost-Handle": "bob",
            "Sealpost-Timestamp": str(T0),
            "Sealpost-Nonce": "0f" * 16,
            "Sealpost-Signature": "S" * 86 + "==",
            "Content-Type": "application/json",
        },
        "body": {
            "handle": "bob",
            "kind": "person",
            "display_name": "bob",
            "country": "+39",
            "sign_key": "K" * 43 + "=",
            "box_key": "B" * 43 + "=",
        },
    },
    {
        "at": T0 + 60_000,
        "method": "GET",
        "url": "http://127.0.0.1:8700/v1/mailboxes/bob/stream",
        "headers": {
            "Sealpost-Handle": "bob",
            "Sealpost-Timestamp": str(T0 + 60_000),
            "Sealpost-Nonce": "1e" * 16,
            "Sealpost-Signature": "T" * 86 + "==",
        },
        "body": None,
    },
    {
        "at": T0 + 120_000,
        "method": "POST",
        "url": "http://127.0.0.1:8700/v1/messages",
        "headers": {
            "Sealpost-Handle": "bob",
            "Sealpost-Timestamp": str(T0 + 120_000),
            "Sealpost-Nonce": "2d" * 16,
            "Sealpost-Signature": "U" * 86 + "==",
            "Content-Type": "application/json",
        },
        "body": {
            "id": "msg_0123456789abcdef",
            "sender": "bob",
            "recipient": "alice",
            "kind": "chat",
            "category": "service",
            "ciphertext": "C" * 344,
        },
    },
    {
        "at": T0 + 180_000,
        "method": "POST",
        "url": "http://127.0.0.1:8700/v1/mailboxes/bob/ack",
        "headers": {
            "Sealpost-Handle": "bob",
            "Sealpost-Timestamp": str(T0 + 180_000),
            "Sealpost-Nonce": "3c" * 16,
            "Sealpost-Signature": "V" * 86 + "==",
            "Content-Type": "application/json",
        },
        "body": {"ids": ["msg_a1", "msg_b2"]},
    },
]


async def open_settings(app: SealpostApp, pilot: Pilot) -> None:
    await pilot.press("f2")
    await pilot.pause()
    # Scrolled to the end: the per-conversation notifications and their marketing rule.
    app.screen.query_one("#settings VerticalScroll").scroll_end(animate=False, immediate=True)


async def open_help(app: SealpostApp, pilot: Pilot) -> None:
    await pilot.press("f1")


async def open_privacy(app: SealpostApp, pilot: Pilot) -> None:
    await pilot.click("#privacy-marker")


async def open_ledger(app: SealpostApp, pilot: Pilot) -> None:
    await app.push_screen(LedgerScreen(lambda: LEDGER, Path("/nonexistent"), utc_time))


async def open_search(app: SealpostApp, pilot: Pilot) -> None:
    await app.push_screen(SearchScreen(app.store, app.name_of, utc_time, query="code"))


async def marketing_light(app: SealpostApp, pilot: Pilot) -> None:
    app.theme = "textual-light"  # not saved: the state file is not this test's subject
    app.main.query_one("#conversation").focus()


@pytest.mark.parametrize(
    "step",
    [open_settings, open_help, open_privacy, open_ledger, open_search, marketing_light],
    ids=["settings", "help", "privacy", "ledger", "search", "marketing_light"],
)
def test_screen_snapshot(
    step: Step, sqlite_relay: EmbeddedRelay, home: Path, snap_compare: SnapCompare
) -> None:
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
        await step(app, pilot)
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


async def marketing_chat(app: SealpostApp, pilot: Pilot) -> None:
    """The business chat as it opens: its offer selected, the action bar's two rows."""
    app.main.query_one("#conversation").focus()


async def why_marketing(app: SealpostApp, pilot: Pilot) -> None:
    await pilot.click("#why-marketing")


async def report_dialog(app: SealpostApp, pilot: Pilot) -> None:
    await pilot.press("ctrl+r")


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
@pytest.mark.parametrize(
    "step",
    [marketing_chat, why_marketing, report_dialog],
    ids=["marketing_chat", "why_marketing", "report"],
)
def test_marketing_snapshot_at_small_and_wide_sizes(
    step: Step,
    size: tuple[int, int],
    sqlite_relay: EmbeddedRelay,
    home: Path,
    snap_compare: SnapCompare,
) -> None:
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
        assert app.main.current_peer == "acme"
        await step(app, pilot)
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)
