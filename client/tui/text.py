"""Making untrusted text safe to show, and small formatting helpers.

Everything another party wrote (message text, display names, button labels, urls) and
everything the relay says goes through :func:`safe` and is shown as plain
:class:`rich.text.Text`, never parsed as markup: in messages, toasts, titles, headers, lists,
the palette, the ledger and the CLI's output alike.
"""

import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text

from shared.display_names import ZWJ, zwj_joins_emoji

TimeFormat = Callable[[int], str]

# Made visible rather than drawn: controls (C0, C1: a terminal obeys them), format characters
# (bidi overrides and isolates, zero-width spaces, soft hyphen, tags: they reorder or hide
# text), line and paragraph separators (U+2028/9 break a line the app did not), and
# surrogates, private-use and unassigned code points (a font may draw anything for them).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

# The verified mark, drawn by the app as a reverse-video label: a display name can hold
# neither a check mark (shared/display_names.py) nor a style, so no name can draw it.
VERIFIED_STYLE = "bold reverse green"
LOOKALIKE_STYLE = "bold reverse yellow"


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe(text: str | None, *, keep_newlines: bool = True) -> str:
    """``text`` with control, format and separator characters made visible (``\\x9b``).

    The result holds only characters that draw as themselves, so escaping it again changes
    nothing. A zero-width joiner is kept only inside an emoji sequence, where it draws one
    emoji; anywhere else it is made visible like any other invisible character.
    """
    text = text or ""
    if text.isprintable():  # no separator, control or format character at all: the hot path
        return text
    out: list[str] = []
    for index, ch in enumerate(text):
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch == "\t":
            out.append("    ")
        elif unicodedata.category(ch) in _ESCAPED_CATEGORIES and not (
            ch == ZWJ and zwj_joins_emoji(text, index)
        ):
            out.append(_visible(ch))
        else:
            out.append(ch)
    return "".join(out)


def verified_badge(business: bool = False) -> Text:
    """The verified mark, as only the app can draw it."""
    label = " ✔ verified business " if business else " ✔ verified "
    return Text(label, VERIFIED_STYLE, end="")


def lookalike_note(warning: str) -> Text:
    """The warning beside a name that looks like a verified business's."""
    return Text(f" ⚠ {safe(warning, keep_newlines=False)} ", LOOKALIKE_STYLE, end="")


def plain(text: str | None, style: str = "") -> Text:
    """A Text that shows ``text`` literally (a '[' stays a '[')."""
    return Text(safe(text), style=style, end="")


def one_line(text: str | None, limit: int = 60) -> str:
    """A single-line preview of ``text`` of at most ``limit`` characters."""
    # Whitespace (newlines, tabs) becomes single spaces first; other controls are made visible.
    flat = " ".join(safe(" ".join((text or "").split()), keep_newlines=False).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def follow_cursor_blink(screen: Any) -> None:
    """Give every Input on ``screen`` the app's cursor-blink setting (off for snapshots)."""
    from textual.widgets import Input

    blink = getattr(screen.app, "cursor_blink", True)
    for widget in screen.query(Input):
        widget.cursor_blink = blink


def local_time(ms: int) -> str:
    """The default clock format: local time, with the date when it is not today."""
    when = datetime.fromtimestamp(ms / 1000)
    if when.date() == datetime.now().date():
        return when.strftime("%H:%M")
    return when.strftime("%Y-%m-%d %H:%M")
