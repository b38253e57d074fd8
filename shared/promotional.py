"""Promotional language, found however it is written.

The relay reclassifies a template whose own text promotes, and the device treats a
non-marketing copy whose *rendered* text promotes as marketing (client/local_choices.py). Both
use :func:`promotional_terms`. A sender who wants past it writes "\u0455\u0430le" in
Cyrillic, "s\u200bale" with a zero-width space, "sale" in mathematical bold letters, "S A L E",
"0FF" with a zero, "fr33", "cIearance" with a capital I; so the text is first reduced to a
lowercase ASCII skeleton, and the patterns are matched on that:

1. NFC, then per character: format characters (zero-width spaces and joiners, bidi controls,
   the soft hyphen, ...) and invisible fillers are removed; control characters, line and
   paragraph separators and every kind of space become one space;
2. case folding, then NFKD (fullwidth, mathematical, circled and superscript letters become
   plain ones, "\u00bd" becomes "1\u20442") with combining marks dropped (accents, and marks
   stacked on letters to break words up);
3. a character that is still not ASCII becomes the ASCII letter, digit or sign it is
   confusable with in Unicode's TR39 confusables data (from the maintained
   ``confusable-homoglyphs`` package): Cyrillic "\u0430" and Greek "\u03bf" are "a" and "o".

Then the patterns are matched on the skeleton as it is (so "save 10" and "20% off" keep their
numbers), and on a second reading of it: single characters spaced out ("s a l e", "S.A.L.E")
joined up; digits and signs read as letters inside words that hold a letter ("0ff", "fr33",
"$ale"), and as digits inside numbers that hold a look-alike letter ("2O%"); "i" and "l" read
as one letter, in the text and the patterns alike. A match made only of digits ("5 4 1 3" would
read as "sale") never counts. Words of a phrase may be run together or joined by a hyphen, dot
or underscore ("shop-now", "SHOPNOW").
"""

import re
import unicodedata
from functools import cache, lru_cache
from typing import NamedTuple

from shared.confusable_groups import confusable_groups

# Letters and symbols that draw as nothing (shared/display_names.py refuses them in names).
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f")
_SPACE_CATEGORIES = ("Cc", "Zs", "Zl", "Zp")
_DROPPED_CATEGORIES = ("Cf", "Mn", "Me", "Co", "Cs", "Cn")

# Digits and signs that stand for letters inside a word ("0ff", "fr33", "$ale", "|imited").
_AS_LETTER = str.maketrans("0134578$@|!+€", "oleastbsalite")
# Letters that stand for digits inside a number ("2O%", "1OO", "l0").
_AS_DIGIT = str.maketrans("oilsz", "01152")
# A word with a letter next to a digit or sign: only these read differently ("sale" and "2025"
# read as themselves).
_WORD_RE = re.compile(r"[a-z0-9$@|!+€]*(?:[0-9$@|!+€][a-z]|[a-z][0-9$@|!+€])[a-z0-9$@|!+€]*")
# Three or more single characters, each separated by one or two of the same kind of
# separator: "s a l e", "S.A.L.E", "d-i-s-c-o-u-n-t".
_SPACED_RE = re.compile(
    r"(?<![a-z0-9])[a-z0-9](?:(?P<sep>[ .\-_*·•/,:;~+]{1,2})[a-z0-9])"
    r"(?:(?P=sep)[a-z0-9]){1,}(?![a-z0-9])"
)
_ONLY_NUMBER_RE = re.compile(r"[\d\s.,:/'-]*")

# The patterns, on the skeleton: lowercase ASCII, accents gone, so "réduction" is "reduction".
_NUMBER = r"\d+(?:[.,]\d+)?"
_MONEY = r"(?:[$€£¥]\s?" + _NUMBER + r"|" + _NUMBER + r"\s?(?:[$€£¥]|dollars?|euros?|pounds?))"
PROMOTIONAL_PATTERNS: dict[str, tuple[str, ...]] = {
    "English": (
        # money off
        r"(?:" + _NUMBER + r"\s?)?(?:%|percent|per\s?cent)\s?off",
        _MONEY + r"\s?off",
        r"-\s?" + _NUMBER + r"\s?%",
        r"up\s+to\s+" + _NUMBER + r"\s?%",
        r"save\s+(?:up\s+to\s+)?(?:[$€£¥]\s?)?" + _NUMBER + r"\s?%?",
        r"save\s+big",
        r"big\s+savings?",
        r"half\s+(?:price|off)",
        r"1\s?/\s?2\s*(?:price|off)",
        r"price\s+(?:drops?|cuts?)",
        r"(?:lowest|best|special|sale)\s+prices?",
        r"off\s+(?:everything|sitewide|storewide)",
        r"cash\s?back",
        # offers
        r"(?:two|2)\s+for\s+(?:one|1)",
        r"buy\s+(?:one|1)\s*,?\s*get\s+(?:one|1)(?:\s+(?:free|half\s+price))?",
        r"bogof?",
        r"b1g1",
        r"free\s+(?:gifts?|shipping|delivery|returns|trial|samples?)",
        r"gifts?\s+with\s+(?:every\s+)?purchase",
        r"(?:special|exclusive)\s+(?:offers?|deals?|discounts?)",
        r"limited\s+(?:time|offer|edition|stock)",
        r"while\s+(?:stocks?|supplies)\s+lasts?",
        r"today\s+only",
        r"(?:buy|shop|order)\s+now",
        r"shop\s+(?:the\s+)?(?:sale|collection)",
        r"new\s+arrivals",
        r"black\s+friday",
        r"cyber\s+monday",
        r"clearance",
        r"discounts?",
        r"discounted",
        r"coupons?",
        r"promos?",
        r"promo\s?codes?",
        r"promotions?",
        r"promotional",
        r"offers?",
        r"sale",
        r"deals?",
        r"vouchers?",
        r"bargains?",
    ),
    "Italian": (
        r"scont[oi]",
        r"scontat[oaie]",
        r"offert[ae]",
        r"saldi",
        r"promozion[ei]",
        r"meta\s+prezzo",
        r"prezz[oi]\s+special[ei]",
        r"spedizione\s+gratuita",
        r"(?:compra|acquista)\s+ora",
        r"(?:2|due)\s+per\s+(?:1|uno)",
    ),
    "Spanish": (
        r"descuentos?",
        r"ofertas?",
        r"rebajas",
        r"promocion(?:es)?",
        r"cupon(?:es)?",
        r"liquidacion",
        r"mitad\s+de\s+precio",
        r"envio\s+gratis",
        r"compra\s+ya",
        r"(?:2|dos)\s+por\s+(?:1|uno)",
    ),
    "German": (
        r"rabatte?",
        r"angebote?",
        r"sonderangebote?",
        r"gutscheine?",
        r"ausverkauf",
        r"schlussverkauf",
        r"reduziert",
        r"halber\s+preis",
        r"versandkostenfrei",
        r"jetzt\s+kaufen",
    ),
    "French": (
        r"reductions?",
        r"soldes",
        r"offres?",
        r"moitie\s+prix",
        r"prix\s+casses",
        r"livraison\s+gratuite",
        r"achetez\s+maintenant",
    ),
}
# Words of a phrase may be run together or joined by a hyphen, dot or underscore: "shop-now",
# "SHOPNOW", "free_shipping" are how a phrase gets into a code or a link.
_JOIN = r"[\s_.\-]*"
# (?<!\w)/(?!\w) rather than \b: some terms start or end with "%", "$" or "€", which \b misses.
_SOURCE = (
    r"(?<!\w)(?:"
    + "|".join(p for patterns in PROMOTIONAL_PATTERNS.values() for p in patterns).replace(
        r"\s+", _JOIN
    )
    + r")(?!\w)"
)
_PROMOTIONAL_RE = re.compile(_SOURCE)
# "I" for "l" and "l" for "i" ("cIearance", "Iimited") cannot be told apart once case is
# folded, so one form of the text is matched with both read as "l", in the text and in the
# patterns alike (no escape or flag of the patterns has an "i" in it).
_PROMOTIONAL_IL_RE = re.compile(_SOURCE.replace("i", "l"))
_AS_L = str.maketrans("i", "l")


@cache
def _ascii_lookalikes() -> dict[str, str]:
    """Each non-ASCII character that TR39 lists as confusable with an ASCII one, mapped to it.

    The package keeps TR39's confusables as a symmetric map, so each connected group is one
    prototype with its look-alikes. A group's ASCII stand-in is, in order of preference: a
    lowercase letter, an uppercase letter (lowercased), a digit, another ASCII character, an
    ASCII string ("rn"). Groups with no ASCII member are left out.
    """
    mapping: dict[str, str] = {}
    for group in confusable_groups():
        ascii_members = [m for m in group if m.isascii() and m.isprintable() and m.strip()]
        if not ascii_members:
            continue
        stand_in = min(
            ascii_members,
            key=lambda m: (
                len(m) > 1,
                not (m.isalpha() and m.islower()),
                not m.isalpha(),
                not m.isdigit(),
                m,
            ),
        ).lower()
        for member in group:
            if len(member) == 1 and not member.isascii():
                mapping[member] = stand_in
    return mapping


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    """What one (NFC) character is in the skeleton: "", " ", or lowercase ASCII (or, for a
    character with no ASCII look-alike, itself, folded)."""
    category = unicodedata.category(ch)
    if ch in _INVISIBLE or category == "Cf":
        return ""
    if category in _SPACE_CATEGORIES:
        return " "
    lookalikes = _ascii_lookalikes()
    out = []
    for part in unicodedata.normalize("NFKD", ch.casefold()):
        if unicodedata.category(part) in _DROPPED_CATEGORIES or part in _INVISIBLE:
            continue
        if not part.isascii():
            part = lookalikes.get(part, part)
        out.append(part.lower())
    return "".join(out)


class _Form(NamedTuple):
    text: str
    origin: list[int]  # for each character of text, the index it came from in the NFC text


# ASCII controls fold to a space, as in _fold_char; every other ASCII character to its lowercase.
_ASCII_FOLD = {c: " " for c in [*range(0x20), 0x7F]}


def _skeleton(nfc: str) -> _Form:
    if nfc.isascii():  # most texts: one character each, so the origin is the identity
        return _Form(nfc.lower().translate(_ASCII_FOLD), list(range(len(nfc))))
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(nfc):
        if ch.isascii() and ch.isprintable():  # the common case, and already its own fold
            chars.append(ch.lower())
            origin.append(i)
            continue
        for part in _fold_char(ch):
            chars.append(part)
            origin.append(i)
    return _Form("".join(chars), origin)


def _read_as(word: str) -> str:
    """A word with look-alike digits or letters, read as letters or as a number."""
    if not any("a" <= c <= "z" for c in word):
        return word  # a number, or signs: "5413" is not "sale"
    if any(c.isdigit() for c in word):
        as_number = word.translate(_AS_DIGIT)
        if as_number.isdigit():
            return as_number  # "2o" is 20, "1oo" is 100
    return word.translate(_AS_LETTER)


def _leet(form: _Form) -> _Form:
    text = _WORD_RE.sub(lambda m: _read_as(m.group()), form.text)
    return _Form(text, form.origin)  # every replacement keeps the length


def _joined(form: _Form) -> _Form | None:
    """``form`` with spaced-out single characters joined up, or None if it has none."""
    if not _SPACED_RE.search(form.text):
        return None
    chars: list[str] = []
    origin: list[int] = []
    pos = 0
    for match in _SPACED_RE.finditer(form.text):
        chars.extend(form.text[pos : match.start()])
        origin.extend(form.origin[pos : match.start()])
        sep = match.group("sep")
        for i in range(match.start(), match.end()):
            if form.text[i] not in sep:
                chars.append(form.text[i])
                origin.append(form.origin[i])
        pos = match.end()
    chars.extend(form.text[pos:])
    origin.extend(form.origin[pos:])
    return _Form("".join(chars), origin)


def skeleton(text: str) -> str:
    """``text`` as the patterns see it first: NFC, invisible characters gone, case folded,
    compatibility forms and accents gone, confusable characters as their ASCII look-alikes."""
    return _skeleton(unicodedata.normalize("NFC", text)).text


def _key(written: str) -> str:
    """What two matches share when they are the same term: "Coupon" and "coupon", "0FF" and
    "off"."""
    form = _leet(_skeleton(written))
    return " ".join(form.text.translate(_AS_L).split())


def promotional_terms(text: str) -> list[str]:
    """Promotional words and phrases in ``text`` (English, Italian, Spanish, German, French),
    found on its skeleton (see the module's docstring); distinct, as written (in NFC), in the
    order they appear."""
    nfc = unicodedata.normalize("NFC", text)
    plain = _skeleton(nfc)
    joined = _joined(plain)
    forms = [(_PROMOTIONAL_RE, plain)]
    for form in (plain, joined) if joined is not None else (plain,):
        leet = _leet(form)
        forms.append((_PROMOTIONAL_IL_RE, _Form(leet.text.translate(_AS_L), leet.origin)))
    found: dict[str, tuple[int, str]] = {}
    for pattern, form in forms:
        for match in pattern.finditer(form.text):
            start = form.origin[match.start()]
            end = form.origin[match.end() - 1] + 1
            while end < len(nfc) and not _fold_char(nfc[end]):
                end += 1  # a mark or an invisible character on the last letter goes with it
            written = nfc[start:end]
            if _ONLY_NUMBER_RE.fullmatch(written):
                continue  # "5 4 1 3" joins up as "sale": a number is not a word
            key = _key(written)
            if key not in found or start < found[key][0]:
                found[key] = (start, written)
    return [written for _, written in sorted(found.values())]
