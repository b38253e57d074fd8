"""The audience CSV: ``handle``, ``name`` and any extra variables, one person per row."""

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shared.identifiers import HANDLE_PATTERN

BadRowPolicy = Literal["skip", "stop"]


class AudienceError(Exception):
    """The file can't be used at all (missing, no header, no valid row, or a bad row under
    ``--on-bad-row stop``); the message says which line and what to fix."""


@dataclass(frozen=True)
class AudienceRow:
    line: int
    handle: str
    variables: dict[str, str]


@dataclass
class Audience:
    rows: list[AudienceRow] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)
    unused_columns: list[str] = field(default_factory=list)

    def drop_many(self, problems: list[tuple[int, str]]) -> None:
        """Remove the rows at these lines, recording why."""
        gone = {line for line, _ in problems}
        self.rows = [r for r in self.rows if r.line not in gone]
        self.problems = sorted(self.problems + problems)


def read_audience(path: Path, variables: list[str]) -> Audience:
    """Read ``path`` and keep, per row, the template ``variables`` (from same-named columns).

    Every bad row is reported with its line number; what to do with them is the caller's
    choice (see :func:`apply_policy`).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise AudienceError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise AudienceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns
    if "handle" not in columns:
        raise AudienceError(
            f"{path}: line 1 must be a header naming a 'handle' column (found: "
            f"{', '.join(columns) or 'nothing'})"
        )
    missing = [v for v in variables if v not in columns]
    if missing:
        raise AudienceError(
            f"{path}: the template needs columns {', '.join(missing)}; the header has "
            f"{', '.join(columns)}"
        )
    audience = Audience(unused_columns=[c for c in columns if c not in variables and c != "handle"])
    seen: dict[str, int] = {}
    for number, record in enumerate(reader, start=2):
        if None in record:
            audience.problems.append((number, "more fields than the header has columns"))
            continue
        handle = (record.get("handle") or "").strip().lstrip("@").lower()
        if not re.match(HANDLE_PATTERN, handle):
            audience.problems.append((number, f"'{record.get('handle')}' is not a valid handle"))
            continue
        if handle in seen:
            audience.problems.append((number, f"{handle} already listed on line {seen[handle]}"))
            continue
        values = {v: (record.get(v) or "").strip() for v in variables}
        empty = [v for v, value in values.items() if not value]
        if empty:
            audience.problems.append((number, f"empty value for {', '.join(empty)}"))
            continue
        seen[handle] = number
        audience.rows.append(AudienceRow(line=number, handle=handle, variables=values))
    return audience


def apply_policy(audience: Audience, policy: BadRowPolicy) -> None:
    """Raise under ``stop`` if any row was bad; always raise if nothing is left to send."""
    if audience.problems and policy == "stop":
        listing = "; ".join(f"line {n}: {why}" for n, why in audience.problems[:10])
        more = f" (+{len(audience.problems) - 10} more)" if len(audience.problems) > 10 else ""
        raise AudienceError(
            f"{len(audience.problems)} bad rows, nothing sent: {listing}{more}. Fix them, or "
            "pass --on-bad-row skip to send to the good rows only."
        )
    if not audience.rows:
        raise AudienceError("the audience has no valid rows; nothing to send")
