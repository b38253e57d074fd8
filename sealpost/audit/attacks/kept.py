"""What the relay keeps per report: the token it spent, under its campaign, and nothing else.

Reports themselves are never stored (docs/privacy-boundary.md §3): a report adds to its
campaign's tallies and its token input joins the campaign's spent set. Anything more kept per
report (when it arrived, from which address, its place in the arrival order) is what a
relay needs to link reports to people later, when the shuffler is bypassed or colludes, or
when its database leaks. The attack reads the relay's whole storage, as dumped:

- every table and column must be one the relay's code declares (``server.models``): a table
  or column of its own is storage nobody reviewed;
- every table holding a row per report (found by the spent token inputs in its rows) must be
  the declared spent set, with only its declared columns; any other column is reported with
  what it looks like: a time, an address, a sequence;
- the order rows are stored in (SQLite's rowid) must say no more than the order the relay saw
  batches arrive: within a batch, it must not follow the order the reports were sent.
"""

import math
import re
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import SQLModel

from sealpost.audit.checks import Check, make_check
from sealpost.audit.stats import spearman
from sealpost.audit.storage import StorageDump

# Per report, the relay keeps exactly this: the spent token, under its campaign.
REPORT_STORAGE: dict[str, frozenset[str]] = {
    "relay_token_spent": frozenset({"campaign_id", "token_input"}),
}
NOT_THE_RELAYS = frozenset({"alembic_version"})  # the migration tool's own bookkeeping
Z = 4.5
_TOKEN = re.compile(r"[A-Za-z0-9+/]{43}=")
_ADDRESS = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b|\blocalhost\b|::1\b")
DAY_S = 86_400


def declared_tables() -> dict[str, set[str]]:
    """The relay's tables and columns, as its models declare them."""
    import server.models  # noqa: F401  (registers the relay's tables)

    return {
        name: {c.name for c in table.columns}
        for name, table in SQLModel.metadata.tables.items()
        if name.startswith("relay_")
    }


def _looks_like(values: list[str], start: float) -> str:
    """What a column's values look like: times (near the run's), addresses, a sequence."""
    numbers = []
    for value in values:
        try:
            numbers.append(float(value))
        except ValueError:
            if _ADDRESS.search(value):
                return "network addresses"
    if numbers and len(numbers) == len(values):
        near = [
            n
            for n in numbers
            if any(start - 2 * DAY_S <= n / scale <= start + 400 * DAY_S for scale in (1, 1e3, 1e6))
        ]
        if len(near) == len(numbers):
            return "times"
        if sorted(numbers) == [
            float(i) for i in range(int(min(numbers)), int(min(numbers)) + len(numbers))
        ]:
            return "a sequence"
    return "values"


def per_report_rows(storage: StorageDump, tokens: set[str]) -> dict[str, list[dict[str, str]]]:
    """Rows (column -> value text) of every table that holds one of ``tokens``."""
    found: dict[str, list[dict[str, str]]] = defaultdict(list)
    for line in storage.rows_text.splitlines():
        table, _, rest = line.partition("\t")
        if not set(_TOKEN.findall(rest)) & tokens:
            continue
        row = {}
        for cell in rest.split("\t"):
            column, _, value = cell.partition("=")
            row[column] = value.strip("'\"")
        found[table].append(row)
    return dict(found)


def stored_order(db_path: Path, table: str, column: str) -> list[tuple[int, str]]:
    """(rowid, token) of a table, read-only; empty if it keeps no rowid."""
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            rows = conn.execute(f'SELECT rowid, "{column}" FROM "{table}"').fetchall()
    except sqlite3.Error:
        return []
    return [(int(rowid), str(token)) for rowid, token in rows]


def relay_keeps(
    storage: StorageDump,
    tokens: set[str],
    start: float,
    db_path: Path | None,
    batch_of: dict[str, int],
    sent_at: dict[str, float],
) -> Check:
    """``tokens``: the token inputs the run's reports spent; ``start``: when the run began
    (unix s); ``db_path``: the relay's database, for the stored order; ``batch_of`` and
    ``sent_at``: per token, its batch request and when it left its device (ground truth)."""
    violations: list[str] = []
    declared = declared_tables()
    for table, columns in sorted(storage.columns.items()):
        if table in NOT_THE_RELAYS:
            continue
        if table not in declared:
            violations.append(
                f"table {table} ({', '.join(columns)}) is not one the relay's models declare"
            )
            continue
        for column in sorted(set(columns) - declared[table]):
            violations.append(f"{table}.{column} is not a column the relay's models declare")
    kept = per_report_rows(storage, tokens)
    for table, rows in sorted(kept.items()):
        allowed = REPORT_STORAGE.get(table)
        columns = sorted({c for row in rows for c in row})
        if allowed is None:
            violations.append(
                f"{table} keeps a row for {len(rows)} reports ({', '.join(columns)}): only the "
                "spent set may"
            )
        for column in columns:
            if allowed is not None and column in allowed:
                continue
            looks = _looks_like([row.get(column, "") for row in rows], start)
            violations.append(f"{table}.{column} keeps {looks} per report")
    rho, bound, units = 0.0, 1.0, 0
    if db_path is not None:
        for table in sorted(set(kept) & set(REPORT_STORAGE)):
            order = [
                (rowid, t)
                for rowid, t in stored_order(db_path, table, "token_input")
                if t in tokens
            ]
            rho, bound, units = _within_batches(order, batch_of, sent_at)
            if abs(rho) > bound:
                violations.append(
                    f"{table} stores reports in the order they were sent, within a batch "
                    f"(Spearman {rho:+.3f}, bound {bound:.3f})"
                )
    shapes = {table: sorted({c for row in rows for c in row}) for table, rows in kept.items()}
    return make_check(
        "relay_keeps",
        "Per report the relay keeps its spent token under its campaign, nothing else",
        violations,
        f"{len(storage.columns)} tables against the relay's declared models; tables holding "
        f"one of {len(tokens):,} spent tokens: "
        + (", ".join(f"{t} ({', '.join(c)})" for t, c in sorted(shapes.items())) or "none")
        + f"; their row order within a batch against sending order: Spearman {rho:+.3f} "
        f"(bound {bound:.3f})",
        measured=(
            "per report the relay keeps: "
            + ("; ".join(f"{t}({', '.join(c)})" for t, c in sorted(shapes.items())) or "nothing")
            + f"; its row order says nothing within a batch (Spearman {rho:+.3f} over "
            f"{units} reports)"
            if not violations
            else f"{len(violations)} finding(s): {violations[0]}"
        ),
        per_report_tables=shapes,
        order_within_batches={"spearman": round(rho, 4), "bound": round(bound, 4)},
    )


def _within_batches(
    order: Sequence[tuple[int, str]], batch_of: dict[str, int], sent_at: dict[str, float]
) -> tuple[float, float, int]:
    """Spearman of stored position against sending moment, within each batch, averaged
    (weighted by size - 1); its bound; and how many reports it covers."""
    groups: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for rowid, token in order:
        if token in batch_of and token in sent_at:
            groups[batch_of[token]].append((rowid, sent_at[token]))
    total = weight = 0.0
    units = 0
    for members in groups.values():
        if len(members) < 3:
            continue
        rho = spearman([float(a) for a, _ in members], [b for _, b in members])
        total += rho * (len(members) - 1)
        weight += len(members) - 1
        units += len(members)
    if not weight:
        return 0.0, 1.0, 0
    return total / weight, min(1.0, Z / math.sqrt(weight)), units
