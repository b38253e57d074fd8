"""Printing for the CLI: JSON for machines, safe text for people, errors that say what to do."""

import json
import sys
import unicodedata
from typing import Any


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def terminal_safe(text: str) -> str:
    """Text from other people with control characters (escape sequences) made visible."""
    return "".join(
        ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else f"\\x{ord(ch):02x}"
        for ch in text
    )
