"""A campaign's journal on the business's device, so that a run cut short resumes exactly once.

Before anything reaches the relay, the journal holds the campaign's id, what creates it and
its resolved audience; before each batch of sealed copies leaves, the batch's exact bytes.
Resuming sends the journalled copies again, byte for byte (the relay answers each one it
already stored ``duplicate``: nobody gets a second copy and nothing is charged twice), then
seals and sends the rows that never left. Copies are sealed with fresh randomness, so only the
journal can reproduce the bytes that may already be at the relay.

One SQLite file per profile (``campaigns.db``), written with the standard library: a batch is
committed before it is sent, so a crash at any moment leaves a journal that resumes.
"""

import dataclasses
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from client.business.audience import AudienceRow
from shared.api import CampaignCreate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL,
    create_body TEXT NOT NULL,
    rows TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE TABLE IF NOT EXISTS copy (
    campaign_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    envelope TEXT NOT NULL,
    PRIMARY KEY (campaign_id, seq)
);
"""


_RECIPIENT = re.compile(r'"recipient":"([a-z0-9_]+)"')


def recipient_of(envelope: str) -> str:
    """The recipient of an envelope's JSON, without parsing the whole (a campaign journals
    thousands, each mostly ciphertext)."""
    found = _RECIPIENT.search(envelope)
    return found.group(1) if found else json.loads(envelope)["recipient"]


@dataclass
class JournalledCampaign:
    """What a resume needs: how to create the campaign, its audience, the copies sealed."""

    id: str
    template_id: str
    create: CampaignCreate
    rows: list[AudienceRow]
    envelopes: list[str]  # in the order they were sent
    finished: bool

    @property
    def sealed_for(self) -> set[str]:
        """Recipients whose copy is journalled (it may be at the relay already)."""
        return {recipient_of(e) for e in self.envelopes}


class CampaignJournal:
    """The journal of one profile's campaigns (``<profile>/campaigns.db``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Batches are written from a worker thread (client/business/campaigns.py), one at a time.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a batch journalled is on disk
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def begin(
        self, campaign_id: str, template_id: str, create: CampaignCreate, rows: list[AudienceRow]
    ) -> None:
        """Journal a campaign before it is created on the relay."""
        self._db.execute(
            "INSERT OR IGNORE INTO campaign (id, template_id, create_body, rows, started_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                campaign_id,
                template_id,
                create.model_dump_json(),
                json.dumps([dataclasses.asdict(r) for r in rows]),
                int(time.time() * 1000),
            ),
        )

    def record(self, campaign_id: str, envelopes: list[str]) -> None:
        """Journal a batch of sealed copies, committed, before it is sent."""
        if not envelopes:
            return
        with self._db:  # one transaction: the whole batch or none of it
            self._db.execute("BEGIN")
            first = self._db.execute(
                "SELECT coalesce(max(seq), -1) + 1 FROM copy WHERE campaign_id = ?",
                (campaign_id,),
            ).fetchone()[0]
            self._db.executemany(
                "INSERT INTO copy (campaign_id, seq, recipient, envelope) VALUES (?, ?, ?, ?)",
                [(campaign_id, first + i, recipient_of(e), e) for i, e in enumerate(envelopes)],
            )

    def finish(self, campaign_id: str) -> None:
        """Every row was submitted (or the relay stopped the campaign): nothing to resume."""
        self._db.execute(
            "UPDATE campaign SET finished_at = ? WHERE id = ?",
            (int(time.time() * 1000), campaign_id),
        )

    def load(self, campaign_id: str) -> JournalledCampaign | None:
        found = self._db.execute(
            "SELECT template_id, create_body, rows, finished_at FROM campaign WHERE id = ?",
            (campaign_id,),
        ).fetchone()
        if found is None:
            return None
        template_id, create, rows, finished = found
        envelopes = [
            e
            for (e,) in self._db.execute(
                "SELECT envelope FROM copy WHERE campaign_id = ? ORDER BY seq", (campaign_id,)
            )
        ]
        return JournalledCampaign(
            id=campaign_id,
            template_id=template_id,
            create=CampaignCreate.model_validate_json(create),
            rows=[AudienceRow(**r) for r in json.loads(rows)],
            envelopes=envelopes,
            finished=finished is not None,
        )

    def unfinished(self) -> list[str]:
        """Campaigns whose submission was cut short, oldest first."""
        return [
            cid
            for (cid,) in self._db.execute(
                "SELECT id FROM campaign WHERE finished_at IS NULL ORDER BY started_at"
            )
        ]
