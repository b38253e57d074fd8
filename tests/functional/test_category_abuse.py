"""Category evasion against a real relay on loopback (issue 16, "Categories that cannot be
abused"): a hostile business that labels promotions as authentication or utility, to reach
people who stopped its promotions or set their level to "none", past the daily cap, at the
cheaper price. Each attack is refused at registration or defused on the device.

The business here does not use the reference console (which checks the declared types before
sealing): it seals whatever it likes, as a hostile sender would.
"""

import json

import pytest

from client.messenger import Messenger
from client.relay_api import RelayError
from server.embedded import EmbeddedRelay
from shared.api import SetLevel
from shared.templates import Button, TemplateDraft, VariableSpec
from tests.helpers import hostile_copy

OTP = TemplateDraft(
    name="login_code",
    category="authentication",
    body="",  # the platform writes it
    code_expiry_minutes=10,
    buttons=[Button(type="copy_code", text="Copy code")],
    examples={"code": "482193"},
)
SHIPPED = TemplateDraft(
    name="order_shipped",
    category="utility",
    body="Your order {{order}} has shipped. {{note}}",
    variables={"order": VariableSpec(type="code", max_length=12)},
    examples={"order": "A-1001", "note": "It arrives tomorrow."},
)
PROMOTION = "50% OFF everything ... shop now"
# Promotions written so that a plain word match misses them.
DISGUISED = [
    "Big s\u0430le today",  # Cyrillic a
    "di\u200bscount inside",  # zero-width space
    "Half price on all boots",
    "Use it for 2O% 0FF",  # letter O for zero, zero for O
    "\uff33\uff21\uff2c\uff25 ends Sunday",  # fullwidth
    "S A L E now on",
    "fr33 shipping today",
]


async def business(make_account, relay: EmbeddedRelay) -> Messenger:
    shop = await make_account("acme", relay, business=True, display_name="ACME Shoes")
    await shop.api.top_up(100_000_000)
    return shop


async def test_an_authentication_template_is_the_platforms_or_refused(relay, make_account):
    shop = await business(make_account, relay)
    free_text = [
        TemplateDraft(
            name="otp1",
            category="authentication",
            body="Your code: {{code}}",
            examples={"code": "123456"},
        ),
        OTP.model_copy(update={"name": "otp2", "header": "ACME"}),
        OTP.model_copy(update={"name": "otp3", "buttons": [Button(type="quick_reply", text="Hi")]}),
        OTP.model_copy(update={"name": "otp4", "variables": {"code": VariableSpec(type="text")}}),
        OTP.model_copy(
            update={"name": "otp5", "variables": {"code": VariableSpec(type="code", max_length=40)}}
        ),
    ]
    for draft in free_text:
        with pytest.raises(RelayError) as refused:
            await shop.api.register_template(draft)
        assert refused.value.status == 422 and refused.value.code == "invalid_template"
        assert "[auth_shape]" in refused.value.message or "[variable_type]" in refused.value.message

    otp = await shop.api.register_template(OTP)
    assert otp.category == "authentication"
    assert (
        otp.template.body == "{{code}} is your verification code. This code expires in 10 minutes."
    )
    code = otp.template.variables["code"]
    assert (code.type, code.min_length, code.max_length, code.charset) == ("code", 4, 8, "digits")


async def test_a_promotion_in_an_authentication_code_is_never_shown(relay, make_account):
    shop = await business(make_account, relay)
    otp = await shop.api.register_template(OTP)
    # A code of letters is allowed if declared so: the business words it as a promotion.
    wordy = await shop.api.register_template(
        OTP.model_copy(
            update={
                "name": "login_word",
                "variables": {
                    "code": VariableSpec(
                        type="code", min_length=4, max_length=12, charset="alphanumeric_dash"
                    )
                },
                "examples": {"code": "K7Q2-X9"},
            }
        )
    )
    ana = await make_account("ana", relay)
    await ana.api.set_choice("promotions-stopped", "acme", True)
    await ana.api.set_level(SetLevel(level="none"))
    for _ in range(5):
        await hostile_copy(shop, otp, ana, {"code": PROMOTION})
    await hostile_copy(shop, wordy, ana, {"code": "HALF-PRICE"})
    await hostile_copy(shop, otp, ana, {"code": "482193"})
    stored = (await ana.sync()).stored
    assert [m.status for m in stored] == ["quarantined"] * 6 + ["verified"]
    for message in stored[:5]:
        assert message.quarantine_reason == "bad_variable"
        assert "'code' must be a code of 4 to 8 characters (0-9)" in (
            message.quarantine_detail or ""
        )
        assert PROMOTION not in (message.quarantine_detail or "")  # never put on screen
    hidden = stored[5]
    assert hidden.quarantine_reason == "hidden_by_choice"
    assert hidden.quarantine_detail == (
        "hidden: promotional text in an authentication message, and you stopped promotions "
        "from acme"
    )
    genuine = stored[6]
    assert genuine.label == "Authentication"
    assert genuine.text == "482193 is your verification code. This code expires in 10 minutes."


async def test_a_promoting_utility_copy_meets_the_persons_choices(relay, make_account):
    shop = await business(make_account, relay)
    shipped = await shop.api.register_template(SHIPPED)
    assert shipped.category == "utility"
    stopper, none_level, chatted, fine = [
        await make_account(h, relay) for h in ("stopper", "nolevel", "chatted", "fine")
    ]
    await stopper.api.set_choice("promotions-stopped", "acme", True)
    await none_level.api.set_level(SetLevel(level="none"))
    await chatted.api.set_level(SetLevel(level="chatted"))
    for person in (stopper, none_level, chatted, fine):
        await hostile_copy(shop, shipped, person, {"order": "A-1001", "note": PROMOTION})
    reasons = {}
    for person in (stopper, none_level, chatted):
        [message] = (await person.sync()).stored
        assert message.status == "quarantined" and message.text is None
        assert message.quarantine_reason == "hidden_by_choice"
        reasons[person.profile.handle] = message.quarantine_detail
    prefix = "hidden: promotional text in a utility message, and "
    assert reasons == {
        "stopper": prefix + "you stopped promotions from acme",
        "nolevel": prefix + "your marketing level is 'none'",
        "chatted": prefix + "your marketing level is 'chatted' and you never wrote to acme",
    }
    [shown] = (await fine.sync()).stored
    assert shown.status == "verified"
    assert shown.label == "Marketing (promotional text in a utility message)"
    # A plain update still reaches the person who stopped promotions, as utility.
    await hostile_copy(shop, shipped, stopper, {"order": "A-1002", "note": "Track it below."})
    [plain] = (await stopper.sync()).stored
    assert (plain.status, plain.label) == ("verified", "Utility")


async def test_promoting_copies_count_against_the_daily_cap_on_the_device(relay, make_account):
    shop = await business(make_account, relay)
    shipped = await shop.api.register_template(SHIPPED)
    ana = await make_account("ana", relay)
    for i in range(5):
        await hostile_copy(shop, shipped, ana, {"order": f"A-{i}", "note": PROMOTION})
    stored = (await ana.sync()).stored  # all five in one page: counted before being stored
    assert [m.status for m in stored] == ["verified"] * 2 + ["quarantined"] * 3
    assert all(m.label and m.label.startswith("Marketing") for m in stored[:2])
    for message in stored[2:]:
        assert message.quarantine_detail == (
            "hidden: promotional text in a utility message, and you had 2 marketing message(s) "
            "in the last 24 hours, the daily cap is 2"
        )
    # Counted from the store on the next sync too.
    await hostile_copy(shop, shipped, ana, {"order": "A-9", "note": PROMOTION})
    [later] = (await ana.sync()).stored
    assert later.quarantine_reason == "hidden_by_choice"


async def test_disguised_promotions_are_seen_through(relay, make_account):
    shop = await business(make_account, relay)
    # At registration: a utility template that promotes in disguise is registered as marketing.
    for i, text in enumerate(DISGUISED):
        template = await shop.api.register_template(
            TemplateDraft(name=f"disguised_{i}", category="utility", body=f"Hello! {text}")
        )
        assert template.category == "marketing", text
        assert template.reclassified_reason and "may not promote" in template.reclassified_reason
    # On the device: the same texts in a variable of a plain utility template.
    shipped = await shop.api.register_template(SHIPPED)
    stopper = await make_account("stopper", relay)
    await stopper.api.set_choice("promotions-stopped", "acme", True)
    for text in DISGUISED:
        await hostile_copy(shop, shipped, stopper, {"order": "A-1", "note": text})
    stored = (await stopper.sync()).stored
    # An invisible character is not even a valid value of short text: quarantined before its
    # words are read. Every other one is read as the promotion it is.
    expected = ["bad_variable" if "\u200b" in t else "hidden_by_choice" for t in DISGUISED]
    assert [m.quarantine_reason for m in stored] == expected


async def test_typed_variables_are_enforced_on_the_device(relay, make_account):
    shop = await business(make_account, relay)
    reminder = await shop.api.register_template(
        TemplateDraft(
            name="appointment",
            category="utility",
            body="Hi {{name}}, your appointment is on {{when}}. Deposit {{deposit}}, "
            "{{seats}} seat(s). Details: {{link}}",
            variables={
                "name": VariableSpec(type="name"),
                "when": VariableSpec(type="date"),
                "deposit": VariableSpec(type="currency"),
                "seats": VariableSpec(type="number", max_length=3),
                "link": VariableSpec(type="url"),
            },
            examples={
                "name": "Ana",
                "when": "3 June, 10:00",
                "deposit": "€20.00",
                "seats": "2",
                "link": "https://clinic.example/a/1",
            },
        )
    )
    assert reminder.category == "utility"
    good = {
        "name": "Zoë O'Neil",
        "when": "2025-06-03 10:00",
        "deposit": "EUR 20,00",
        "seats": "2",
        "link": "https://clinic.example/a/1",
    }
    bad = [
        ("name", "50% OFF shop now"),
        ("when", "today only!"),
        ("deposit", "FREE"),
        ("seats", "1000"),
        ("link", "javascript:alert(1)"),
        ("name", "Ana\u202eevil"),  # a bidi override
        ("name", "A" * 41),  # over the default bound
    ]
    people = [await make_account(f"per{i}", relay) for i in range(len(bad) + 1)]
    await hostile_copy(shop, reminder, people[0], good)
    for person, (name, value) in zip(people[1:], bad, strict=True):
        await hostile_copy(shop, reminder, person, {**good, name: value})
    [fine] = (await people[0].sync()).stored
    assert fine.status == "verified" and fine.label == "Utility"
    for person, (name, value) in zip(people[1:], bad, strict=True):
        [held] = (await person.sync()).stored
        assert held.status == "quarantined" and held.quarantine_reason == "bad_variable"
        assert (held.quarantine_detail or "").startswith(f"'{name}' must be ")
        assert value not in (held.quarantine_detail or "")


def test_the_console_writes_an_authentication_template_and_skips_mistyped_rows(
    sqlite_relay, home, tmp_path
):
    # The reference console, for a business that plays fair: the platform's text, a declared
    # code, and rows whose values would be quarantined are skipped before they are paid for.
    from tests.helpers import run_cli as sealpost  # in this process

    url = sqlite_relay.url
    sealpost(home, "account", "create", "--profile", "shop", "--handle", "acme", "--relay", url,
             "--business", "--name", "ACME")  # fmt: skip
    for name in ("ana", "ben"):
        sealpost(home, "account", "create", "--profile", name, "--handle", name, "--relay", url,
                 "--country", "+39")  # fmt: skip
    sealpost(home, "business", "--profile", "shop", "budget", "top-up", "5")
    added = sealpost(
        home, "business", "--profile", "shop", "template", "add", "--name", "login",
        "--category", "authentication", "--variable", "code=code:6-6:digits",
        "--code-expiry", "5", "--example", "code=123456", "--button", "copy_code:Copy code",
        "--json",
    )  # fmt: skip
    info = json.loads(added.stdout)
    assert info["category"] == "authentication"
    assert info["template"]["body"] == (
        "{{code}} is your verification code. This code expires in 5 minutes."
    )
    assert info["template"]["variables"] == {
        "code": {"type": "code", "min_length": 6, "max_length": 6, "charset": "digits"}
    }
    refused = sealpost(
        home, "business", "--profile", "shop", "template", "add", "--name", "login2",
        "--category", "authentication", "--body", "Your code: {{code}}", "--example",
        "code=123456", check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "[auth_shape]" in refused.stderr

    csv = tmp_path / "codes.csv"
    csv.write_text("handle,code\nana,482193\nben,50% OFF\n")
    created = sealpost(
        home, "business", "--profile", "shop", "campaign", "create", "--template", "login",
        "--audience", str(csv), "--budget", "1", "--json",
    )  # fmt: skip
    result = json.loads(created.stdout)
    assert result["accepted"] == 1
    [(line, why)] = result["skipped_rows"]
    assert line == 3 and why.startswith("'code' must be a code of exactly 6 characters (0-9)")
    inbox = sealpost(home, "inbox", "--profile", "ana").stdout
    assert "482193 is your verification code. This code expires in 5 minutes." in inbox


async def test_misclassifying_never_pays(relay, make_account):
    # A "utility" template with a free-text variable can carry any promotion: the relay cannot
    # read it, so it prices the copy as the marketing it may be. One whose variables are all
    # narrowly typed keeps the utility price.
    shop = await business(make_account, relay)
    alice = await make_account("alice", relay)
    prices = await shop.api.pricing()
    free_text = await shop.api.register_template(SHIPPED)  # {{note}}: undeclared, short text
    narrow = await shop.api.register_template(
        TemplateDraft(
            name="order_ready",
            category="utility",
            body="Order {{order}} is ready for pickup.",
            variables={"order": VariableSpec(type="code", max_length=12)},
            examples={"order": "A-1001"},
        )
    )
    assert (free_text.priced_as, narrow.priced_as) == ("marketing", "utility")
    spent = []
    for template, variables in (
        (free_text, {"order": "A-1", "note": PROMOTION}),
        (narrow, {"order": "A-2"}),
    ):
        before = (await shop.api.budget()).spent
        await hostile_copy(shop, template, alice, variables)
        spent.append((await shop.api.budget()).spent - before)
    assert spent == [prices.price("+39", "marketing"), prices.price("+39", "utility")]


async def test_repeated_misuse_is_reported_with_what_was_hidden(relay, make_account, home):
    # A person who stopped acme's promotions gets them passed off as utility, hidden on her
    # device. One report (Ctrl+R in the app) carries each hidden copy with why it was hidden.
    from sealpost.commands.desk import create_desk

    shop = await business(make_account, relay)
    shipped = await shop.api.register_template(SHIPPED)
    alice = await make_account("alice", relay)
    await alice.api.set_choice("promotions-stopped", "acme", True)
    for order in ("A-1", "A-2"):
        await hostile_copy(shop, shipped, alice, {"order": order, "note": PROMOTION})
    await alice.sync()
    pin = create_desk(home, "desk", "moderation", relay.url, relay.app.state.engine, "Desk")
    alice.settings.moderation_key_fingerprint = pin
    report = await alice.report("acme", alice.store.last_incoming("acme"))
    assert report.status == "sent"
    desk = Messenger.open(home, "desk")
    try:
        [got] = (await desk.sync()).stored
    finally:
        await desk.aclose()
    items = json.loads(got.text or "")["report"]["messages"]
    assert [i["hidden"] for i in items] == [
        "hidden: promotional text in a utility message, and you stopped promotions from acme"
    ] * 2
