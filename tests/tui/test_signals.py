"""Interaction signals from the app: what the person does is noted on the pending report."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select
from textual.widgets import Button as ButtonWidget
from textual.widgets import Label, Static

from client.messenger import Messenger
from client.signals import PendingSignal
from client.store import LocalStore
from client.tui.app import SealpostApp
from client.tui.screens.confirm_block import ConfirmBlockModal
from client.tui.screens.main import MainScreen
from client.tui.screens.privacy import EXPLAINER
from client.tui.screens.settings import SettingsScreen
from client.tui.screens.why_marketing import WhyMarketingScreen
from client.tui.state import TuiState
from server import signals as relay_signals
from server.embedded import EmbeddedRelay
from server.signals import master_secret
from shared.signals import events_of
from shared.tokens import IssuerKey
from shuffler.embedded import EmbeddedShuffler
from shuffler.settings import ShufflerSettings
from tests.conftest import PersonFactory
from tests.tui.conftest import (
    SIZE,
    conversation_text,
    make_app,
    toasts,
    until_online,
    wait_for,
)
from tests.tui.test_business_messages import send_offer


def pending(messenger: Messenger) -> list[PendingSignal]:
    with Session(messenger.store.engine) as s:
        return list(s.exec(select(PendingSignal)))


def events(messenger: Messenger) -> set[str]:
    """The true events of the (single) pending report, as this device holds them."""
    [row] = pending(messenger)
    return set(events_of(row.true_bits))


async def test_reading_clicking_and_dismissing_are_noted_and_blocking_is_not(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path, tmp_path: Path
) -> None:
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    bob = await make_account("bob", sqlite_relay)
    await send_offer(shop, "bob", tmp_path)
    await bob.sync()  # stored and acked: a token and a pending report, nothing noted yet
    assert events(bob) == set()
    [row] = pending(bob)
    [message] = bob.store.messages("acme")
    assert message.campaign_id == row.campaign_id

    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        # A message request: the app does not open it; once the person does, it is shown,
        # so it counts as read.
        await until_online(app)
        await wait_for(pilot, lambda: "1 request" in app.sub_title)
        assert events(bob) == set()
        await pilot.click("#chat-options")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: events(bob) == {"read"})
        await pilot.press("ctrl+y")  # accepting records nothing
        await wait_for(pilot, lambda: not app.is_request("acme"))
        assert events(bob) == {"read"}

        await pilot.click("#template-button-0")  # the URL button
        assert app.clipboard == "https://acme.example/shop"
        assert events(bob) == {"read", "clicked"}

        assert app.main.query_one("#not-interested").display  # a button, and a key:
        app.main.query_one("#conversation").focus()
        await pilot.press("x")
        assert "dismissed" in events(bob)

        # Blocking is a choice the relay carries out by name: the anonymous report never
        # repeats it (it would spend budget telling the relay what it knows).
        await pilot.press("ctrl+b")  # block, from anywhere: asked first, Cancel focused
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmBlockModal))
        await pilot.press("enter")  # a stray Enter blocks nobody
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmBlockModal))
        assert not (app.prefs and app.prefs.blocked)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmBlockModal))
        await pilot.click("#block")
        await wait_for(pilot, lambda: app.prefs and app.prefs.blocked == ["acme"])
        assert events(bob) == {"read", "clicked", "dismissed"}
        assert not pending(bob)[0].sent  # nothing left the device: the report is not due


async def test_due_reports_are_flushed_on_the_anonymous_channel(
    sqlite_relay: EmbeddedRelay,
    make_account: PersonFactory,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bob = await bob_with_a_due_report(sqlite_relay, make_account, tmp_path)
    with app_beside_a_shuffler(sqlite_relay, home, tmp_path, monkeypatch) as (app, shuffler):
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: pending(bob)[0].sent)
            [sent] = [e for e in app.messenger.ledger.entries() if e["url"].endswith("/reports")]
            assert sent["url"].startswith(shuffler.url)
            assert sent["headers"]["channel"] == "anonymous"
            assert not any(k.lower().startswith("sealpost-") for k in sent["headers"])
            assert app.is_running  # and nothing crashed when later flushes found nothing due
        assert shuffler.held() == 1


async def test_a_report_whose_key_fails_its_check_is_withheld_and_the_person_told(
    sqlite_relay: EmbeddedRelay,
    make_account: PersonFactory,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A curious relay gives bob a token key of his own (tests/functional/test_token_key_log.py
    # has the attack in full): the app keeps the report and says so, without a traceback.
    def his_own(session, person, campaign_id):  # type: ignore[no-untyped-def]
        return IssuerKey.derive(master_secret(session), f"campaign:{campaign_id}:{person}")

    monkeypatch.setattr(relay_signals, "issuing_key", his_own)
    bob = await bob_with_a_due_report(sqlite_relay, make_account, tmp_path)
    with app_beside_a_shuffler(sqlite_relay, home, tmp_path, monkeypatch) as (app, shuffler):
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: pending(bob)[0].withheld is not None)
            await wait_for(pilot, lambda: any("withheld" in n for n in toasts(app)))
            [toast] = [n for n in toasts(app) if "withheld" in n]
            assert toast.startswith("Report withheld: interaction report for campaign")
            assert "not the key its published key log lists" in toast
            assert app.is_running
        assert shuffler.held() == 0  # nothing left the device
        assert not pending(bob)[0].sent


async def test_signals_switch_persists(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob = await make_account("bob", sqlite_relay)
    assert bob.signals.settings.enabled
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.click("#signals")
        await wait_for(pilot, lambda: not app.messenger.signals.settings.enabled)
    reopened = Messenger.open(home, "bob")
    assert not reopened.signals.settings.enabled
    await reopened.aclose()
    # The explainer says what the signals are, accurately.
    for words in ("exactly one", "Randomized response", "Random delay", "No credentials"):
        assert words in EXPLAINER
    said = " ".join(EXPLAINER.split())
    assert "not read, read, clicked or dismissed" in said
    assert "ε = ln 3" in said and "20 about any one business's campaigns **ever**" in said


def test_store_from_before_campaign_ids_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "store.db"
    LocalStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE client_message DROP COLUMN campaign_id")
    conn.commit()
    conn.close()
    store = LocalStore(path)  # an older store: the column is added on open
    assert store.messages() == []
    store.close()


async def bob_with_a_due_report(
    relay: EmbeddedRelay, make_account: PersonFactory, tmp_path: Path
) -> Messenger:
    """@bob got @acme's offer, and the moment of its pending report has come."""
    shop = await make_account("acme", relay, business=True, display_name="ACME Shoes")
    bob = await make_account("bob", relay)
    await send_offer(shop, "bob", tmp_path)
    await bob.sync()
    with Session(bob.store.engine) as s:
        row = s.exec(select(PendingSignal)).one()
        row.send_after = 0
        s.add(row)
        s.commit()
    return bob


@contextlib.contextmanager
def app_beside_a_shuffler(
    relay: EmbeddedRelay, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SealpostApp, EmbeddedShuffler]]:
    """Bob's app, flushing reports often through a shuffler that holds what it gets."""
    settings = ShufflerSettings(
        db=tmp_path / "shuffler.db",
        relay=relay.url,
        key_path=tmp_path / "shuffler.key",
        auto_forward=False,
    )
    with EmbeddedShuffler(settings) as shuffler:
        monkeypatch.setenv("SEALPOST_SHUFFLER_URL", shuffler.url)
        app = make_app(home, "bob")
        app.signal_flush_s = 0.2
        # The app waits a minute after its own signed requests; not in a test.
        app.messenger.signals.settings.quiet_after_signed_s = 0
        yield app, shuffler


def bar_button(app: SealpostApp, label: str) -> ButtonWidget:
    """The action bar's shown button whose label starts with ``label``."""
    return next(
        b
        for b in app.main.query("#action-bar Button").results(ButtonWidget)
        if b.display and str(b.label).startswith(label)
    )


async def test_a_marketing_message_in_the_chat_shows_and_changes_the_persons_choices(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path, tmp_path: Path
) -> None:
    """Stop promotions becomes Resume promotions; Interested / Not interested feed the
    campaign's signals and leave a trace on the message; "Why am I seeing this?" says who,
    that it is marketing, the person's level and how to stop it."""
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("acme")
    await send_offer(shop, "bob", tmp_path)
    await bob.sync()
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await wait_for(pilot, lambda: app.prefs is not None)
        assert app.main.current_peer == "acme"
        await pilot.pause()

        await pilot.click(bar_button(app, "Stop promotions"))
        await wait_for(pilot, lambda: app.prefs and app.prefs.promotions_stopped == ["acme"])
        await pilot.pause()
        assert "promotions off" in str(app.main.query_one("#peer-name", Label).content)
        await pilot.click(bar_button(app, "Resume promotions"))
        await wait_for(pilot, lambda: app.prefs and not app.prefs.promotions_stopped)
        await pilot.pause()
        assert bar_button(app, "Stop promotions")

        await pilot.click("#not-interested")
        assert "dismissed" in events(bob)
        await pilot.pause()
        assert "✕ Not interested (you said so)" in conversation_text(app)
        await pilot.click("#interested")
        assert "clicked" in events(bob)
        await pilot.pause()
        assert "✓ Interested (you said so)" in conversation_text(app)
        assert "Not interested (you said so)" not in conversation_text(app)
        assert TuiState.load(app.state_path).answers  # kept on this device only

        await pilot.click("#why-marketing")
        await wait_for(pilot, lambda: isinstance(app.screen, WhyMarketingScreen))
        why = "\n".join(str(w.content) for w in app.screen.query(Static))
        assert "ACME Shoes" in why and "@acme" in why
        assert "marketing" in why
        assert "All marketing" in why  # bob's level
        assert "Stop promotions" in why and "Settings (F2)" in why
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
