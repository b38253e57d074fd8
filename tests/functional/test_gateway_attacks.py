"""Attacks on the business gateway (client/gateway/, issue 20), against a real relay.

The attacker is the business itself, with its own gateway, tokens and accounts (DESIGN: "hostile
business"), and anyone else who can reach the gateway's port. Each test states what must hold:
that nothing the gateway answers or posts tells the business which person chose what, or is
offline, or has not accepted it; that an unauthenticated client gets nothing but the Cloud API's
authentication error, before the gateway reads what it sent; and that a recipient is the person
the business named, never one whose number or handle merely looks like it.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pywa_async import WhatsApp
from pywa_async.errors import WhatsAppError

from client.gateway.config import config_path, load_config, map_recipient, save_config
from client.gateway.tokens import issue_token
from client.ledger import PrivacyLedger
from client.relay_api import RelayAPI
from server.embedded import EmbeddedRelay
from shared.api import SetLevel
from shared.seal import VerificationError, open_envelope
from tests.conftest import relay_settings
from tests.helpers import (
    EVENT_TIMEOUT_S,
    SPRING,
    ToGateway,
    prepare_gateway,
    run_cli,
    same_shape,
    spring_to,
    swap_keys,
)


def _change(webhook: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = webhook["entry"][0]["changes"][0]["value"]
    return value


async def _raw_status(url: str, head: str) -> tuple[int, dict[str, Any]]:
    """Send only ``head`` (request line and headers, no body) and read the answer: a gateway
    that waited for the body it was promised would never answer, and this fails on the bound."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), EVENT_TIMEOUT_S)
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), EVENT_TIMEOUT_S)) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), EVENT_TIMEOUT_S)
    finally:
        writer.close()
    return int(status_line.split()[1]), json.loads(body)


# --- who the gateway talks to: tokens ------------------------------------------


async def test_an_unauthenticated_request_is_refused_before_its_body_is_read(gateway):
    # A gigabyte promised and never sent: only a gateway that checks the token first answers.
    promised = (
        f"POST /v23.0/{gateway.phone_id}/messages HTTP/1.1\r\nHost: gateway\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
    )
    status, answer = await _raw_status(gateway.url, promised)
    assert status == 401 and answer["error"]["code"] == 190
    async with httpx.AsyncClient(base_url=gateway.url + "/v23.0") as anonymous:
        # Nor does a body that does not parse, or a path it does not serve, teach anything
        # to a client without a token: the same authentication error for all.
        garbled = await anonymous.post(
            f"/{gateway.phone_id}/messages",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        unknown = await anonymous.get(f"/{gateway.phone_id}/media")
    for refused in (garbled, unknown):
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == 190


async def test_a_body_over_the_limit_is_refused_in_the_graph_shape_without_being_read(gateway):
    promised = (
        f"POST /v23.0/{gateway.phone_id}/messages HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {gateway.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
    )
    status, answer = await _raw_status(gateway.url, promised)
    assert status == 413 and answer["error"]["code"] == 100
    assert "bytes" in answer["error"]["error_data"]["details"]
    # Sent in chunks, without a length: counted as it comes, refused alike.
    chunks = [b'{"messaging_product":"whatsapp","pad":"'] + [b"x" * 65536] * 40 + [b'"}']

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async with gateway.http() as http:
        chunked = await http.post(
            f"/{gateway.phone_id}/messages",
            content=stream(),
            headers={"Content-Type": "application/json"},
        )
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == 100

    async def small() -> AsyncIterator[bytes]:  # under the limit, chunked: read and served
        yield json.dumps(SPRING).encode()

    async with gateway.http() as http:
        created = await http.post(
            f"/{gateway.waba_id}/message_templates",
            content=small(),
            headers={"Content-Type": "application/json"},
        )
    assert created.status_code == 200 and created.json()["status"] == "APPROVED", created.text


async def test_a_body_that_is_not_json_is_told_so(gateway):
    async with gateway.http() as http:
        garbled = await http.post(
            f"/{gateway.phone_id}/messages",
            content=b'{"messaging_product": "whatsapp", to: "alice"}',
            headers={"Content-Type": "application/json"},
        )
        form = await http.post(
            f"/{gateway.phone_id}/messages",
            data={"messaging_product": "whatsapp", "to": "alice", "type": "text"},
        )
    for answer in (garbled, form):
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 100
    # Where it broke, and how to send it: not pydantic's "Input should be a valid dictionary".
    assert "not valid JSON" in garbled.json()["error"]["error_data"]["details"]
    assert "at character 34" in garbled.json()["error"]["error_data"]["details"]
    assert "Content-Type: application/json" in form.json()["error"]["error_data"]["details"]


async def test_a_huge_parameter_list_gets_a_short_answer(sqlite_relay, make_account, gateway):
    await make_account("dora", sqlite_relay)
    many = [{"type": "text", "text": "x"} for _ in range(3000)]
    shipped = {
        "name": "shipped",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "Order {{1}} shipped.", "example": {"body_text": [["A-1"]]}}
        ],
    }
    async with gateway.http() as http:
        await http.post(f"/{gateway.waba_id}/message_templates", json=shipped)
        answer = await http.post(
            f"/{gateway.phone_id}/messages",
            json={
                "messaging_product": "whatsapp",
                "to": "dora",
                "type": "template",
                "template": {
                    "name": "shipped",
                    "language": {"code": "en_US"},
                    "components": [{"type": "body", "parameters": many}],
                },
            },
        )
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["code"] == 132000
    # It names the first few it did not expect and counts the rest: an answer as long as
    # the request would be the request echoed back, thousands of names long.
    details = error["error_data"]["details"]
    assert "body {{2}}" in details and "2,999 unexpected" in details and len(details) < 500


async def test_a_revoked_token_or_another_businesss_is_refused_at_once(
    home, gateway, sqlite_relay, make_account
):
    listing = f"/{gateway.waba_id}/message_templates"
    crm = json.loads(
        run_cli(home, "gateway", "token", "--profile", "acme", "--label", "crm", "--json").stdout
    )["token"]
    other = await make_account("zeta", sqlite_relay, business=True, display_name="Zeta")
    zeta = issue_token(other.profile, "zeta's own")
    async with gateway.http(token=crm) as http:
        assert (await http.get(listing)).status_code == 200
    assert (
        "revoked 1 token"
        in run_cli(home, "gateway", "token", "--profile", "acme", "--revoke", "crm").stdout
    )
    listed = run_cli(home, "gateway", "token", "--profile", "acme", "--list").stdout
    assert "crm" not in listed and "test" in listed and gateway.token not in listed
    # The running gateway refuses it from the next request on, as it refuses another
    # business's token; its own still works, until it is revoked by its value.
    for refused in (crm, zeta):
        async with gateway.http(token=refused) as http:
            answer = await http.get(listing)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == 190
    async with gateway.http() as http:
        assert (await http.get(listing)).status_code == 200
        run_cli(home, "gateway", "token", "--profile", "acme", "--revoke", gateway.token)
        assert (await http.get(listing)).status_code == 401
    unknown = run_cli(home, "gateway", "token", "--profile", "acme", "--revoke", "crm", check=False)
    assert unknown.returncode == 1 and "--list" in unknown.stderr
    unlabelled = issue_token(gateway.shop.profile)
    empty = run_cli(home, "gateway", "token", "--profile", "acme", "--revoke", "", check=False)
    assert empty.returncode == 2
    async with gateway.http(token=unlabelled) as http:
        assert (await http.get(listing)).status_code == 200
        # A tokens file broken by hand: every token refused, in the Graph API's shape.
        (gateway.shop.profile.dir / "gateway-tokens.json").write_text("[{")
        broken = await http.get(listing)
    assert broken.status_code == 401 and broken.json()["error"]["code"] == 190


# --- who a recipient is -------------------------------------------------------------------


async def test_a_number_or_handle_that_only_looks_like_a_mapped_one_reaches_nobody(
    sqlite_relay, make_account, gateway, inbox
):
    webhooks, _ = inbox
    kim = await make_account("kim", sqlite_relay)
    map_recipient(gateway.shop.profile, "39333123456", "kim")
    gateway.gateway.config.recipients = load_config(gateway.shop.profile).recipients
    lookalikes = [
        "39333123456\u0667",  # an Arabic-Indic 7 after the digits of Kim's number
        "\uff13\uff19\uff13\uff13\uff13\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth
        "\u212aim",  # KELVIN SIGN, which lower() turns into an ASCII k
    ]
    async with gateway.http() as http:
        await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)
        for to in lookalikes:
            answer = await http.post(f"/{gateway.phone_id}/messages", json=spring_to(to, "Kim"))
            assert answer.status_code == 400, (to, answer.text)
            assert answer.json()["error"]["code"] == 100
        sent = await http.post(
            f"/{gateway.phone_id}/messages", json=spring_to("+39 333 123456", "K")
        )
    assert sent.status_code == 200, sent.text
    await webhooks.next()  # the one `sent` status, for the one send that was Kim's number
    assert len((await kim.sync()).stored) == 1


async def test_a_number_mapped_while_the_gateway_runs_works_at_once(
    home, sqlite_relay, make_account, gateway, inbox
):
    webhooks, _ = inbox
    nia = await make_account("nia", sqlite_relay)
    async with gateway.http() as http:
        await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)
        before = await http.post(f"/{gateway.phone_id}/messages", json=spring_to("393330009", "N"))
        # The answer tells the integration to map it; once it has, the number works.
        assert before.status_code == 400 and "gateway map" in before.text
        run_cli(home, "gateway", "map", "--profile", "acme", "393330009", "nia")
        after = await http.post(f"/{gateway.phone_id}/messages", json=spring_to("393330009", "N"))
    assert after.status_code == 200, after.text
    assert after.json()["contacts"][0]["wa_id"] == "393330009"
    await webhooks.next()
    await nia.send_text("acme", "thanks")
    [message] = _change(await webhooks.next())["messages"]
    assert message["from"] == "393330009"  # named by the number, as the integration knows her
    assert len((await nia.sync()).stored) == 1
    # A hand edit that breaks the file leaves the mapping in use as it was.
    config_path(gateway.shop.profile).write_text("{ not json")
    async with gateway.http() as http:
        kept = await http.post(
            f"/{gateway.phone_id}/messages",
            json={
                "messaging_product": "whatsapp",
                "to": "393330009",
                "type": "text",
                "text": {"body": "see you"},
            },
        )
    assert kept.status_code == 200, kept.text


async def test_a_mapping_names_a_handle_and_nothing_else(gateway, sqlite_relay, make_account):
    profile = gateway.shop.profile
    for bad in ("../accounts/lookup", "al/ice", "a", "\u212aim"):
        with pytest.raises(ValueError, match="handle"):
            map_recipient(profile, "393330000001", bad)
    # A mapping written into gateway.json by hand is checked when it is used, as a handle
    # in `to` is: the relay is never asked for a path the business made up.
    config = load_config(profile)
    config.recipients["393330000002"] = "../../v1/prefs"
    save_config(profile, config)
    gateway.gateway.config.recipients = config.recipients
    async with gateway.http() as http:
        await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)
        answer = await http.post(
            f"/{gateway.phone_id}/messages", json=spring_to("393330000002", "X")
        )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100, answer.text


# --- what the business learns about people -------------------------------------------------


@pytest.fixture
def strict_relay(sqlite_url: str) -> AsyncIterator[EmbeddedRelay]:
    """A relay with the shipped message-request rule tightened to one message: a stranger's
    second copy waits for the person to accept it (server/message_requests.py)."""
    with EmbeddedRelay(relay_settings(sqlite_url, request_hold=1)) as running:
        yield running


WARMUP = {
    "name": "welcome",
    "language": "en_US",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Welcome to ACME Shoes: your account is ready."}],
}


async def test_no_answer_or_webhook_tells_a_persons_choices_presence_or_acceptance(
    strict_relay, make_account, inbox
):
    webhooks, hook_url = inbox
    shop = await make_account("acme", strict_relay, business=True, display_name="ACME Shoes")
    await shop.api.top_up(50_000_000)
    states = ["plain", "online", "stopped", "blocked", "level_none", "stranger"]
    people = {s: await make_account(f"p_{s}", strict_relay) for s in states}
    for state, person in people.items():
        if state != "stranger":  # the one who never accepted the business's messages
            await person.api.set_choice("accepted", "acme", True)
    await people["stopped"].api.set_choice("promotions-stopped", "acme", True)
    await people["blocked"].api.set_choice("blocked", "acme", True)
    await people["level_none"].api.set_level(SetLevel(level="none"))
    listening = asyncio.Event()
    stop = asyncio.Event()

    def heard(event: Any) -> None:
        if getattr(event, "online", False):
            listening.set()

    stream = asyncio.create_task(people["online"].listen(heard, stop))
    await asyncio.wait_for(listening.wait(), EVENT_TIMEOUT_S)
    running = prepare_gateway(shop, strict_relay, hook_url)
    await running.server.start()
    seen: dict[str, Any] = {}
    try:
        async with running.http() as http:
            for template in (WARMUP, SPRING):
                made = await http.post(f"/{running.waba_id}/message_templates", json=template)
                assert made.json()["status"] == "APPROVED", made.text
            for state in states:
                # The stranger's first message passes the request rule; the second waits.
                first = await http.post(
                    f"/{running.phone_id}/messages",
                    json={
                        "messaging_product": "whatsapp",
                        "to": f"p_{state}",
                        "type": "template",
                        "template": {"name": "welcome", "language": {"code": "en_US"}},
                    },
                )
                assert first.status_code == 200, first.text
                await webhooks.next()
            for state in states:
                answer = await http.post(
                    f"/{running.phone_id}/messages", json=spring_to(f"p_{state}", "Pat")
                )
                seen[state] = (answer.status_code, answer.json(), await webhooks.next())
        got = {}
        for state, person in people.items():
            await person.sync()  # the online one's copy came on its stream, into its store
            got[state] = any("20% off" in (m.text or "") for m in person.store.messages("acme"))
        # Every copy that could be delivered was, and acked: nothing more comes for anyone
        # (no delivered, read or failed event). The next webhook is the one caused now.
        await people["plain"].send_text("acme", "see you Saturday")
        [after] = _change(await webhooks.next())["messages"]
        assert after["text"]["body"] == "see you Saturday"
    finally:
        await running.server.stop()
        stop.set()
        await stream
    shapes = {s: same_shape(seen[s], {f"p_{s}": "<person>"}) for s in states}
    for state in states:
        assert shapes[state] == shapes["plain"], state
    [status] = _change(seen["plain"][2])["statuses"]
    assert status["status"] == "sent"
    assert got == {
        "plain": True,
        "online": True,
        "stopped": False,
        "blocked": False,
        "level_none": False,
        "stranger": False,
    }


async def test_a_text_to_a_person_who_blocked_the_business_is_answered_as_any_other(
    sqlite_relay, make_account, gateway, inbox
):
    webhooks, _ = inbox
    tim = await make_account("tim", sqlite_relay)
    tom = await make_account("tom", sqlite_relay)
    for person in (tim, tom):  # each opens the service window, then one of them blocks
        await person.send_text("acme", "is the shop open on Sunday?")
        await webhooks.next()
    await tom.api.set_choice("blocked", "acme", True)
    seen = {}
    async with gateway.http() as http:
        for handle in ("tim", "tom"):
            answer = await http.post(
                f"/{gateway.phone_id}/messages",
                json={
                    "messaging_product": "whatsapp",
                    "to": handle,
                    "type": "text",
                    "text": {"body": "Yes, 10 to 18."},
                },
            )
            seen[handle] = same_shape(
                (answer.status_code, answer.json(), await webhooks.next()), {handle: "<p>"}
            )
    assert seen["tim"] == seen["tom"] and seen["tim"][0] == 200
    assert [m.text for m in (await tim.sync()).stored if m.sender == "acme"] == ["Yes, 10 to 18."]
    assert [m for m in (await tom.sync()).stored if m.sender == "acme"] == []


async def test_keys_the_relay_swaps_for_a_known_person_are_never_sealed_to(
    sqlite_relay, make_account, gateway, inbox
):
    """The relay is active on keys (DESIGN): the gateway seals to the keys it pinned when it
    first wrote to a person, never to the ones the directory hands out afterwards."""
    webhooks, _ = inbox
    vic = await make_account("vic", sqlite_relay)
    async with gateway.http() as http:
        await http.post(f"/{gateway.waba_id}/message_templates", json=SPRING)
        first = await http.post(f"/{gateway.phone_id}/messages", json=spring_to("vic", "Vic"))
        assert first.status_code == 200
        await webhooks.next()
        assert len((await vic.sync()).stored) == 1  # pinned, and acked: out of the mailbox
        forged = swap_keys(sqlite_relay, "vic")
        again = await http.post(f"/{gateway.phone_id}/messages", json=spring_to("vic", "Vic"))
    assert again.status_code == 200, again.text
    async with RelayAPI(sqlite_relay.url, "vic", forged, PrivacyLedger(None)) as as_relay:
        [waiting] = (await as_relay.mailbox_page()).items
    with pytest.raises(VerificationError) as caught:
        open_envelope(waiting.envelope, forged, gateway.shop.profile.keys.public)
    assert caught.value.reason == "cannot_decrypt"


# --- what an integration does besides sending ---------------------------------------------


async def test_pywa_marks_a_message_read_and_shows_typing(
    sqlite_relay, make_account, gateway, inbox
):
    webhooks, _ = inbox
    uma = await make_account("uma", sqlite_relay)
    await uma.send_text("acme", "hello?")
    [message] = _change(await webhooks.next())["messages"]
    conversation = gateway.shop.store.conversation("uma")
    assert conversation is not None and conversation.unread == 1
    session = httpx.AsyncClient(transport=ToGateway(gateway.url), timeout=EVENT_TIMEOUT_S)
    wa = WhatsApp(phone_id=gateway.phone_id, token=gateway.token, session=session)
    try:
        read = await wa.mark_message_as_read(message["id"])
        typing = await wa.indicate_typing(message["id"])
        with pytest.raises(WhatsAppError) as caught:  # not a message the business received
            await wa.mark_message_as_read("wamid." + "0" * 32)
    finally:
        await session.aclose()
    assert read.success and typing.success
    assert caught.value.code == 131009
    # Read here means read by the business, in its own store; nothing goes to Uma.
    conversation = gateway.shop.store.conversation("uma")
    assert conversation is not None and conversation.unread == 0
    assert [m for m in (await uma.sync()).stored if m.sender == "acme"] == []
