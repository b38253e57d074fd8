"""The privacy ledger, local search and per-conversation notifications, on a real relay."""

import json
from pathlib import Path

import pytest
from textual.widgets import Input

from client.business.audience import read_audience
from client.business.campaigns import run_campaign
from client.messenger import Messenger
from client.profile import load_profile
from client.tui.app import SealpostApp
from client.tui.screens.ledger import LedgerScreen
from client.tui.screens.search import SearchScreen
from client.tui.screens.settings import SettingsScreen
from client.tui.state import TuiState
from server.embedded import EmbeddedRelay
from shared.templates import variable_names
from tests.conftest import PersonFactory
from tests.tui.conftest import (
    SIZE,
    chat_list,
    conversation,
    conversation_text,
    make_app,
    toasts,
    until_online,
    utc_time,
    wait_for,
)
from tests.tui.seed import seed_bulk
from tests.tui.test_business_messages import OFFER


async def offer_twice(shop: Messenger, person: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Register the offer once; each ``await`` of the returned function runs one campaign."""
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    csv = tmp_path / "audience.csv"
    csv.write_text(f"handle,name,code\n{person},Bob,BOB20\n")
    audience = read_audience(csv, variable_names(template.template))

    async def send() -> None:
        run = await run_campaign(
            shop.api, shop.profile.keys, shop.profile.handle, template, audience, budget=10**6
        )
        assert run.accepted == 1

    return send


async def test_ledger_lists_every_request_filters_and_exports(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("alice")
    await alice.send_text("bob", "hello")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await wait_for(pilot, lambda: app.prefs is not None)
        # Alice's message stored and acked: no request is still on its way to the ledger.
        await wait_for(
            pilot,
            lambda: any(e["url"].endswith("/ack") for e in app.messenger.ledger.entries()),
        )
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, LedgerScreen))
        screen = app.screen
        assert isinstance(screen, LedgerScreen)
        recorded = app.messenger.ledger.entries()
        assert len(screen.rows) == len(recorded) >= 4  # register, stream, ack, preferences...
        paths = {r.path for r in screen.rows}
        assert "/v1/accounts" in paths  # registration, held in memory then written
        assert "/v1/mailboxes/bob/stream" in paths
        assert "/v1/prefs" in paths
        # Newest first, decoded into fields: the signed headers and the body's keys.
        assert screen.shown[0].index == len(recorded) - 1
        register = next(r for r in screen.rows if r.method == "POST" and r.path == "/v1/accounts")
        fields = dict(register.fields)
        assert fields["header Sealpost-Handle"] == "bob"
        assert fields["body.handle"] == "bob"
        assert fields["header Sealpost-Signature"].endswith("(88 chars)")  # long: abridged
        assert "Sealpost-Signature" in str(screen.query_one("#ledger-fields").render())

        await pilot.click("#ledger-filter")
        await pilot.press(*"ack")
        await wait_for(pilot, lambda: screen.shown and len(screen.shown) < len(screen.rows))
        assert all("ack" in r.haystack for r in screen.shown)
        assert any(r.path == "/v1/mailboxes/bob/ack" for r in screen.shown)

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.last_export is not None)
        path = screen.last_export
        assert path is not None and path.parent == app.messenger.profile.dir
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(lines) == len(screen.shown)
        assert {tuple(sorted(e)) for e in lines} == {("at", "body", "headers", "method", "url")}
        assert str(path) in str(screen.query_one("#ledger-export-path").render())
        assert any(str(path) in t for t in toasts(app))

        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main)


async def test_search_finds_messages_in_every_chat_and_opens_at_the_hit(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    carol = await make_account("carol", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("carol")
    seed_bulk(bob.store, "bob", chats=3, per_chat=150)
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await carol.send_text("bob", "the blue [umbrella] is by the door")
        await wait_for(pilot, lambda: "carol" in chat_list(app).visible_peers())

        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        assert isinstance(search, SearchScreen)
        await pilot.press(*"[UMBRELLA]")  # case-insensitive, brackets literal
        await wait_for(pilot, lambda: len(search.hits) == 1)
        assert search.hits[0].peer == "carol"

        search.query_one("#search-input", Input).value = "message 42 in chat 2"
        await wait_for(pilot, lambda: [m.msg_id for m in search.hits] == ["peer002-000042"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.main)
        view = conversation(app)
        assert view.peer == "peer002"
        assert view.selected_message and view.selected_message.msg_id == "peer002-000042"
        assert view.has_older and view.has_newer  # a window around the hit, not the whole chat
        assert chat_list(app).current == "peer002"
        # Moving past the window's end reads the next page; End jumps to the newest.
        before = len(view.messages)
        view.selected = len(view.messages) - 1
        await pilot.press("down")
        assert len(view.messages) > before
        await pilot.press("end")
        assert not view.has_newer
        assert view.selected_message and view.selected_message.msg_id == "peer002-000149"

        # The palette offers it too, and nothing matching says so.
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Search messages", "Privacy ledger"} <= titles
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        app.screen.query_one("#search-input", Input).value = "no such words"
        await pilot.pause()
        assert "No message contains that" in str(app.screen.query_one("#search-count").render())


async def test_notifications_per_conversation_and_unread_counts(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path, tmp_path: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    carol = await make_account("carol", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    for friend in ("alice", "carol", "acme"):  # contacts: none of this is a message request
        await bob.accept_request(friend)
    await carol.send_text("bob", "hi from carol")  # the open chat
    await alice.send_text("bob", "first from alice")
    app = make_app(home, "bob")
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await wait_for(pilot, lambda: len(chat_list(app).rows) == 2)
        app.main.open_conversation("alice")
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        text = "\n".join(str(w.render()) for w in app.screen.query(".setting-note"))
        assert "never silent" in text and "unless you set that conversation to Off" in text
        await pilot.click("#notify-off")
        await wait_for(pilot, lambda: app.state.notify_mode("alice") == "off")
        await pilot.press("escape")
        app.main.open_conversation("carol")
        await pilot.pause()

        await alice.send_text("bob", "muted but counted")
        await wait_for(pilot, lambda: any(r.peer == "alice" and r.unread for r in rows(app)))
        assert not any("muted but counted" in t for t in toasts(app))
        assert "1 unread" in app.sub_title
        assert next(r for r in rows(app) if r.peer == "alice").notify == "off"

        app.set_notify_mode("carol", "bell")  # the open chat: read at once, still rings
        await carol.send_text("bob", "ring ring")
        await wait_for(pilot, lambda: "ring ring" in conversation_text(app))
        assert bells and any("ring ring" in t for t in toasts(app))

        # Marketing from a business left at the default: a toast, whatever else is set.
        send_offer = await offer_twice(shop, "bob", tmp_path)
        await send_offer()
        await wait_for(pilot, lambda: any(t.startswith("Marketing · ACME") for t in toasts(app)))
        assert "2 unread" in app.sub_title
        # Set to off explicitly: only then is marketing silent.
        app.set_notify_mode("acme", "off")
        await send_offer()
        await wait_for(pilot, lambda: "3 unread" in app.sub_title)
        assert sum(t.startswith("Marketing · ") for t in toasts(app)) == 1
    saved = TuiState.load(app.state_path)
    assert saved.notify == {"alice": "off", "carol": "bell", "acme": "off"}


def rows(app: SealpostApp) -> list:  # type: ignore[type-arg]
    return chat_list(app).rows


async def test_relay_override_for_one_run(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    from sealpost.cli import build_parser

    args = build_parser().parse_args(["chat", "--profile", "bob", "--relay", sqlite_relay.url])
    assert args.relay == sqlite_relay.url
    bob: Messenger = await make_account("bob", sqlite_relay)
    # Point the profile at a relay that is not there; --relay reaches the real one.
    info = bob.profile.info.model_copy(update={"relay_url": "http://127.0.0.1:9"})
    (bob.profile.dir / "profile.json").write_text(info.model_dump_json())
    app = SealpostApp(home, "bob", time_format=utc_time, relay_url=sqlite_relay.url)
    async with app.run_test(size=SIZE):
        await until_online(app)
        assert app.messenger.api.base_url == sqlite_relay.url
    assert load_profile(home, "bob").info.relay_url == "http://127.0.0.1:9"


async def test_demo_seed_opens_on_a_live_campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealpost.commands.demo import seed_person_demo
    from sealpost.commands.desk import FINGERPRINT_ENV
    from server.settings import RelaySettings

    home = tmp_path / "home"
    with EmbeddedRelay(RelaySettings(db=f"sqlite:///{tmp_path / 'relay.db'}")) as relay:
        monkeypatch.setenv(FINGERPRINT_ENV, await seed_person_demo(home, relay))
        app = make_app(home, "bob")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: any(r.peer == "acme" for r in rows(app)))
            acme = next(r for r in rows(app) if r.peer == "acme")
            assert acme.verified and acme.marketing and acme.unread == 1
            # Bob never wrote to acme: its campaign is a message request, counted quietly.
            assert acme.request
            assert {"alice", "carol"} <= {r.peer for r in rows(app) if not r.request}
            await wait_for(pilot, lambda: "1 request" in app.sub_title)
            assert not [t for t in toasts(app) if "ACME" in t]


def test_local_search_is_literal_and_case_insensitive(tmp_path: Path) -> None:
    from client.store import LocalStore
    from tests.tui.seed import incoming, outgoing

    store = LocalStore(tmp_path / "store.db")
    with store.session() as s:
        s.add_all(
            [
                incoming("alice", "bob", 1, "50% off_today"),
                incoming("alice", "bob", 2, "500 offers today"),
                outgoing("alice", "bob", 3, "OFF we go"),
            ]
        )
        s.commit()
    assert [m.text for m in store.search("0% off_")] == ["50% off_today"]  # % and _ literal
    assert [m.text for m in store.search("off")] == [
        "OFF we go",
        "500 offers today",
        "50% off_today",
    ]
    assert store.search("   ") == []
    store.close()


async def test_a_keymap_in_tui_json_rebinds_keys(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob: Messenger = await make_account("bob", sqlite_relay)
    path = bob.profile.dir / "tui.json"
    state = TuiState.load(path)
    state.keymap = {"sealpost.search": "f9"}
    state.save(path)
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")  # the default key no longer searches
        await pilot.pause()
        assert not isinstance(app.screen, SearchScreen)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
