"""What the gateway keeps on the business's machine (``<profile>/gateway.db``).

All of it is the business's own knowledge: what it sent to whom (to answer a quick reply with
the payload it chose, and to know which of its campaigns a person already has a copy of), the
templates it deleted or that were rejected, and the webhook events not yet taken by its
integration (kept until its endpoint answers 2xx, so a restart loses none).
"""

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (
    id TEXT PRIMARY KEY, template_id TEXT NOT NULL, day TEXT NOT NULL,
    size INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_copy (
    campaign_id TEXT NOT NULL, handle TEXT NOT NULL, PRIMARY KEY (campaign_id, handle)
);
CREATE TABLE IF NOT EXISTS sent (
    wamid TEXT PRIMARY KEY, handle TEXT NOT NULL, kind TEXT NOT NULL,
    template_id TEXT, campaign_id TEXT, choices TEXT NOT NULL DEFAULT '[]',
    sent_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sent_by_handle ON sent (handle, sent_at);
CREATE TABLE IF NOT EXISTS deleted_template (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_template (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, language TEXT NOT NULL, category TEXT NOT NULL,
    reasons TEXT NOT NULL, at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class SentRecord:
    wamid: str
    handle: str
    kind: str  # template | text | interactive
    choices: list[dict[str, str]]  # quick replies {text, payload} or reply buttons {id, title}


class GatewayState:
    def __init__(self, path: Path) -> None:
        # One connection, used from the event loop's thread and the webhook sender's calls
        # alike; every statement is short (a row or two), so a lock is all it needs.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args))

    # --- campaigns ---------------------------------------------------------------------------

    def open_campaign(self, template_id: str, day: str, handle: str) -> str | None:
        """Today's campaign of this template that has room and no copy for ``handle`` yet."""
        rows = self._run(
            "SELECT id FROM campaign WHERE template_id = ? AND day = ? AND closed = 0 "
            "AND used < size AND id NOT IN (SELECT campaign_id FROM campaign_copy "
            "WHERE handle = ?) ORDER BY created_at LIMIT 1",
            template_id,
            day,
            handle,
        )
        return rows[0][0] if rows else None

    def add_campaign(self, campaign_id: str, template_id: str, day: str, size: int) -> None:
        self._run(
            "INSERT INTO campaign (id, template_id, day, size, created_at) VALUES (?, ?, ?, ?, ?)",
            campaign_id,
            template_id,
            day,
            size,
            int(time.time() * 1000),
        )

    def close_campaign(self, campaign_id: str) -> None:
        self._run("UPDATE campaign SET closed = 1 WHERE id = ?", campaign_id)

    def campaigns_of(self, template_ids: list[str]) -> list[tuple[str, str, str]]:
        """(campaign id, template id, day) of these templates, oldest first."""
        marks = ",".join("?" * len(template_ids))
        return [
            (r[0], r[1], r[2])
            for r in self._run(
                f"SELECT id, template_id, day FROM campaign WHERE template_id IN ({marks}) "
                "ORDER BY created_at",
                *template_ids,
            )
        ]

    # --- messages ----------------------------------------------------------------------------

    def record_sent(
        self,
        wamid: str,
        handle: str,
        kind: str,
        choices: list[dict[str, str]],
        template_id: str | None = None,
        campaign_id: str | None = None,
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO sent (wamid, handle, kind, template_id, campaign_id, choices, "
                    "sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        wamid,
                        handle,
                        kind,
                        template_id,
                        campaign_id,
                        json.dumps(choices),
                        int(time.time() * 1000),
                    ),
                )
                if campaign_id is not None:
                    self._db.execute(
                        "INSERT OR IGNORE INTO campaign_copy (campaign_id, handle) VALUES (?, ?)",
                        (campaign_id, handle),
                    )
                    self._db.execute(
                        "UPDATE campaign SET used = used + 1 WHERE id = ?", (campaign_id,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mark_copy(self, campaign_id: str, handle: str) -> None:
        """The relay holds a copy for ``handle`` already (this state was lost or restored)."""
        self._run(
            "INSERT OR IGNORE INTO campaign_copy (campaign_id, handle) VALUES (?, ?)",
            campaign_id,
            handle,
        )

    def answered(
        self, handle: str, kind: str, text: str
    ) -> tuple[SentRecord, dict[str, str]] | None:
        """The latest message of ``kind`` sent to ``handle`` with a choice reading ``text``
        (a quick reply's text, or a reply button's title or number), and that choice."""
        rows = self._run(
            "SELECT wamid, handle, kind, choices FROM sent WHERE handle = ? AND kind = ? "
            "ORDER BY sent_at DESC, rowid DESC LIMIT 20",
            handle,
            kind,
        )
        wanted = text.strip().casefold()
        for wamid, who, k, choices_json in rows:
            choices = json.loads(choices_json)
            for number, choice in enumerate(choices, start=1):
                label = choice.get("text") or choice.get("title") or ""
                if wanted in (label.strip().casefold(), str(number)):
                    return SentRecord(wamid, who, k, choices), choice
        return None

    # --- templates ---------------------------------------------------------------------------

    def delete_template(self, template_id: str) -> None:
        self._run(
            "INSERT OR IGNORE INTO deleted_template (id, at) VALUES (?, ?)",
            template_id,
            int(time.time() * 1000),
        )

    def deleted_templates(self) -> set[str]:
        return {r[0] for r in self._run("SELECT id FROM deleted_template")}

    def reject_template(
        self, template_id: str, name: str, language: str, category: str, reasons: list[str]
    ) -> None:
        self._run(
            "INSERT INTO rejected_template (id, name, language, category, reasons, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            template_id,
            name,
            language,
            category,
            json.dumps(reasons),
            int(time.time() * 1000),
        )

    def rejected_templates(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r[0],
                "name": r[1],
                "language": r[2],
                "category": r[3],
                "reasons": json.loads(r[4]),
            }
            for r in self._run(
                "SELECT id, name, language, category, reasons FROM rejected_template ORDER BY at"
            )
        ]

    def forget_rejected(self, template_ids: set[str]) -> None:
        for template_id in template_ids:
            self._run("DELETE FROM rejected_template WHERE id = ?", template_id)

    # --- webhook outbox ----------------------------------------------------------------------

    def queue_webhook(self, body: bytes) -> None:
        self._run("INSERT INTO webhook_outbox (body) VALUES (?)", body)

    def next_webhook(self) -> tuple[int, bytes] | None:
        rows = self._run("SELECT seq, body FROM webhook_outbox ORDER BY seq LIMIT 1")
        return (rows[0][0], bytes(rows[0][1])) if rows else None

    def webhook_done(self, seq: int) -> None:
        self._run("DELETE FROM webhook_outbox WHERE seq = ?", seq)
