"""The display-name rules (shared/display_names.py): what is refused, what the error says, and
how the client falls back to the handle for a name the relay should have refused."""

import pytest
from pydantic import BaseModel, ValidationError

from shared.api import RegisterAccount
from shared.display_names import (
    CHECK_MARKS,
    DisplayName,
    check_display_name,
    display_name_problem,
    name_or_handle,
)
from shared.keys import AccountKeys

REFUSED = [
    # (name, what the message must name)
    ("ACME Shoes ✔", "U+2714"),
    ("ACME Shoes ✓", "U+2713"),
    ("ACME Shoes ☑", "U+2611"),
    ("ACME Shoes ✅", "U+2705"),
    ("ACME Shoes 🗸", "U+1F5F8"),
    ("ACME Shoes 🗹", "U+1F5F9"),
    ("ACME Shoes ✗", "U+2717"),  # the app's own "failed" mark
    ("ACME √", "U+221A"),
    ("ACME\x00", "U+0000"),
    ("ACME\x1b[2J", "U+001B"),
    ("ACME\x7f", "U+007F"),
    ("ACME\x85", "U+0085"),  # C1 next line
    ("ACME\x9b31m", "U+009B"),  # C1 CSI
    ("ACME\u202e", "U+202E"),
    ("ACME\u202a", "U+202A"),
    ("ACME\u2066x\u2069", "U+2066"),
    ("ACME\u200bShoes", "U+200B"),
    ("ACME\u200cShoes", "U+200C"),
    ("ACME\u200dShoes", "U+200D"),  # a joiner between letters joins nothing
    ("ACME\u00adShoes", "U+00AD"),  # soft hyphen
    ("\ufeffACME", "U+FEFF"),
    ("ACME\u2028Shoes", "U+2028"),
    ("ACME\u2029Shoes", "U+2029"),
    ("ACME\ue000", "U+E000"),  # private use
    ("ACME\U000e0041", "U+E0041"),  # a tag character
    ("ACME\u3164", "U+3164"),  # Hangul filler
    ("\u2800", "U+2800"),  # braille blank
    ("ACME\u00a0Shoes", "U+00A0"),  # no-break space
    ("ACME\u3000Shoes", "U+3000"),
    ("a\u0301\u0302\u0303\u0304\u0305", "U+0305"),  # a fourth mark on the composed á
    (" ACME", "begin or end with a space"),
    ("ACME\t", "U+0009"),
    ("ACME ", "begin or end with a space"),
    ("", "cannot be empty"),
    ("x" * 65, "at most 64"),
    ("x" * 100_000, "at most 64"),
]


@pytest.mark.parametrize(("name", "named"), REFUSED)
def test_refused_names_say_which_character_and_what_to_do(name: str, named: str) -> None:
    problem = display_name_problem(name)
    assert problem is not None and named in problem, problem
    if named.startswith("U+"):
        assert "remove" in problem or "use an ordinary space" in problem
    with pytest.raises(ValueError, match="display name"):
        check_display_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "ACME Shoes",
        "a",
        "x" * 64,
        "Zoë O'Brien-Smith",
        "Ωμέγα Ltd",
        "\u0418\u0432\u0430\u043d\u043e\u0432\u0430 & Co.",  # Cyrillic Ivanova
        "山田商店",
        "مخبز الحي",  # right-to-left text itself is fine: only the overrides are refused
        "Café ☕",
        "👍🏽 thumbs",  # a skin-tone modifier
        "👨\u200d👩\u200d👧 Family",  # ZWJ between emoji
        "❤\ufe0f\u200d🔥 hot",  # ZWJ after an emoji and its VS16
        "ệ",
    ],
)
def test_ordinary_names_are_accepted(name: str) -> None:
    assert display_name_problem(name) is None
    assert check_display_name(name) == name


def test_nfc_first_then_the_length() -> None:
    decomposed = "e\u0301" * 64  # 128 code points, 64 characters once composed
    assert check_display_name(decomposed) == "é" * 64
    assert display_name_problem("e\u0301" * 65) is not None


def test_every_check_mark_is_refused() -> None:
    for mark in CHECK_MARKS:
        problem = display_name_problem(f"ACME {mark}")
        assert problem and f"U+{ord(mark):04X}" in problem and "verified mark" in problem


def test_the_pydantic_validator_refuses_and_normalises() -> None:
    class Named(BaseModel):
        name: DisplayName

    assert Named(name="Zoe\u0308").name == "Zoë"
    with pytest.raises(ValidationError, match="U\\+202E"):
        Named(name="ACME\u202e")


def test_registration_refuses_before_anything_is_sent() -> None:
    keys = AccountKeys.generate()
    with pytest.raises(ValidationError, match="U\\+2714"):
        RegisterAccount(
            handle="mallory",
            kind="business",
            display_name="ACME Shoes ✔",
            sign_key=keys.public.sign_b64,
            box_key=keys.public.box_b64,
        )


def test_a_name_that_breaks_the_rules_is_shown_as_the_handle() -> None:
    assert name_or_handle("ACME Shoes", "acme") == "ACME Shoes"
    assert name_or_handle("Zoe\u0308", "zoe") == "Zoë"
    assert name_or_handle("ACME Shoes ✔", "mallory") == "mallory"
    assert name_or_handle("ACME\x9b\u202e", "trudy") == "trudy"
    assert name_or_handle("", "empty") == "empty"
    assert name_or_handle(None, "nobody") == "nobody"
