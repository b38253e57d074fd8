"""Look-alike names (client/lookalikes.py): TR39 skeletons from the maintained package's data,
and the index of verified businesses a sender's name is compared with.

Non-Latin look-alikes are written as escapes so the source says which script each letter is.
"""

import pytest

from client.lookalikes import Lookalike, LookalikeIndex, confusable, skeleton

CYRILLIC_ACME = "\u0410\u0421\u041c\u0415 Shoes"  # every capital is Cyrillic
GREEK_ACME = "\u0391CME Shoes"  # Greek capital alpha
FULLWIDTH_ACME = "\uff21\uff23\uff2d\uff25 Shoes"
MATH_BOLD_ACME = "\U0001d400\U0001d402\U0001d40c\U0001d404 Shoes"
CYRILLIC_SHHA = "ACME S\u04bboes"  # Cyrillic small shha for h


def test_skeletons_follow_tr39() -> None:
    assert skeleton(CYRILLIC_ACME) == skeleton("ACME Shoes")
    assert skeleton("m") == "rn"  # a multi-character prototype
    assert skeleton("rn") == "rn"
    assert skeleton("\u0430") == skeleton("a")  # Cyrillic a
    assert skeleton("ACME") != skeleton("ARME")


@pytest.mark.parametrize(
    "lookalike",
    [
        "ACME Shoes",
        CYRILLIC_ACME,
        GREEK_ACME,
        FULLWIDTH_ACME,
        MATH_BOLD_ACME,
        CYRILLIC_SHHA,
        "ACME Sh0es",  # digit zero
        "acme shoes",
        "ACME  Shoes",
        "ACRNE Shoes",  # r n for M, once folded
        "AC\u200bME Shoes",  # a zero-width space (refused in names, but stored ones exist)
    ],
)
def test_look_alikes_of_a_business_name(lookalike: str) -> None:
    assert confusable(lookalike, "ACME Shoes")
    assert confusable("ACME Shoes", lookalike)  # symmetric


@pytest.mark.parametrize("other", ["ARME Shoes", "ACME Shops", "Bob", "Anna", "ACME"])
def test_different_names_are_not_look_alikes(other: str) -> None:
    assert not confusable(other, "ACME Shoes")


def test_the_index_flags_another_account_never_the_business_itself() -> None:
    index = LookalikeIndex([("acme", "ACME Shoes"), ("bank", "First Bank")])
    acme = Lookalike("acme", "ACME Shoes")
    assert index.match("acme", "ACME Shoes") is None
    assert index.match("mallory", CYRILLIC_ACME) == acme
    assert index.match("trudy", "ACME Shoes") == acme
    assert index.match("eve", "F\u0456rst Bank") == Lookalike("bank", "First Bank")  # Ukrainian i
    assert index.match("bob", "Bob") is None
    assert acme.warning() == "looks like ACME Shoes (@acme) — not the same account"


def test_a_business_name_among_other_words_is_flagged() -> None:
    index = LookalikeIndex([("acme", "ACME Shoes"), ("bo", "Bo")])
    assert index.match("x", "ACME Shoes Support") == Lookalike("acme", "ACME Shoes")
    assert index.match("y", f"Official {CYRILLIC_ACME}") == Lookalike("acme", "ACME Shoes")
    # Only whole words, and not a very short name inside a longer one.
    assert index.match("z", "ACME Shoesmith") is None
    assert index.match("w", "Bo Diddley") is None
    assert index.match("v", "Bo") == Lookalike("bo", "Bo")


def test_an_empty_index_matches_nothing() -> None:
    index = LookalikeIndex([])
    assert len(index) == 0
    assert index.match("mallory", CYRILLIC_ACME) is None
