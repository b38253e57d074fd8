"""What a display name may hold: the relay refuses the rest at registration, and the client
re-checks every name the directory hands it (a relay is not trusted to have done so).

A display name is drawn next to the app's own marks (the verified badge, warnings) in places
where the person decides whom to trust, so it must not be able to imitate them or change how
the screen around it is drawn. Refused:

- control characters (C0 and C1, e.g. ESC or CSI U+009B, which a terminal obeys);
- format characters (bidi overrides and isolates, zero-width spaces and joiners, soft hyphen):
  they reorder or hide text, so "ACME" can be made to read as something else. The zero-width
  joiner is allowed only between two emoji, where it builds one emoji (a family, a profession);
- line and paragraph separators (U+2028, U+2029): a name must stay on one line;
- private-use, surrogate and unassigned code points (a font may draw anything for them);
- blank letters that render as nothing (Hangul fillers, the braille blank);
- the check-mark family (✓ ✔ ☑ ✅ 🗸 ...) and the cross marks: the app draws these itself;
- leading or trailing whitespace, and more than three combining marks on one letter.

The name is normalised to NFC first and must then be 1 to 64 characters.
"""

import unicodedata
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

MAX_LENGTH = 64
MAX_COMBINING = 3  # enough for any language's letters; more only stacks marks over other lines
ZWJ = "\u200d"

# Look-alikes of the app's verified mark and of its own check/cross marks. Listed one by one
# (not found by name at run time) so the set is the same whatever Unicode version runs.
CHECK_MARKS = frozenset(
    chr(cp)
    for cp in (
        0x0606, 0x0607, 0x221A, 0x221B, 0x221C,  # root signs: drawn as a check
        0x237B, 0x2447,  # NOT CHECK MARK, OCR AMOUNT OF CHECK
        0x2610, 0x2611, 0x2612, 0x2BBD,  # ballot boxes
        0x2705, 0x2713, 0x2714,  # ✅ ✓ ✔
        0x2716, 0x2717, 0x2718, 0x274C, 0x274E,  # ✖ ✗ ✘ ❌ ❎
        0x10102,  # AEGEAN CHECK MARK
        0x1D93F, 0x1D940, 0x1D941, 0x1D977,  # SignWriting checks
        0x1F5F3, 0x1F5F4, 0x1F5F5, 0x1F5F6, 0x1F5F7, 0x1F5F8, 0x1F5F9,  # 🗳 .. 🗹
        0x1FBB1,  # INVERSE CHECK MARK
    )
)  # fmt: skip

# Letters and symbols that draw as blank space, so a name could look empty or padded.
BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f")

_REFUSED_CATEGORIES = {
    "Cc": "is a control character, which a terminal may obey",
    "Cf": "is an invisible format character that can hide or reorder text",
    "Zl": "is a line separator; a name must stay on one line",
    "Zp": "is a paragraph separator; a name must stay on one line",
    "Co": "is a private-use character, which a font may draw as anything",
    "Cs": "is a lone surrogate, not a character",
    "Cn": "is not an assigned Unicode character",
}


def _is_emoji(ch: str) -> bool:
    # Emoji are "other symbols" (So); skin-tone modifiers are Sk.
    return unicodedata.category(ch) in ("So", "Sk")


def zwj_joins_emoji(text: str, index: int) -> bool:
    """Whether the ZWJ at ``text[index]`` sits between two emoji (VS16 may follow the first)."""
    before = text[index - 1] if index > 0 else ""
    if before == "\ufe0f" and index > 1:
        before = text[index - 2]
    after = text[index + 1] if index + 1 < len(text) else ""
    return bool(before and after) and _is_emoji(before) and _is_emoji(after)


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')})"


def display_name_problem(name: str) -> str | None:
    """Why ``name`` (as given, before NFC) cannot be a display name, or None when it can."""
    # Far too long whatever NFC composes (at most a few code points become one): answered
    # before normalising, so a megabyte of text costs nothing and never enters the cache.
    if len(name) > 8 * MAX_LENGTH:
        return (
            f"A display name has at most {MAX_LENGTH} characters, this one has {len(name)}: "
            "shorten it."
        )
    return _problem(name)


@lru_cache(maxsize=4096)  # the client checks every name it draws, and names repeat
def _problem(name: str) -> str | None:
    name = unicodedata.normalize("NFC", name)
    if not name:
        return "A display name cannot be empty; choose one of 1 to 64 characters."
    if len(name) > MAX_LENGTH:
        return (
            f"A display name has at most {MAX_LENGTH} characters, this one has {len(name)}: "
            "shorten it."
        )
    combining = 0
    for index, ch in enumerate(name):
        category = unicodedata.category(ch)
        where = f"{_describe(ch)} at position {index + 1}"
        if ch == ZWJ and zwj_joins_emoji(name, index):
            continue
        if category in _REFUSED_CATEGORIES:
            return f"{where} {_REFUSED_CATEGORIES[category]}; remove it from the display name."
        if ch in CHECK_MARKS:
            return (
                f"{where} looks like the app's verified mark, which only the app draws; "
                "remove it from the display name."
            )
        if ch in BLANKS:
            return f"{where} draws as blank space; remove it from the display name."
        if ch.isspace() and ch != " ":
            return (
                f"{where} is an unusual space; use an ordinary space (U+0020) in the "
                "display name instead."
            )
        combining = combining + 1 if category in ("Mn", "Me") else 0
        if combining > MAX_COMBINING:
            return (
                f"{where} is one of more than {MAX_COMBINING} combining marks in a row, which "
                "draw over the lines around the display name; remove the extra marks."
            )
    if name != name.strip():
        return "A display name cannot begin or end with a space; remove it."
    return None


def check_display_name(name: str) -> str:
    """``name`` in NFC, or ValueError saying which character is refused and what to do."""
    problem = display_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return unicodedata.normalize("NFC", name)


def name_or_handle(name: str | None, handle: str) -> str:
    """The name to show for ``handle``: its display name, or the handle when the name breaks
    the rules (it came from a relay that did not check, or from an older version)."""
    if name is None or display_name_problem(name) is not None:
        return handle
    return unicodedata.normalize("NFC", name)


DisplayName = Annotated[str, AfterValidator(check_display_name)]
