"""Template rules shared by relay and client: validation, reclassification, hashing, rendering."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.encoding import canonical_json
from shared.templates import (
    AUTH_CODE_DEFAULT,
    MAX_BUTTONS,
    MAX_TEMPLATES_PER_BUSINESS,
    PLACEHOLDER_RE,
    STOP_PROMOTIONS,
    Button,
    TemplateDraft,
    TemplateRenderError,
    VariableSpec,
    authentication_body,
    example_variables,
    finalize,
    find_malformed,
    placeholders,
    platform_action,
    promotional_terms,
    render,
    template_hash,
    validate_draft,
    value_problem,
    variable_names,
    variable_problems,
)


def draft(**fields) -> TemplateDraft:
    base = {"name": "order_update", "category": "utility", "body": "Your order has shipped."}
    return TemplateDraft(**(base | fields))


def quick(text: str) -> Button:
    return Button(type="quick_reply", text=text)


def link(text: str, url: str = "https://example.com/track") -> Button:
    return Button(type="url", text=text, url=url)


def copy(text: str = "Copy code", example: str | None = "123456", **kw) -> Button:
    return Button(type="copy_code", text=text, example=example, **kw)


def otp(**fields) -> TemplateDraft:
    """An authentication template in the platform's shape (its body written by finalize)."""
    return draft(
        **({"category": "authentication", "body": "", "examples": {"code": "123456"}} | fields)
    )


def problems(d: TemplateDraft) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in validate_draft(d):
        found.setdefault(problem.rule, []).append(problem.message)
    return found


def only(d: TemplateDraft, rule: str) -> list[str]:
    found = problems(d)
    assert set(found) == {rule}, found
    return found[rule]


# --- models -----------------------------------------------------------------------------------


def test_constants():
    assert STOP_PROMOTIONS == "Stop promotions"
    assert MAX_TEMPLATES_PER_BUSINESS == 250


def test_a_valid_utility_draft_has_no_problems():
    d = draft(
        header="Order {{order_id}}",
        body="Hi {{name}}, order {{order_id}} ships today.",
        footer="Sealpost Shop",
        buttons=[link("Track"), quick("Thanks")],
        examples={"name": "Ada", "order_id": "A-17"},
    )
    assert validate_draft(d) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "url", "text": "Go"},
        {"type": "url", "text": "Go", "url": "ftp://example.com"},
        {"type": "url", "text": "Go", "url": "https://exa mple.com"},
        {"type": "url", "text": "Go", "url": "https://e.com/" + "a" * 2000},
        {"type": "quick_reply", "text": "Go", "url": "https://example.com"},
        {"type": "quick_reply", "text": "Go", "variable": "code"},
        {"type": "url", "text": "Go", "url": "https://example.com", "example": "x"},
        {"type": "quick_reply", "text": ""},
        {"type": "quick_reply", "text": "x" * 26},
        {"type": "copy_code", "text": "Copy", "example": "x" * 16},
        {"type": "quick_reply", "text": "Go", "colour": "red"},
    ],
)
def test_button_shape_is_enforced(fields):
    with pytest.raises(ValidationError):
        Button(**fields)


def test_button_shapes_that_are_allowed():
    assert Button(type="url", text="Go", url="http://example.com").url == "http://example.com"
    assert Button(type="quick_reply", text="x" * 25).text == "x" * 25
    assert copy().variable == "code"
    assert copy(variable="otp").variable == "otp"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Order"},
        {"name": "order-update"},
        {"name": "x" * 65},
        {"language": "EN"},
        {"language": "en_us"},
        {"language": "eng"},
        {"category": "service"},
        {"extra": "field"},
    ],
)
def test_draft_shape_is_enforced(fields):
    with pytest.raises(ValidationError):
        draft(**fields)


def test_draft_defaults_and_permissive_lengths():
    d = draft(body="x" * 5000, header="h" * 500, language="pt_BR")
    assert d.language == "pt_BR" and d.buttons == [] and d.examples == {}
    assert draft().language == "en"


# --- placeholders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Hi {{name}}", ["name"]),
        ("{{b}} {{a}} {{b}}", ["b", "a"]),
        ("{{a}}{{b}}", ["a", "b"]),
        ("{{_x9}}", ["_x9"]),
        ("{{" + "a" * 32 + "}}", ["a" * 32]),
        ("{{" + "a" * 33 + "}}", []),
        ("{name} and { name }", []),
        ("{{Name}} {{ a }} {{1a}} {{}}", []),
        ("{{{a}}}", []),
        ("{{a {{b}} c}}", []),
        ("no placeholders", []),
    ],
)
def test_placeholders(text, names):
    assert placeholders(text) == names


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("Hi {{name}}", []),
        ("single {name} braces are text", []),
        ("a { b } c", []),
        ("{{}}", ["{{}}"]),
        ("Hi {{ name }}!", ["{{ name }}"]),
        ("{{1abc}}", ["{{1abc}}"]),
        ("{{Name}}", ["{{Name}}"]),
        ("{{first-name}}", ["{{first-name}}"]),
        ("{{{name}}}", ["{{{name}}}"]),
        ("{{a}}}", ["{{a}}}"]),
        ("{{a {{b}} c}}", ["{{a {{b}} c}}"]),
        ("{{a{b}}", ["{{a{b}}"]),
        ("Hi {{name, welcome", ["{{name,"]),
        ("Hi name}} welcome", ["name}}"]),
        ("{{a}} b}} {{c", ["b}}", "{{c"]),
        ("{{x y}} and {{x y}}", ["{{x y}}"]),
    ],
)
def test_find_malformed(text, fragments):
    assert find_malformed(text) == fragments


def test_placeholder_re_matches_one_well_formed_placeholder():
    assert PLACEHOLDER_RE.fullmatch("{{order_id}}").group(1) == "order_id"
    assert PLACEHOLDER_RE.search("{{{order_id}}}") is None


# --- validation rules -------------------------------------------------------------------------


def test_body_length():
    (message,) = only(draft(body="x" * 1100), "body_length")
    assert "1,100" in message and "1,024" in message and "76" in message
    (message,) = only(draft(body=""), "body_length")
    assert "empty" in message
    assert validate_draft(draft(body="x" * 1024)) == []


def test_header_and_footer_length():
    (message,) = only(draft(header="h" * 61), "header_length")
    assert "61" in message and "60" in message
    (message,) = only(draft(footer="f" * 75), "footer_length")
    assert "75" in message and "60" in message
    assert validate_draft(draft(header="h" * 60, footer="f" * 60)) == []


def test_footer_placeholder():
    (message,) = only(draft(footer="Sent to {{phone}}"), "footer_placeholder")
    assert "{{phone}}" in message


def test_too_many_buttons():
    (message,) = only(draft(buttons=[quick(f"Option {i}") for i in range(11)]), "too_many_buttons")
    assert "11" in message and "10" in message


def test_the_stop_button_counts_toward_the_limit():
    ten = [quick(f"Option {i}") for i in range(MAX_BUTTONS)]
    assert validate_draft(draft(buttons=ten)) == []
    (message,) = only(draft(category="marketing", buttons=ten), "too_many_buttons")
    assert "11" in message and "10" in message and STOP_PROMOTIONS in message
    # The same verdict on the finalized draft, as the relay checks it.
    final, _ = finalize(draft(category="marketing", buttons=ten))
    assert [p.rule for p in validate_draft(final)] == ["too_many_buttons"]


def test_too_many_url_buttons():
    d = draft(buttons=[link("One"), link("Two"), link("Three")])
    (message,) = only(d, "too_many_url_buttons")
    assert "3" in message and "2" in message


def test_too_many_copy_code_buttons():
    d = draft(category="marketing", buttons=[copy("Copy"), copy("Copy again")])
    (message,) = only(d, "too_many_copy_code_buttons")
    assert "2" in message and "1" in message


def test_malformed_placeholder_names_the_fragment():
    d = draft(header="For {{Name}}", body="Hi {{ name }}, order {{1abc}} is ready")
    messages = only(d, "malformed_placeholder")
    assert len(messages) == 3
    for fragment, message in zip(["{{Name}}", "{{ name }}", "{{1abc}}"], messages, strict=True):
        assert fragment in message
    assert "header" in messages[0] and "body" in messages[1]


def test_missing_example_names_each_placeholder():
    d = draft(header="{{order_id}}", body="Hi {{name}}, {{when}}", examples={"when": "  "})
    messages = only(d, "missing_example")
    assert len(messages) == 3
    for name, message in zip(["order_id", "name", "when"], messages, strict=True):
        assert f"{{{{{name}}}}}" in message


def test_a_copy_code_button_needs_an_example_unless_its_variable_has_one():
    (message,) = only(draft(category="marketing", buttons=[copy(example=None)]), "missing_example")
    assert "Copy code" in message
    covered = draft(
        category="marketing",
        body="Your code is {{code}}",
        buttons=[copy(example=None)],
        examples={"code": "123456"},
    )
    assert validate_draft(covered) == []


def test_unused_example():
    (message,) = only(draft(examples={"name": "Ada"}), "unused_example")
    assert "'name'" in message


def test_copy_code_variable_must_be_a_placeholder_name():
    d = draft(category="marketing", buttons=[copy(variable="Promo Code")])
    (message,) = only(d, "copy_code_variable")
    assert "'Promo Code'" in message


def test_authentication_templates_may_not_have_url_buttons():
    d = otp(buttons=[copy(), link("Open site")])
    (message,) = only(d, "auth_url_button")
    assert "Open site" in message


def test_duplicate_button():
    (message,) = only(draft(buttons=[quick("Yes"), quick("yes ")]), "duplicate_button")
    assert "yes" in message.casefold()


def test_a_button_that_clashes_with_the_stop_button_is_a_duplicate():
    d = draft(category="marketing", buttons=[link(STOP_PROMOTIONS)])
    found = problems(d)
    # A link that reads "Stop promotions" is also a business button passing for the app's.
    assert set(found) == {"duplicate_button", "platform_button"}
    assert STOP_PROMOTIONS in found["duplicate_button"][0]


# --- promotional language and reclassification ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Get 20% OFF today", ["20% OFF"]),
        ("Use this Coupon, another coupon", ["Coupon"]),
        ("Save 10 on shoes, save $5 more", ["Save 10", "save $5"]),
        ("Limited time: buy now!", ["Limited time", "buy now"]),
        ("Black Friday clearance sale", ["Black Friday", "clearance", "sale"]),
        ("Un grande sconto e offerte", ["sconto", "offerte"]),
        ("Gran descuento y oferta", ["descuento", "oferta"]),
        ("Rabatt! Unser Angebot", ["Rabatt", "Angebot"]),
        ("Réduction pendant les soldes", ["Réduction", "soldes"]),
        ("Re\u0301duction", ["R\u00e9duction"]),
        ("A free gift and a voucher", ["free gift", "voucher"]),
        ("Your order has shipped", []),
        ("wholesale salesman dealer promotional", ["promotional"]),
        ("Your {{discount_code}} order", []),
    ],
)
def test_promotional_terms(text, terms):
    assert promotional_terms(text) == terms


def test_a_marketing_draft_gets_the_stop_button_once():
    final, reason = finalize(
        draft(category="marketing", body="New arrivals", buttons=[quick("Shop")])
    )
    assert reason is None and final.category == "marketing"
    assert [(b.type, b.text) for b in final.buttons] == [
        ("quick_reply", "Shop"),
        ("quick_reply", STOP_PROMOTIONS),
    ]
    again, reason = finalize(final)
    assert again == final and reason is None


def test_finalize_does_not_modify_the_draft():
    d = draft(category="marketing")
    finalize(d)
    assert d.buttons == []


@pytest.mark.parametrize("body", ["Enjoy 20% off your next order", "Here is your coupon"])
def test_promotional_utility_is_reclassified(body):
    final, reason = finalize(draft(body=body))
    assert final.category == "marketing"
    assert final.buttons[-1].text == STOP_PROMOTIONS
    assert reason is not None and "marketing" in reason
    assert ("'20% off'" in reason) or ("'coupon'" in reason)


def test_the_reason_names_every_term_including_button_texts():
    d = draft(body="A discount for you", footer="Promo", buttons=[quick("Get coupon")])
    final, reason = finalize(d)
    assert final.category == "marketing"
    assert reason == (
        "utility templates may not promote; found 'discount', 'Promo', 'coupon': "
        "registered as marketing"
    )


def test_utility_with_a_copy_code_button_is_marketing():
    final, reason = finalize(draft(buttons=[copy()]))
    assert final.category == "marketing" and "copy-code" in (reason or "")


def test_plain_utility_stays_utility():
    d = draft(buttons=[link("Track")])
    final, reason = finalize(d)
    assert reason is None and final == d


def test_authentication_with_copy_code_stays_authentication():
    d = draft(category="authentication", body="Your code is {{code}}", examples={"code": "123"})
    d = d.model_copy(update={"buttons": [copy(example=None)]})
    final, reason = finalize(d)
    assert reason is None and final.category == "authentication"
    assert final.buttons == d.buttons and final.body == d.body


# --- hashing ----------------------------------------------------------------------------------


def test_hash_is_deterministic_hex():
    d = draft(buttons=[link("Track"), copy()], category="authentication")
    h = template_hash("acme", d)
    assert h == template_hash("acme", TemplateDraft.model_validate(d.model_dump()))
    assert len(h) == 64 and int(h, 16) >= 0 and h == h.lower()
    # Omitted and explicit default copy variable are the same template.
    explicit = d.model_copy(update={"buttons": [link("Track"), copy(variable="code")]})
    assert template_hash("acme", explicit) == h


def test_hash_covers_what_is_rendered():
    d = draft(buttons=[quick("Thanks")])
    h = template_hash("acme", d)
    changed = [
        draft(body="Your order has shipped!", buttons=[quick("Thanks")]),
        draft(category="marketing", buttons=[quick("Thanks")]),
        draft(buttons=[quick("Thank you")]),
        draft(buttons=[link("Thanks")]),
        draft(buttons=[]),
        draft(header="Hi", buttons=[quick("Thanks")]),
        draft(language="it", buttons=[quick("Thanks")]),
        draft(name="order_shipped", buttons=[quick("Thanks")]),
    ]
    hashes = {template_hash("acme", c) for c in changed} | {template_hash("other", d)}
    assert h not in hashes and len(hashes) == len(changed) + 1


def test_hash_ignores_examples():
    d = draft(body="Hi {{name}}", examples={"name": "Ada"}, category="authentication")
    other = d.model_copy(update={"examples": {"name": "Grace"}})
    assert template_hash("acme", d) == template_hash("acme", other)
    a = d.model_copy(update={"buttons": [copy(example="111")]})
    b = d.model_copy(update={"buttons": [copy(example="222")]})
    assert template_hash("acme", a) == template_hash("acme", b)


# --- rendering --------------------------------------------------------------------------------


def test_render_substitutes_everywhere():
    d = draft(
        category="authentication",
        header="Code for {{name}}",
        body="Hi {{name}}, your code is {{code}}.",
        footer="Sealpost",
        buttons=[copy(), link("Help", "https://example.com/help")],
    )
    assert variable_names(d) == ["name", "code"]
    out = render(d, {"name": "Ada", "code": "424242"})
    assert out.header == "Code for Ada"
    assert out.body == "Hi Ada, your code is 424242."
    assert out.footer == "Sealpost"
    assert out.buttons[0].copy_value == "424242" and out.buttons[0].url is None
    assert out.buttons[1].url == "https://example.com/help" and out.buttons[1].copy_value is None


def test_render_is_single_pass():
    d = draft(body="{{a}} and {{b}}")
    out = render(d, {"a": "{{b}}", "b": "{{a}}"})
    assert out.body == "{{b}} and {{a}}"


def test_render_is_strict():
    d = draft(body="Hi {{name}}", buttons=[copy()], category="authentication")
    with pytest.raises(TemplateRenderError, match="missing variables: 'code'"):
        render(d, {"name": "Ada"})
    with pytest.raises(TemplateRenderError, match="unexpected variables: 'extra'"):
        render(d, {"name": "Ada", "code": "1", "extra": "x"})
    with pytest.raises(ValueError):
        render(d, {})


def test_preview_with_examples():
    d = draft(
        category="authentication",
        body="Hi {{name}}",
        buttons=[copy(example="123456")],
        examples={"name": "Ada"},
    )
    out = render(d, example_variables(d))
    assert out.body == "Hi Ada" and out.buttons[0].copy_value == "123456"


NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,31}", fullmatch=True)
LITERALS = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)


@st.composite
def bodies(draw, values: st.SearchStrategy[str] | None = None):
    """A body of literal text and placeholders, its variables, and the expected rendering."""
    values = st.text(max_size=30) if values is None else values
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    order = draw(st.lists(st.sampled_from(names), min_size=1, max_size=8))
    names = list(dict.fromkeys(order))
    variables = {name: draw(values) for name in names}
    literals = [draw(LITERALS) for _ in range(len(order) + 1)]
    body = literals[0] + "".join(
        "{{" + name + "}}" + lit for name, lit in zip(order, literals[1:], strict=True)
    )
    expected = literals[0] + "".join(
        variables[name] + lit for name, lit in zip(order, literals[1:], strict=True)
    )
    return body, variables, expected


@settings(max_examples=200, deadline=None)
@given(bodies())
def test_render_fills_in_arbitrary_values_exactly(case):
    body, variables, expected = case
    d = draft(body=body)
    assert placeholders(body) == list(variables)
    rendered = render(d, variables).body
    assert rendered == expected
    for value in variables.values():
        assert value in rendered


@settings(max_examples=200, deadline=None)
@given(bodies(values=LITERALS))
def test_render_never_leaves_a_placeholder(case):
    body, variables, _ = case
    rendered = render(draft(body=body), variables).body
    for name, value in variables.items():
        assert value in rendered
        assert "{{" + name + "}}" not in rendered


def test_promotional_authentication_template_is_reclassified_but_otp_code_is_not():
    otp = TemplateDraft(
        name="otp",
        category="authentication",
        body="Your code is {{code}}.",
        buttons=[Button(type="copy_code", text="Copy code")],
        examples={"code": "123456"},
    )
    assert finalize(otp)[0].category == "authentication"
    promo = otp.model_copy(update={"body": "Your code is {{code}}. 50% off today only!"})
    final, reason = finalize(promo)
    assert final.category == "marketing"
    assert reason is not None and reason.startswith("authentication templates may not promote")


def test_footer_placeholders_are_checked_for_shape_too():
    draft = TemplateDraft(name="x", category="utility", body="Hello", footer="Bye {{ name }}")
    rules = {p.rule for p in validate_draft(draft)}
    assert "malformed_placeholder" in rules


# --- promotional language in disguise ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Big s\u0430le today",  # Cyrillic a
        "\u0405\u0410LE",  # Cyrillic capitals S and A
        "\u0455\u0430l\u0435 now",  # Cyrillic s, a, e
        "Get 20% \u041eFF",  # Cyrillic O
        "\u0399imited time",  # Greek capital iota for l
        "di\u200bscount inside",  # zero-width space
        "dis\u00adcount",  # soft hyphen
        "s\u200da\u200dl\u200de",  # zero-width joiners
        "pro\u2060mo",  # word joiner
        "\u202esale",  # bidi override
        "s\u0332a\u0332l\u0332e\u0332",  # combining underline on every letter
        "Half price on all boots",
        "half-price",
        "\u00bd price",
        "Use it for 2O% 0FF",
        "50% 0FF",
        "50 % off",
        "50 percent off",
        "-50% on everything",
        "up to 70%",
        "$10 off",
        "\u20ac10 off",
        "fr33 shipping",
        "FREE SHIPPING",
        "free delivery this week",
        "\uff33\uff21\uff2c\uff25",  # fullwidth
        "\U0001d42c\U0001d41a\U0001d425\U0001d41e",  # mathematical bold
        "\u24e2\u24d0\u24db\u24d4",  # circled
        "S A L E",
        "S.A.L.E",
        "d-i-s-c-o-u-n-t",
        "cIearance",  # capital I for l
        "$ALE",
        "SHOP-NOW",
        "shopnow",
        "Shop now",
        "buy one get one free",
        "BOGO",
        "2 for 1",
        "limited time",
        "LIMITED-TIME",
        "today only",
        "coupon",
        "promo code",
        "great deal",
        "exclusive offer",
        "save 10",
        "save up to 30%",
        "clearance",
        "Black Friday",
        "voucher",
        "new arrivals",
        "cashback",
        "sconto del 20%",
        "met\u00e0 prezzo",
        "spedizione gratuita",
        "descuento",
        "env\u00edo gratis",
        "2x1 ofertas",
        "Rabatt",
        "versandkostenfrei",
        "jetzt kaufen",
        "r\u00e9duction",
        "soldes",
        "livraison gratuite",
    ],
)
def test_disguised_promotions_are_caught(text):
    assert promotional_terms(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Your order A-1001 has shipped",
        "Your code is 4821",
        "Your code is 5413",  # reads as "sale" in digits: a number is not a word
        "Your appointment is at 10:00",
        "Your appointment is on 3 June at 10:30, room 4B",
        "Your parcel arrives tomorrow between 9 and 12.",
        "Invoice INV-2024-0042 of $42.10 is due on 2024-06-03",
        "Your savings account statement is ready",
        "Your flight leaves at 10:15 from gate 12",
        "Your password was reset. If this was not you, reply STOP.",
        "482193 is your verification code. This code expires in 10 minutes.",
        "Your table for 2 is booked",
        "The sales team will call you",
        "Il tuo ordine \u00e8 stato spedito",
        "Tu pedido ha sido enviado",
        "Ihr Termin ist am 3. Juni um 10:00",
        "Votre colis arrive demain",
        "Your {{discount_code}} order",
    ],
)
def test_ordinary_utility_texts_do_not_promote(text):
    assert promotional_terms(text) == []


def test_a_term_is_reported_as_written():
    assert promotional_terms("Big s\u0430le, another sale") == ["s\u0430le"]
    assert promotional_terms("Use it for 2O% 0FF") == ["2O% 0FF"]
    assert promotional_terms("di\u200bscount") == ["di\u200bscount"]


def test_registration_reclassifies_a_disguised_promotion():
    final, reason = finalize(draft(body="Your order has shipped. Big s\u0430le today!"))
    assert final.category == "marketing"
    assert reason is not None and "'s\u0430le'" in reason


def test_an_example_that_promotes_reclassifies():
    d = draft(body="Your order has shipped. {{note}}", examples={"note": "50% off shoes"})
    final, reason = finalize(d)
    assert final.category == "marketing" and "'50% off'" in (reason or "")


# --- typed variables --------------------------------------------------------------------------


def spec(type_: str, **bounds) -> VariableSpec:
    return VariableSpec(type=type_, **bounds)


@pytest.mark.parametrize(
    ("variable", "good", "bad"),
    [
        (
            spec("name"),
            ["Ana", "Zo\u00eb O'Neil", "Jean-Luc", "\u674e\u5c0f\u9f99", "Dr. Who"],
            ["50% OFF", "Ana2", "", " Ana", "Ana\u200b", "A" * 41],
        ),
        (
            spec("number"),
            ["2", "-3", "1,000", "1.000,50", "1 000", "+7"],
            ["one", "2x", "1..2", "50%", "12" * 20],
        ),
        (
            spec("currency"),
            ["\u20ac20", "$ 4.99", "20,00 \u20ac", "EUR 20", "20 GBP", "\u00a51000"],
            ["20", "FREE", "$$20", "\u20ac20 off", "eur 20", "20 EUR $"],
        ),
        (
            spec("date"),
            ["2025-06-03", "3 June 2025, 10:00", "10:00", "03/06/2025"],
            ["tomorrow", "today only!", "3 June \U0001f389", "10:00\n11:00"],
        ),
        (spec("code"), ["SPRING20", "K7Q2-X9", "123456"], ["50% OFF", "code 12", "x" * 33]),
        (
            spec("code", charset="digits", min_length=4, max_length=8),
            ["4821", "48219377"],
            ["482", "482193771", "48a1", "SALE"],
        ),
        (spec("code", charset="alphanumeric"), ["K7Q2"], ["K7Q2-X9"]),
        (
            spec("url"),
            ["https://a.example/x?y=1#z", "http://a.example"],
            ["javascript:alert(1)", "https://a.example/\u0430", "https://a b", "ftp://a.example"],
        ),
        (
            spec("text"),
            ["It arrives tomorrow.", "\u00c8 tutto pronto"],
            ["line\nbreak", "tab\there", "\u202eevil", "\u2028", "x" * 61, ""],
        ),
        (spec("text", max_length=200, min_length=3), ["abc", "x" * 200], ["ab", "x" * 201]),
    ],
)
def test_a_value_must_be_of_its_declared_type(variable, good, bad):
    for value in good:
        assert value_problem(variable, value) is None, value
    for value in bad:
        problem = value_problem(variable, value)
        assert problem is not None, value
        assert not value.strip() or value not in problem  # never quoted back


def test_finalize_types_every_variable():
    d = draft(
        category="marketing",
        body="Hi {{name}}, {{when}}",
        buttons=[copy()],
        variables={"when": VariableSpec(type="date")},
        examples={"name": "Ana", "when": "3 June"},
    )
    final, _ = finalize(d)
    assert final.variables == {
        "name": VariableSpec(type="text", min_length=1, max_length=60),
        "when": VariableSpec(type="date", min_length=1, max_length=40),
        "code": VariableSpec(type="code", min_length=1, max_length=32, charset="alphanumeric_dash"),
    }
    again, _ = finalize(final)
    assert again == final
    assert template_hash("acme", again) == template_hash("acme", final)


def test_types_are_in_the_hash_but_an_untyped_template_keeps_its_hash():
    d = draft(body="Hi {{name}}", examples={"name": "Ana"})
    typed = d.model_copy(update={"variables": {"name": VariableSpec(type="name")}})
    other = d.model_copy(update={"variables": {"name": VariableSpec(type="text")}})
    hashes = {template_hash("acme", x) for x in (d, typed, other)}
    assert len(hashes) == 3
    # Without variables or expiry, the hashed object is the one it was before they existed.
    before = {
        "business": "acme",
        "name": "order_update",
        "language": "en",
        "category": "utility",
        "header": None,
        "body": "Your order has shipped.",
        "footer": None,
        "buttons": [],
    }
    assert template_hash("acme", draft()) == hashlib.sha256(canonical_json(before)).hexdigest()


@pytest.mark.parametrize(
    ("variables", "rule", "words"),
    [
        ({"nope": VariableSpec(type="text")}, "unknown_variable", "'nope'"),
        ({"order": VariableSpec(type="text", max_length=500)}, "variable_type", "at most 200"),
        ({"order": VariableSpec(type="text", min_length=9, max_length=5)}, "variable_type", "min"),
        ({"order": VariableSpec(type="text", charset="digits")}, "variable_type", "charset"),
        ({"order": VariableSpec(type="number")}, "example_type", "a number"),
    ],
)
def test_declared_types_are_checked_at_registration(variables, rule, words):
    d = draft(body="Order {{order}} shipped", examples={"order": "A-1"}, variables=variables)
    (message,) = problems(d)[rule]
    assert words in message


def test_a_copied_variable_is_a_code():
    d = draft(
        category="marketing",
        body="Use {{code}}",
        buttons=[copy()],
        variables={"code": VariableSpec(type="text")},
        examples={"code": "X1"},
    )
    (message,) = only(d, "copy_code_variable")
    assert "a copied variable is a code" in message


def test_variable_problems_name_the_variable_never_the_value():
    d = otp()
    final, _ = finalize(d)
    (problem,) = variable_problems(final, {"code": "50% OFF shop now"})
    assert problem == "'code' must be a code of 4 to 8 characters (0-9), but it has 16 characters"
    assert variable_problems(final, {"code": "482193"}) == []


# --- authentication templates -----------------------------------------------------------------


def test_the_platform_writes_an_authentication_template():
    final, reason = finalize(otp(code_expiry_minutes=10, buttons=[copy(example=None)]))
    assert reason is None and final.category == "authentication"
    assert final.body == "{{code}} is your verification code. This code expires in 10 minutes."
    assert final.variables["code"] == AUTH_CODE_DEFAULT
    assert validate_draft(final) == []
    one = finalize(otp(code_expiry_minutes=1))[0]
    assert one.body.endswith("This code expires in 1 minute.")
    italian = finalize(otp(language="it"))[0]
    assert italian.body == "{{code}} \u00e8 il tuo codice di verifica."
    assert finalize(otp())[0].body == authentication_body("en", None)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"body": "Your code: {{code}}"}, "leave the body empty"),
        ({"body": "{{code}} is your verification code.", "header": "ACME"}, "no header"),
        ({"footer": "ACME"}, "no footer"),
        ({"buttons": [quick("Thanks")]}, "no quick replies"),
        ({"buttons": [copy("Grab it")]}, "reads 'Copy code'"),
        ({"language": "ja"}, "no text in 'ja'"),
        (
            {"body": "{{code}} is your verification code. {{name}}", "examples": {"code": "1234"}},
            "leave the body empty",
        ),
        ({"variables": {"code": VariableSpec(type="text")}}, "must be a code of 4 to 12"),
        (
            {"variables": {"code": VariableSpec(type="code", min_length=2, max_length=6)}},
            "must be a code of 4 to 12",
        ),
    ],
)
def test_any_other_authentication_template_is_refused(fields, words):
    found = problems(otp(**fields))
    assert words in " ".join(found.get("auth_shape", [])), found


def test_only_authentication_templates_have_an_expiry():
    (message,) = only(draft(code_expiry_minutes=5), "code_expiry")
    assert "only authentication templates" in message
    with pytest.raises(ValidationError):
        otp(code_expiry_minutes=91)


@pytest.mark.parametrize(
    "text,action",
    [
        ("Stop promoti\u043ens", "Stop promotions"),  # a Cyrillic o
        ("STOP  PROMOTIONS", "Stop promotions"),
        ("Opt-out", "Stop promotions"),
        ("Arrêter les promotions", "Stop promotions"),
        ("B1ock", "Block"),
        ("Bloquear", "Block"),
        ("Rep0rt", "Report"),
        ("Segnala", "Report"),
    ],
)
def test_a_button_that_reads_like_the_apps_own_control_is_refused(text, action):
    assert platform_action(text) == action
    draft = TemplateDraft(
        name="update",
        category="utility",
        body="Your order has shipped.",
        buttons=[Button(type="quick_reply", text=text)],
    )
    [problem] = [p for p in validate_draft(draft) if p.rule == "platform_button"]
    assert f"'{action}'" in problem.message


@pytest.mark.parametrize("text", ["Shop now", "Track order", "Reply", "Blocked?", "Reports"])
def test_ordinary_buttons_are_not_platform_controls(text):
    assert platform_action(text) is None


def test_the_platforms_own_stop_button_stays_allowed():
    final, _ = finalize(TemplateDraft(name="offer", category="marketing", body="20% off today."))
    assert not [p for p in validate_draft(final) if p.rule == "platform_button"]
