"""The Cloud-API-compatible business gateway (issue 20), against a real relay.

An integration written for WhatsApp's Cloud API, here pywa exactly as published, talks to
``sealpost gateway`` instead of graph.facebook.com: its httpx client's transport points at the
gateway (the one thing changed), and pywa's own webhook server receives the gateway's signed
webhooks. The privacy boundary holds through it: the answers and webhooks about a person who
stopped promotions are those about a person who received the message.
"""

import asyncio
import json
import re
import signal
import sys
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pywa_async import WhatsApp
from pywa_async import types as pywa_types
from pywa_async.errors import AuthorizationError
from pywa_async.types.templates import (
    BodyText,
    Buttons,
    FooterText,
    ParamFormat,
    QuickReplyButton,
    Template,
    TemplateCategory,
    TemplateLanguage,
    TemplateStatus,
)

from client.gateway.config import load_config, map_recipient
from client.gateway.tokens import issue_token
from client.gateway.webhooks import WebhookError
from tests.helpers import (
    ALICE_NUMBER,
    APP_SECRET,
    EVENT_TIMEOUT_S,
    SPRING,
    VERIFY_TOKEN,
    Served,
    ToGateway,
    prepare_gateway,
    run_cli,
    same_shape,
    sealpost,
    spring_to,
)

# --- pywa, as published -------------------------------------------------------------------


async def test_pywa_creates_sends_and_hears_the_sent_status_and_the_quick_reply(
    sqlite_relay, shop, make_account
):
    alice = await make_account("alice", sqlite_relay, display_name="Alice")
    map_recipient(shop.profile, ALICE_NUMBER, "alice")
    statuses: asyncio.Queue[pywa_types.MessageStatus] = asyncio.Queue()
    presses: asyncio.Queue[pywa_types.CallbackButton] = asyncio.Queue()
    receiver_app = FastAPI()  # pywa's webhook routes go on it
    receiver = Served(receiver_app)
    running = prepare_gateway(shop, sqlite_relay, receiver.url + "/webhook")
    # The one change to an integration written for the Cloud API: where its client connects.
    session = httpx.AsyncClient(transport=ToGateway(running.url), timeout=EVENT_TIMEOUT_S)
    wa = WhatsApp(
        phone_id=running.phone_id,
        token=running.token,
        waba_id=running.waba_id,
        server=receiver_app,
        webhook_endpoint="/webhook",
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
        session=session,
    )

    @wa.on_message_status()
    async def on_status(_: WhatsApp, status: pywa_types.MessageStatus) -> None:
        statuses.put_nowait(status)

    @wa.on_callback_button()
    async def on_press(_: WhatsApp, press: pywa_types.CallbackButton) -> None:
        presses.put_nowait(press)

    await running.server.start()  # checks pywa's hub.challenge route first
    try:
        created = await wa.create_template(
            template=Template(
                name="spring_offer",
                language=TemplateLanguage.ENGLISH_US,
                category=TemplateCategory.MARKETING,
                parameter_format=ParamFormat.NAMED,
                components=[
                    BodyText(
                        "Hi {{name}}, {{code}} takes 20% off your next pair",
                        name="Ana",
                        code="SPRING20",
                    ),
                    FooterText(text="ACME Shoes"),
                    Buttons(buttons=[QuickReplyButton(text="Yes please")]),
                ],
            )
        )
        assert created.status == TemplateStatus.APPROVED
        assert created.category == TemplateCategory.MARKETING

        sent = await wa.send_template(
            to=ALICE_NUMBER,
            name="spring_offer",
            language=TemplateLanguage.ENGLISH_US,
            params=[
                BodyText.params(name="Alice", code="ALICE20"),
                QuickReplyButton.params(callback_data="wants_spring_offer", index=0),
            ],
        )
        assert sent.id.startswith("wamid.")

        status = await asyncio.wait_for(statuses.get(), EVENT_TIMEOUT_S)
        assert status.id == sent.id
        assert status.status == pywa_types.MessageStatusType.SENT
        assert status.from_user.wa_id == ALICE_NUMBER

        # The person's own client: personalised, verified against the registry, labelled.
        [got] = (await alice.sync()).stored
        assert got.status == "verified" and got.label == "Marketing"
        assert got.sender == "acme" and got.text is not None
        assert got.text.startswith("Hi Alice, ALICE20 takes 20% off your next pair")

        await alice.send_quick_reply("acme", "Yes please")
        press = await asyncio.wait_for(presses.get(), EVENT_TIMEOUT_S)
        assert press.is_quick_reply
        assert press.data == "wants_spring_offer" and press.title == "Yes please"
        assert press.reply_to_message is not None and press.reply_to_message.id == sent.id
        assert press.from_user.wa_id == ALICE_NUMBER and press.from_user.bsuid == "alice"
        assert press.from_user.name == "Alice"
        assert statuses.empty()  # no delivered, no read: nothing per person beyond `sent`
    finally:
        await running.server.stop()
        await receiver.stop()
        await session.aclose()


async def test_a_token_the_gateway_did_not_issue_gets_the_cloud_api_auth_error(gateway):
    session = httpx.AsyncClient(transport=ToGateway(gateway.url))
    wa = WhatsApp(phone_id=gateway.phone_id, token="EAAG-not-ours", session=session)
    with pytest.raises(AuthorizationError) as caught:
        await wa.get_templates(waba_id=gateway.waba_id)
    assert caught.value.code == 190
    await session.aclose()
    async with gateway.http(token="SPGW-forged") as http:
        answer = await http.post(f"/{gateway.phone_id}/messages", json=spring_to("alice", "A"))
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == 190 and error["type"] == "OAuthException" and error["fbtrace_id"]


# --- the privacy boundary ------------------------------------------------------------------


async def test_an_opted_out_person_never_gets_it_and_the_business_cannot_tell_who(
    sqlite_relay, make_account, gateway, inbox
):
    webhooks, _ = inbox
    carol = await make_account("carol", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await bob.api.set_choice("promotions-stopped", "acme", True)
    async with gateway.http() as http:
        created = await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)
        assert created.json()["status"] == "APPROVED"
        seen: dict[str, Any] = {}
        for person, name in (("bob", "Bob"), ("carol", "Carol")):
            answer = await http.post(f"/{gateway.phone_id}/messages", json=spring_to(person, name))
            webhook = await webhooks.next()
            seen[person] = (answer.status_code, answer.json(), webhook)
    assert seen["carol"][0] == seen["bob"][0] == 200
    assert same_shape(seen["bob"], {"bob": "<person>"}) == same_shape(
        seen["carol"], {"carol": "<person>"}
    )
    [status] = seen["bob"][2]["entry"][0]["changes"][0]["value"]["statuses"]
    assert status["status"] == "sent" and status["pricing"]["billable"] is True

    [to_carol] = (await carol.sync()).stored
    assert to_carol.label == "Marketing" and "Hi Carol" in (to_carol.text or "")
    assert (await bob.sync()).stored == []  # the relay refused it at release
    # And nothing more comes, for either: no delivered, read, failed or opt-out event. (The
    # next webhook is the one this test causes now, a text from Carol, and nothing before.)
    await carol.send_text("acme", "thanks!")
    after = await webhooks.next()
    [message] = after["entry"][0]["changes"][0]["value"]["messages"]
    assert message["type"] == "text" and message["text"]["body"] == "thanks!"
    assert webhooks.refused == 0


# --- templates, errors and analytics in the Cloud API's terms --------------------------------


async def test_a_template_sealpost_refuses_is_rejected_with_its_reason(gateway):
    promotional_utility = {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Order {{1}} shipped. Use code SAVE20 for 20% off your next order!",
                "example": {"body_text": [["A-1042"]]},
            }
        ],
    }
    missing_example = {
        "name": "bad_one",
        "language": "en_US",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hi {{1}}"}],
    }
    async with gateway.http() as http:
        moved = await http.post(f"/{gateway.waba_id}/message_templates", json=promotional_utility)
        assert moved.json()["status"] == "APPROVED" and moved.json()["category"] == "MARKETING"
        rejected = await http.post(f"/{gateway.waba_id}/message_templates", json=missing_example)
        assert rejected.status_code == 200 and rejected.json()["status"] == "REJECTED"
        listing = (await http.get(f"/{gateway.waba_id}/message_templates")).json()
    by_name = {t["name"]: t for t in listing["data"]}
    assert by_name["order_update"]["previous_category"] == "UTILITY"
    assert by_name["order_update"]["parameter_format"] == "POSITIONAL"
    assert by_name["order_update"]["components"][0]["text"].startswith("Order {{1}} shipped")
    assert by_name["bad_one"]["status"] == "REJECTED"
    assert any("[missing_example]" in r for r in by_name["bad_one"]["sealpost_rejection"])


async def test_positional_parameters_and_the_cloud_api_error_codes(
    sqlite_relay, make_account, gateway
):
    dave = await make_account("dave", sqlite_relay)
    shipped = {
        "name": "shipped",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}, order {{2}} has shipped.",
                "example": {"body_text": [["Ana", "A-1042"]]},
            }
        ],
    }

    def send(components: list[dict[str, Any]], name: str = "shipped") -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "to": "dave",
            "type": "template",
            "template": {"name": name, "language": {"code": "en_US"}, "components": components},
        }

    def body(*texts: str) -> list[dict[str, Any]]:
        return [{"type": "body", "parameters": [{"type": "text", "text": t} for t in texts]}]

    async with gateway.http() as http:
        await http.post(f"/{gateway.waba_id}/message_templates", json=shipped)
        ok = await http.post(f"/{gateway.phone_id}/messages", json=send(body("Dave", "A-7")))
        assert ok.status_code == 200, ok.text
        assert ok.json()["contacts"] == [{"input": "dave", "user_id": "dave"}]
        errors = {
            132000: await http.post(f"/{gateway.phone_id}/messages", json=send(body("Dave"))),
            132001: await http.post(
                f"/{gateway.phone_id}/messages", json=send(body("D", "1"), name="nope")
            ),
            131047: await http.post(
                f"/{gateway.phone_id}/messages",
                json={
                    "messaging_product": "whatsapp",
                    "to": "dave",
                    "type": "text",
                    "text": {"body": "hello"},
                },
            ),
            100: await http.post(
                f"/{gateway.phone_id}/messages", json=send(body("D", "1")) | {"to": "4915550000"}
            ),
        }
        wrong_id = await http.post("/123/messages", json=send(body("Dave", "A-7")))
        nowhere = await http.get(f"/{gateway.phone_id}/media")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == 2500
    for code, answer in errors.items():
        assert answer.status_code >= 400 and answer.json()["error"]["code"] == code, answer.text
    assert "sealpost gateway map" in errors[100].json()["error"]["error_data"]["details"]
    assert wrong_id.json()["error"]["error_subcode"] == 33
    [got] = (await dave.sync()).stored
    assert got.label == "Utility" and got.text == "Hi Dave, order A-7 has shipped."


async def test_analytics_show_the_day_before_its_figures_are_published(
    gateway, sqlite_relay, make_account
):
    await make_account("erin", sqlite_relay)
    async with gateway.http() as http:
        created = (await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)).json()
        await http.post(f"/{gateway.phone_id}/messages", json=spring_to("erin", "Erin"))
        found = await http.get(
            f"/{gateway.waba_id}/template_analytics",
            params={"template_ids": json.dumps([created["id"]]), "granularity": "DAILY"},
        )
    [series] = found.json()["data"]
    [point] = series["data_points"]
    assert point["template_id"] == created["id"] and point["sent"] == 1
    assert "delivered" not in point and point["sealpost"]["figures_published"] is False


async def test_the_cli_issues_tokens_maps_numbers_and_explains_itself(
    home, shop, make_account, sqlite_relay
):
    usage = run_cli(home, "gateway", "--help")
    assert "examples:" in usage.stdout and "sealpost gateway token" in usage.stdout
    issued = json.loads(run_cli(home, "gateway", "token", "--profile", "acme", "--json").stdout)
    assert issued["token"].startswith("SPGW") and issued["phone_number_id"].isdigit()
    assert issue_token(shop.profile) != issued["token"]
    run_cli(home, "gateway", "map", "--profile", "acme", "+39 333 1234567", "@Alice")
    assert "393331234567  alice" in run_cli(home, "gateway", "map", "--profile", "acme").stdout
    bad = run_cli(home, "gateway", "map", "--profile", "acme", "12", "alice", check=False)
    assert bad.returncode == 2 and "phone-number-like" in bad.stderr
    missing = run_cli(home, "gateway", "token", "--profile", "nobody", check=False)
    assert missing.returncode == 1 and "No profile 'nobody'" in missing.stderr
    await make_account("frank", sqlite_relay)
    person = run_cli(home, "gateway", "token", "--profile", "frank", check=False)
    assert person.returncode == 1 and "runs on a business profile" in person.stderr
    # Nothing listens on port 9 (discard) here: the handshake fails before anything is served.
    unreachable = "http://127.0.0.1:9/hook"
    args = ("gateway", "--profile", "acme", "--port", "0", "--webhook-url", unreachable)
    down = sealpost(home, *args, check=False)
    assert down.returncode == 1 and "cannot be reached" in down.stderr, down.stderr
    assert load_config(shop.profile).webhook_url is None  # kept only once it answered


async def test_analytics_after_publication_are_the_noisy_figures_and_nothing_per_person(
    clocked_relay, clock, make_account, inbox
):
    shop = await make_account("acme", clocked_relay, business=True, display_name="ACME Shoes")
    await shop.api.top_up(50_000_000)
    for handle in ("gina", "hal"):
        await make_account(handle, clocked_relay)
    ivo = await make_account("ivo", clocked_relay)
    await ivo.api.set_choice("promotions-stopped", "acme", True)
    running = prepare_gateway(shop, clocked_relay, inbox[1])
    await running.server.start()
    try:
        async with running.http() as http:
            template = await http.post(f"/{running.waba_id}/message_templates", json=SPRING)
            template_id = template.json()["id"]
            for handle in ("gina", "hal", "ivo"):
                sent = await http.post(f"/{running.phone_id}/messages", json=spring_to(handle, "X"))
                assert sent.status_code == 200
            [campaign] = (await shop.api.campaigns()).campaigns  # one for the day's sends
            clock.advance(campaign.figures_at - clock.now_ms())
            clocked_relay.app.state.dispatcher.run_once()
            found = await http.get(
                f"/{running.waba_id}/template_analytics", params={"template_ids": template_id}
            )
    finally:
        await running.server.stop()
    [point] = found.json()["data"][0]["data_points"]
    assert point["sent"] == 3  # exact: what the business did and paid
    figures = (await shop.api.campaign(campaign.id)).figures
    assert figures is not None
    # Every figure about people is the published, noisy one: the opt-out is in `refused`,
    # give or take its margin, and in no per-message event.
    assert point["delivered"] == figures.delivered.value
    assert point["sealpost"]["refused"] == figures.refused.value
    assert point["sealpost"]["refused_margin"] == figures.refused.margin > 0
    assert point["sealpost"]["epsilon"] == figures.epsilon


async def test_reply_buttons_inside_the_service_window_come_back_as_button_replies(
    sqlite_relay, make_account, gateway, inbox
):
    webhooks, _ = inbox
    joe = await make_account("joe", sqlite_relay)
    await joe.send_text("acme", "do you have these in blue?")  # opens the service window
    asked = await webhooks.next()
    assert asked["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] == (
        "do you have these in blue?"
    )
    buttons = {
        "messaging_product": "whatsapp",
        "to": "joe",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "In blue, size 38 or 39?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "size_38", "title": "38"}},
                    {"type": "reply", "reply": {"id": "size_39", "title": "Size 39"}},
                ]
            },
        },
    }
    async with gateway.http() as http:
        sent = await http.post(f"/{gateway.phone_id}/messages", json=buttons)
    assert sent.status_code == 200, sent.text
    wamid = sent.json()["messages"][0]["id"]
    status = (await webhooks.next())["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["id"] == wamid and status["pricing"]["billable"] is False
    [shown] = [m for m in (await joe.sync()).stored if m.sender == "acme"]
    assert "1. 38" in (shown.text or "") and "2. Size 39" in (shown.text or "")
    await joe.send_text("acme", "size 39")
    value = (await webhooks.next())["entry"][0]["changes"][0]["value"]
    [answer] = value["messages"]
    assert answer["type"] == "interactive" and answer["context"]["id"] == wamid
    assert answer["interactive"]["button_reply"] == {"id": "size_39", "title": "Size 39"}
    assert value["contacts"] == [{"user_id": "joe", "profile": {"name": "joe"}}]


async def test_a_deleted_template_cannot_be_sent_and_its_name_stays_taken(
    gateway, make_account, sqlite_relay
):
    await make_account("kim", sqlite_relay)
    async with gateway.http() as http:
        await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)
        gone = await http.delete(
            f"/{gateway.waba_id}/message_templates", params={"name": "spring_offer"}
        )
        assert gone.json() == {"success": True}
        refused = await http.post(f"/{gateway.phone_id}/messages", json=spring_to("kim", "Kim"))
        again = await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)
        listed = (await http.get(f"/{gateway.waba_id}/message_templates")).json()
    assert refused.status_code == 404 and refused.json()["error"]["code"] == 132001
    assert again.json()["error"]["error_subcode"] == 2388024
    assert listed["data"] == []


async def test_an_endpoint_that_fails_the_handshake_stops_the_gateway_before_it_serves(
    sqlite_relay, shop, inbox
):
    running = prepare_gateway(shop, sqlite_relay, inbox[1])
    running.gateway.config.verify_token = "not-the-one-it-expects"
    with pytest.raises(WebhookError, match=r"did not echo hub\.challenge"):
        await running.server.start()
    running.server.sock.close()


async def test_sealpost_gateway_serves_the_profile_until_interrupted(home, shop):
    token = issue_token(shop.profile)
    config = load_config(shop.profile)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sealpost",
        "--home",
        str(home),
        "gateway",
        "--profile",
        "acme",
        "--port",
        "0",
        "--webhook-url",
        "none",
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        # It says where it listens once the socket is open (requests made from then on wait
        # in its queue), so reading that line is all the waiting there is.
        line = (await asyncio.wait_for(process.stderr.readline(), EVENT_TIMEOUT_S)).decode()
        found = re.search(r"gateway for @acme on (http://\S+)", line)
        assert found, line
        async with httpx.AsyncClient(base_url=found.group(1) + "/v23.0") as http:
            listing = await http.get(
                f"/{config.waba_id}/message_templates",
                headers={"Authorization": f"Bearer {token}"},
            )
            refused = await http.get(f"/{config.waba_id}/message_templates")
        assert listing.status_code == 200 and listing.json()["data"] == []
        assert refused.status_code == 401 and refused.json()["error"]["code"] == 190
    finally:
        process.send_signal(signal.SIGINT)
        rest = (await asyncio.wait_for(process.stderr.read(), EVENT_TIMEOUT_S)).decode()
        # Ctrl+C ends it as it ends every sealpost command: 130, "interrupted", no traceback.
        assert await process.wait() == 130 and "Traceback" not in rest, rest
    assert load_config(shop.profile).webhook_url is None


async def test_an_event_the_endpoint_refused_comes_again_and_in_order(
    sqlite_relay, make_account, gateway, inbox
):
    webhooks, _ = inbox
    lee = await make_account("lee", sqlite_relay)
    webhooks.down = 1
    await lee.send_text("acme", "first")
    await lee.send_text("acme", "second")
    texts = []
    for _ in range(2):
        [message] = (await webhooks.next())["entry"][0]["changes"][0]["value"]["messages"]
        texts.append(message["text"]["body"])
    assert texts == ["first", "second"] and webhooks.down == 0
