"""Names that look like a verified business's: "ACME Shoes" written in Cyrillic capitals
(U+0410 U+0421 U+041C U+0415) beside the real "ACME Shoes".

The device compares every sender's name with the verified businesses the person already has
as contacts, by Unicode TR39 skeletons (UTS #39 section 4: two strings are confusable when
their skeletons are equal). The skeleton maps every character to its prototype in Unicode's
confusables data, as shipped by the maintained ``confusable-homoglyphs`` package, so Cyrillic
A (U+0410), Greek Alpha (U+0391) and fullwidth A (U+FF21) all become "A", and "m" becomes
"rn".

Beyond TR39, two things a person would not notice either count as the same: letter case and
runs of spaces. And a name that holds a verified business's whole name among other words
("ACME Shoes Support") is flagged too: that is the usual way to pass as a business's agent.
"""

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from shared.confusable_groups import confusable_groups

# Characters that draw as nothing; display names cannot hold them, but names stored by an
# older version or served by a lying relay might, and they must not defeat the comparison.
_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


@cache
def _prototypes() -> dict[str, str]:
    """Each confusable character's stand-in, built once from the package's data.

    The package stores TR39's confusables.txt as a symmetric map (a source lists its
    prototype, a prototype its sources), so the prototypes are lost but the groups are not:
    each connected group is one prototype with its sources. Every member maps to one stand-in
    for its group: the multi-character member if there is one (that is the prototype, "rn"
    for "m"), else the smallest code point. Skeletons built so are equal exactly when TR39's
    are, which is all a comparison needs.
    """
    mapping: dict[str, str] = {}
    for group in confusable_groups():
        longer = sorted(g for g in group if len(g) > 1)
        stand_in = longer[0] if longer else min(group)
        for member in group:
            if len(member) == 1:
                mapping[member] = stand_in
    return mapping


def skeleton(text: str) -> str:
    """The TR39 skeleton of ``text``: NFD, every character to its prototype, NFD again."""
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = "".join(prototypes.get(ch, ch) for ch in decomposed)
    return unicodedata.normalize("NFD", mapped)


@lru_cache(maxsize=4096)  # every chat-list refresh asks again for the same names
def comparable(name: str) -> tuple[str, str]:
    """``name`` reduced to what the eye sees, in two forms: its skeleton in lower case and in
    upper case (TR39 maps "O" with "0" but "o" apart, and "l" with "I": one case alone
    misses half the look-alikes). Invisible characters are dropped first and runs of spaces
    made one. Equal in either form means confusable."""
    visible = "".join(ch for ch in name if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    base = skeleton(visible)
    lower = skeleton(base.casefold())
    upper = skeleton(base.upper())
    return " ".join(lower.split()), " ".join(upper.split())


def confusable(a: str, b: str) -> bool:
    """Whether names ``a`` and ``b`` would look the same to a person."""
    return any(x == y for x, y in zip(comparable(a), comparable(b), strict=True))


@dataclass(frozen=True)
class Lookalike:
    """The verified business a name looks like."""

    handle: str
    name: str

    def warning(self) -> str:
        return f"looks like {self.name} (@{self.handle}) — not the same account"


class LookalikeIndex:
    """The person's verified business contacts, ready to compare names against."""

    # A verified name shorter than this is not looked for inside longer names: "Bo" would
    # flag half the address book.
    MIN_CONTAINED = 4

    def __init__(self, businesses: Iterable[tuple[str, str]]) -> None:
        """``businesses``: (handle, display name) of each verified business contact."""
        self._businesses = [(h, n, comparable(n)) for h, n in businesses if n.strip()]

    def __len__(self) -> int:
        return len(self._businesses)

    def match(self, handle: str, name: str) -> Lookalike | None:
        """The verified business that ``name`` (shown for ``handle``) could pass for, if any.

        A business never looks like itself: the handle is what tells accounts apart.
        """
        if not self._businesses:
            return None
        seen = comparable(name)
        for other, other_name, keys in self._businesses:
            if other == handle:
                continue
            for mine, theirs in zip(seen, keys, strict=True):
                contained = len(theirs) >= self.MIN_CONTAINED and f" {theirs} " in f" {mine} "
                if mine == theirs or contained:
                    return Lookalike(other, other_name)
        return None
