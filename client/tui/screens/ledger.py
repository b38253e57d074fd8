"""The privacy ledger: every request this client sent to the relay, decoded into fields.

The rows live in a DataTable, which draws only the rows on screen (line API), so a ledger of
tens of thousands of requests scrolls as fast as a short one. The text filter matches every
decoded field; the export writes the rows that pass it as JSON lines, exactly as recorded.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static

from client.tui.text import TimeFormat, follow_cursor_blink, one_line, safe

LONG_VALUE = 48  # longer strings (signatures, ciphertext) are shown shortened, with their size
LIST_ITEMS = 8  # list items shown per list; the rest are counted

INTRO = (
    "Every request this app sent to the relay, newest first, exactly as it left this device. "
    "Message texts are never here: they travel sealed (see 'ciphertext')."
)


@dataclass(frozen=True)
class LedgerRow:
    index: int  # position in the ledger (oldest is 0)
    entry: dict[str, Any]
    time: str
    method: str
    path: str
    summary: str
    fields: tuple[tuple[str, str], ...]
    haystack: str  # lower-cased text the filter searches


def _short(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > LONG_VALUE:
            return f"{value[:24]}… ({len(value)} chars)"
        return value
    return json.dumps(value, ensure_ascii=False)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``value`` as (dotted key, short text) pairs; long lists and strings are abridged."""
    if isinstance(value, dict):
        if not value:
            return [(prefix or "body", "{}")]
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return pairs
    if isinstance(value, list):
        if not value:
            return [(prefix, "[]")]
        pairs = []
        for n, item in enumerate(value[:LIST_ITEMS]):
            pairs += flatten(item, f"{prefix}[{n}]")
        if len(value) > LIST_ITEMS:
            pairs.append((f"{prefix}[…]", f"{len(value) - LIST_ITEMS} more"))
        return pairs
    return [(prefix or "body", _short(value))]


def decode(index: int, entry: dict[str, Any], time_format: TimeFormat) -> LedgerRow:
    url = urlsplit(str(entry.get("url", "")))
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = entry.get("headers") or {}
    body = entry.get("body")
    fields: list[tuple[str, str]] = [
        ("method", str(entry.get("method", ""))),
        ("relay", f"{url.scheme}://{url.netloc}"),
        ("path", path),
    ]
    fields += [(f"header {name}", _short(value)) for name, value in headers.items()]
    body_fields = flatten(body, "body") if body is not None else [("body", "(empty)")]
    fields += body_fields
    summary = ", ".join(
        f"{k.removeprefix('body.')}={v}" for k, v in body_fields if body is not None
    )
    at = entry.get("at")
    when = time_format(at) if isinstance(at, int) else "?"
    return LedgerRow(
        index=index,
        entry=entry,
        time=when,
        method=str(entry.get("method", "")),
        path=path,
        summary=one_line(summary, 200) if body is not None else "",
        fields=tuple(fields),
        haystack="\n".join(f"{k} {v}" for k, v in fields).lower() + "\n" + when,
    )


def matches(row: LedgerRow, query: str) -> bool:
    """Every word of ``query`` appears somewhere in the row's decoded fields."""
    return all(word in row.haystack for word in query.lower().split())


def export_path(directory: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"ledger-export-{stamp}.jsonl"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"ledger-export-{stamp}-{n}.jsonl"
    return path


class LedgerScreen(Screen[None]):
    """``entries`` reads the ledger (oldest first); exports go to ``export_dir``."""

    HELP_TITLE = "Privacy ledger"

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+s", "export", "Export JSON lines", id="sealpost.ledger.export"),
        Binding("f5", "reload", "Reload", id="sealpost.ledger.reload"),
        Binding("ctrl+f", "focus_filter", "Filter", show=False),
    ]

    def __init__(
        self,
        entries: Callable[[], list[dict[str, Any]]],
        export_dir: Path,
        time_format: TimeFormat,
    ) -> None:
        super().__init__()
        self.entries = entries
        self.export_dir = export_dir
        self.time_format = time_format
        self.rows: list[LedgerRow] = []
        self.shown: list[LedgerRow] = []
        self.last_export: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="ledger"):
            yield Static(Text(INTRO), id="ledger-intro")
            with Horizontal(id="ledger-bar"):
                yield Input(placeholder="Filter: any words in any field…", id="ledger-filter")
                yield Button("Export", id="ledger-export", compact=True, variant="primary")
            yield Label("", id="ledger-count")
            yield DataTable(id="ledger-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="ledger-detail"):
                yield Static("", id="ledger-fields")
            yield Label("", id="ledger-export-path")
        yield Footer()

    def on_mount(self) -> None:
        follow_cursor_blink(self)
        self.title = "Privacy ledger"
        table = self.query_one(DataTable)
        table.add_column("#", key="n")
        table.add_column("Time", key="time")
        table.add_column("Method", key="method")
        table.add_column("Path", key="path")
        table.add_column("Body", key="body")
        self.action_reload()
        table.focus()

    def action_reload(self) -> None:
        self.rows = [decode(i, e, self.time_format) for i, e in enumerate(self.entries())]
        self._refill()

    def _refill(self) -> None:
        query = self.query_one("#ledger-filter", Input).value.strip()
        self.shown = [r for r in reversed(self.rows) if matches(r, query)]
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows(
            (
                Text(str(r.index + 1), "dim"),
                Text(r.time),
                Text(r.method, "bold"),
                Text(safe(r.path, keep_newlines=False)),
                Text(one_line(r.summary, 70), "dim"),
            )
            for r in self.shown
        )
        total = len(self.rows)
        what = f"{len(self.shown)} of {total}" if query else f"{total}"
        self.query_one("#ledger-count", Label).update(Text(f"{what} request(s)", "bold"))
        self._show_detail(0 if self.shown else None)

    def _show_detail(self, index: int | None) -> None:
        fields = self.query_one("#ledger-fields", Static)
        if index is None or not 0 <= index < len(self.shown):
            fields.update(Text("No request matches.", "dim"))
            return
        row = self.shown[index]
        text = Text(end="")
        width = max(len(k) for k, _ in row.fields)
        for n, (key, value) in enumerate(row.fields):
            if n:
                text.append("\n")
            text.append(key.ljust(width), "bold")
            text.append("  ")
            text.append(safe(value, keep_newlines=False))
        fields.update(text)

    @on(Input.Changed, "#ledger-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._refill()

    @on(Input.Submitted, "#ledger-filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(DataTable).focus()

    @on(DataTable.RowHighlighted, "#ledger-table")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail(event.cursor_row)

    @on(Button.Pressed, "#ledger-export")
    def export_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_export()

    def action_focus_filter(self) -> None:
        self.query_one("#ledger-filter").focus()

    def action_export(self) -> None:
        """Write the rows that pass the filter, oldest first, one JSON object per line."""
        path = export_path(self.export_dir)
        chosen = sorted(self.shown, key=lambda r: r.index)
        try:
            with path.open("w", encoding="utf-8") as f:
                for row in chosen:
                    f.write(json.dumps(row.entry, separators=(",", ":"), ensure_ascii=False))
                    f.write("\n")
        except OSError as exc:
            self.notify(f"Export failed: {exc}", severity="error", markup=False)
            return
        self.last_export = path
        message = f"Exported {len(chosen)} request(s) to {path}"
        self.query_one("#ledger-export-path", Label).update(Text(message, "bold"))
        self.notify(message, title="Privacy ledger", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
