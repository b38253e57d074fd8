"""Printing for the CLI: JSON for machines, safe text for people, errors that say what to do."""

import json
import sys
from typing import Any


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def terminal_safe(text: str | None) -> str:
    """Text from other people (or the relay) with every control, format, bidi and separator
    character made visible: the app's one escaping function, so the CLI shows what it does."""
    from client.tui.text import safe  # the TUI's module, imported only when printing

    return safe(text)
