"""Marketing, message requests and quarantine in the TUI, end to end on a real relay."""

from pathlib import Path

from nacl.public import SealedBox
from textual.widgets import Button as ButtonWidget
from textual.widgets import Input

from client.business.audience import Audience, AudienceRow, read_audience
from client.business.campaigns import run_campaign
from client.messenger import Messenger, now_ms
from client.tui.screens.confirm_block import ConfirmBlockModal
from client.tui.screens.main import MainScreen
from client.tui.screens.quick_reply import QuickReplyModal
from client.tui.widgets.request_bar import RequestBar
from server.embedded import EmbeddedRelay
from shared.encoding import b64encode
from shared.envelope import ChatContent, ChatPayload, Envelope
from shared.identifiers import new_message_id
from shared.seal import pad, sign_payload
from shared.templates import Button, TemplateDraft, variable_names
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

OFFER = TemplateDraft(
    name="spring_offer",
    category="marketing",
    body="Hi {{name}}, your code {{code}} takes 20% off until Sunday.",
    footer="ACME Shoes",
    buttons=[
        Button(type="url", text="Shop now", url="https://acme.example/shop"),
        Button(type="copy_code", text="Copy code"),
    ],
    examples={"name": "Ana", "code": "SPRING20"},
)


async def send_offer(shop: Messenger, person: str, tmp_path: Path) -> None:
    """``shop`` runs a one-person marketing campaign for ``person`` (the real business path)."""
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(OFFER)
    csv = tmp_path / "audience.csv"
    csv.write_text(f"handle,name,code\n{person},Bob,BOB20\n")
    audience = read_audience(csv, variable_names(template.template))
    run = await run_campaign(
        shop.api, shop.profile.keys, shop.profile.handle, template, audience, budget=1_000_000
    )
    assert run.accepted == 1


async def test_marketing_message_is_labelled_and_its_buttons_work(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path, tmp_path: Path
) -> None:
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    bob = await make_account("bob", sqlite_relay)
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await send_offer(shop, "bob", tmp_path)
        # A business bob never wrote to: a message request, listed apart and quiet.
        await wait_for(pilot, lambda: "1 request" in app.sub_title)
        [row] = chat_list(app).rows
        assert row.request and row.marketing and row.verified
        assert not toasts(app)
        await pilot.click("#chat-options")
        await pilot.press("down", "enter")  # past the "Message requests" heading
        await wait_for(pilot, lambda: conversation(app).peer == "acme")
        assert app.screen.query_one(RequestBar).display
        await pilot.press("ctrl+y")  # accept
        await wait_for(pilot, lambda: not app.is_request("acme"))
        assert "acme" in (await bob.api.preferences()).accepted
        await wait_for(pilot, lambda: not app.screen.query_one(RequestBar).display)

        text = conversation_text(app)
        assert " Marketing " in text
        assert "Hi Bob, your code BOB20 takes 20% off" in text
        assert "[ Shop now ↗ ]" in text and "[ Copy code ⧉ ]" in text
        assert "[ Stop promotions ↩ ]" in text
        [row] = chat_list(app).rows
        assert row.marketing and row.verified and not row.request

        await pilot.click("#template-button-1")  # copy code
        assert app.clipboard == "BOB20"
        app.copy_to_clipboard("")
        # The same button drawn inside the conversation answers a click too.
        view = conversation(app)
        row = next(i for i, line in enumerate(view._lines) if line.hits)
        hit = view._lines[row].hits[1]
        await pilot.click(view, offset=(hit.x0 + 1, row - view.scroll_offset.y))
        assert app.clipboard == "BOB20"
        await pilot.click("#template-button-0")  # url: copied (not opened when headless)
        assert app.clipboard == "https://acme.example/shop"

        await pilot.click("#template-button-2")  # Stop promotions
        await wait_for(pilot, lambda: app.prefs and app.prefs.promotions_stopped == ["acme"])
        assert (await bob.api.preferences()).promotions_stopped == ["acme"]
        await wait_for(pilot, lambda: chat_list(app).rows[0].promotions_off)


async def test_a_request_is_blocked_from_its_bar(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path, tmp_path: Path
) -> None:
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    bob = await make_account("bob", sqlite_relay)
    await send_offer(shop, "bob", tmp_path)
    await bob.sync()  # arrived while the app was closed

    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await wait_for(pilot, lambda: "1 request" in app.sub_title)
        assert conversation(app).peer is None  # a request is not opened for the person
        await pilot.click("#chat-options")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.screen.query_one(RequestBar).display)
        await pilot.click("#request-block")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmBlockModal))
        await pilot.click("#block")  # confirmed: blocking is never one stray click
        await wait_for(pilot, lambda: app.prefs and app.prefs.blocked == ["acme"])
        assert (await bob.api.preferences()).blocked == ["acme"]
        await wait_for(pilot, lambda: chat_list(app).rows[0].blocked)


async def test_a_message_request_never_steals_focus(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob = await make_account("bob", sqlite_relay)
    carol = await make_account("carol", sqlite_relay)
    mallory = await make_account("mallory", sqlite_relay, display_name="Mallory")
    await bob.send_text("carol", "hi carol")
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await wait_for(pilot, lambda: conversation(app).peer == "carol")
        await pilot.click("#composer")
        await pilot.press(*"half a sent")
        composer = app.screen.query_one("#composer", Input)
        await mallory.send_text("bob", "URGENT: open this now")
        await carol.send_text("bob", "hello bob")
        await wait_for(pilot, lambda: "1 request" in app.sub_title)
        await wait_for(pilot, lambda: any(r.peer == "mallory" for r in chat_list(app).rows))
        # Still where the person was: same screen, same chat, same focus, text intact.
        assert isinstance(app.screen, MainScreen)
        assert conversation(app).peer == "carol"
        assert app.focused is composer and composer.value == "half a sent"
        assert not app.screen.query_one(RequestBar).display
        # A toast for carol, a contact; none for the stranger.
        await wait_for(pilot, lambda: any("carol" in t for t in toasts(app)))
        assert not [t for t in toasts(app) if "allory" in t]
        heading = [str(o.prompt) for o in app.screen.query_one("#chat-options").options]
        assert heading[-2].startswith("Message requests · 1") and "Mallory" in heading[-1]


async def test_quarantined_message_is_shown_as_could_not_verify(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    carol = await make_account("carol", sqlite_relay)
    # Signed by alice for carol, but sealed to bob: a genuine signature on the wrong envelope.
    for_carol = ChatPayload(
        id=new_message_id(),
        sender="alice",
        recipient="carol",
        sent_at=now_ms(),
        content=ChatContent(text="SECRET meant for carol"),
    )
    sealed = SealedBox(bob.profile.keys.public.box).encrypt(
        pad(sign_payload(for_carol, alice.profile.keys))
    )
    swapped = Envelope(
        id=for_carol.id, sender="alice", recipient="bob", ciphertext=b64encode(sealed)
    )
    assert carol  # registered so the payload's recipient exists
    await bob.send_text("alice", "hi alice")  # a contact: her messages are not a request
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await alice.api.send(swapped)
        await wait_for(pilot, lambda: "could not verify" in conversation_text(app))
        text = conversation_text(app)
        assert "could not verify: recipient_mismatch" in text
        assert "SECRET" not in text
        await wait_for(pilot, lambda: any("could not verify" in t for t in toasts(app)))


async def test_a_copy_hidden_by_the_persons_choice_is_quiet_and_says_why(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    # A utility template smuggling a promotion in its variable, to a person who stopped
    # acme's promotions: the device hides it. It must not toast, count as unread or read as
    # "could not verify" (it is the person's choice, not a forgery), and it says why.
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    bob = await make_account("bob", sqlite_relay)
    await bob.api.set_choice("promotions-stopped", "acme", True)
    await shop.api.top_up(10_000_000)
    update = await shop.api.register_template(
        TemplateDraft(
            name="order_update",
            category="utility",
            body="Hi {{name}}, about your order: {{note}}",
            examples={"name": "Ana", "note": "it has shipped"},
        )
    )
    row = AudienceRow(line=2, handle="bob", variables={"name": "Bob", "note": "50% OFF, shop now"})
    run = await run_campaign(
        shop.api, shop.profile.keys, "acme", update, Audience(rows=[row]), budget=1_000_000
    )
    assert run.accepted == 1
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any(r.peer == "acme" for r in chat_list(app).rows))
        [acme] = [r for r in chat_list(app).rows if r.peer == "acme"]
        assert acme.unread == 0
        app.main.open_conversation("acme")
        await wait_for(pilot, lambda: "hidden by your choices" in conversation_text(app))
        text = conversation_text(app)
        assert "you stopped promotions from acme" in " ".join(text.split())
        assert "could not verify" not in text and "50% OFF" not in text
        assert not any("acme" in t.lower() for t in toasts(app))


async def test_a_quick_reply_asks_before_it_leaves_and_opens_no_window(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path, tmp_path: Path
) -> None:
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    bob = await make_account("bob", sqlite_relay)
    await bob.accept_request("acme")
    await shop.api.top_up(10_000_000)
    template = await shop.api.register_template(
        TemplateDraft(
            name="delivery",
            category="utility",
            body="Your parcel arrives tomorrow.",
            buttons=[Button(type="quick_reply", text="Change the day")],
        )
    )
    audience = Audience(rows=[AudienceRow(line=2, handle="bob", variables={})])
    await run_campaign(shop.api, shop.profile.keys, "acme", template, audience, budget=1_000_000)
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "Your parcel arrives" in conversation_text(app))
        await wait_for(pilot, lambda: app.screen.query_one("#template-button-0").display)
        app.screen.query_one("#template-button-0", ButtonWidget).press()  # a toast may cover it
        await wait_for(pilot, lambda: isinstance(app.screen, QuickReplyModal))
        assert "does not let the business write to you freely" in str(
            app.screen.query_one(".modal-help").render()
        )
        await pilot.press("escape")  # cancelled: nothing leaves
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert not bob.store.has_outgoing("acme")

        app.screen.query_one("#template-button-0", ButtonWidget).press()  # a toast may cover it
        await wait_for(pilot, lambda: isinstance(app.screen, QuickReplyModal))
        await pilot.click("#send")
        await wait_for(pilot, lambda: bob.store.has_outgoing("acme"))
        [sent] = [m for m in bob.store.messages("acme") if m.direction == "out"]
        assert sent.category == "quick_reply" and sent.text == "Change the day"
        await wait_for(pilot, lambda: bob.store.message(sent.msg_id).status == "sent")
    [got] = (await shop.sync()).stored
    assert got.category == "quick_reply"
    assert app.prefs is not None and app.prefs.promotions_stopped == []  # nothing changed
