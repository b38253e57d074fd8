"""Template rules shared by relay and client: validation, reclassification, hashing, rendering."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.templates import (
    MAX_BUTTONS,
    MAX_TEMPLATES_PER_BUSINESS,
    PLACEHOLDER_RE,
    STOP_PROMOTIONS,
    Button,
    TemplateDraft,
    TemplateRenderError,
    example_variables,
    finalize,
    find_malformed,
    placeholders,
    promotional_terms,
    render,
    template_hash,
    validate_draft,
    variable_names,
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
    d = draft(category="authentication", buttons=[copy("Copy"), copy("Copy again")])
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
    (message,) = only(
        draft(category="authentication", buttons=[copy(example=None)]), "missing_example"
    )
    assert "Copy code" in message
    covered = draft(
        category="authentication",
        body="Your code is {{code}}",
        buttons=[copy(example=None)],
        examples={"code": "123456"},
    )
    assert validate_draft(covered) == []


def test_unused_example():
    (message,) = only(draft(examples={"name": "Ada"}), "unused_example")
    assert "'name'" in message


def test_copy_code_variable_must_be_a_placeholder_name():
    d = draft(category="authentication", buttons=[copy(variable="Promo Code")])
    (message,) = only(d, "copy_code_variable")
    assert "'Promo Code'" in message


def test_authentication_templates_may_not_have_url_buttons():
    d = draft(category="authentication", buttons=[copy(), link("Open site")])
    (message,) = only(d, "auth_url_button")
    assert "Open site" in message


def test_duplicate_button():
    (message,) = only(draft(buttons=[quick("Yes"), quick("yes ")]), "duplicate_button")
    assert "yes" in message.casefold()


def test_a_button_that_clashes_with_the_stop_button_is_a_duplicate():
    d = draft(category="marketing", buttons=[link(STOP_PROMOTIONS)])
    (message,) = only(d, "duplicate_button")
    assert STOP_PROMOTIONS in message


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
    assert reason is None and final == d and final.category == "authentication"


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
