"""Making untrusted text safe to show, and small formatting helpers.

Everything another party wrote (message text, display names, button labels, urls) goes through
:func:`safe` and is shown as plain :class:`rich.text.Text`, never parsed as markup.
"""

import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text

TimeFormat = Callable[[int], str]

# Zero-width joiner holds emoji sequences together; harmless on its own.
_ALLOWED_FORMAT_CHARS = {"\u200d"}


def safe(text: str | None, *, keep_newlines: bool = True) -> str:
    """``text`` with control and format characters (escapes, bidi overrides) made visible."""
    out: list[str] = []
    for ch in text or "":
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch == "\t":
            out.append("    ")
        elif unicodedata.category(ch)[0] == "C" and ch not in _ALLOWED_FORMAT_CHARS:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


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
