"""Printing for the CLI: JSON for machines, safe text for people, errors that say what to do."""

import json
import sys
from typing import Any


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# Exit statuses, the same for every command (README, `sealpost --help`).
EXIT_FAILED = 1  # the relay refused it, or something named does not exist
EXIT_BAD_INPUT = 2  # a value on the command line of the wrong shape (as argparse's own)
EXIT_UNREACHABLE = 3  # the relay cannot be reached: nothing is lost, try again later

# Set by sealpost.cli.main for a command run with --json: errors are JSON on stdout then, so
# that a script reading stdout gets an answer it can parse whatever happened.
json_errors = False

_KINDS = {EXIT_FAILED: "failed", EXIT_BAD_INPUT: "bad_input", EXIT_UNREACHABLE: "unreachable"}


def fail(message: str, code: int = EXIT_FAILED, *, error: str | None = None) -> int:
    """Say what went wrong and what to do; returns the exit status. ``error``: a machine
    code for --json (the relay's own code when it refused), else the exit status's kind."""
    if json_errors:
        print_json({"error": {"code": error or _KINDS.get(code, "failed"), "message": message}})
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


# What a value must look like, by the field pydantic named: said instead of its pattern.
_SHAPES = {
    "country": "a country calling code is + and 1 to 4 digits, e.g. +39",
    "handle": "a handle is 3 to 32 of a-z 0-9 _ . - starting with a letter or digit, e.g. alice",
    "recipient": "a handle is 3 to 32 of a-z 0-9 _ . - starting with a letter or digit",
    "name": "a template name is lowercase letters, digits and _, e.g. spring_offer",
    "display_name": "a display name is 1 to 64 printable characters",
    "text": "a button's text is at most 25 characters",
    "url": "a button's URL starts with https:// or http://",
}


def describe_invalid(exc: Any) -> str:
    """A pydantic ValidationError in people's words: which value, and what it should be."""
    problems = []
    for error in exc.errors():
        field = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "value")
        given = error.get("input")
        shape = _SHAPES.get(field, error["msg"][0].lower() + error["msg"][1:])
        shown = f" {given!r}" if isinstance(given, str | int) else ""
        problems.append(f"{field}{shown} is not valid: {shape}")
    return "; ".join(problems)


def terminal_safe(text: str | None) -> str:
    """Text from other people (or the relay) with every control, format, bidi and separator
    character made visible: the app's one escaping function, so the CLI shows what it does."""
    from client.tui.text import safe  # the TUI's module, imported only when printing

    return safe(text)
