"""The relay's frequent mailbox queries use their (partial) indexes on SQLite.

SQLite uses a partial index only when the query repeats the index's condition word for word
(server/models.py); a query that compared with a bound parameter instead would silently fall
back to scanning every row ever stored. This runs the real functions and asks SQLite for the
plan of every mailbox statement they send.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session

from server import campaigns, schema
from server.clock import SystemClock
from server.db import make_engine
from server.dispatcher import Dispatcher
from server.figures import FiguresPolicy
from server.mailbox import acknowledge, pending, pending_frames
from server.models import Campaign
from server.notify import MailboxNotifier
from server.release import Candidate, _recipient_states


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'relay.db'}")
    schema.upgrade(engine)
    yield engine
    engine.dispose()


def _plans(engine: Engine) -> list[tuple[str, str]]:
    """(statement, SQLite's plan for it) for each mailbox read or update sent from now on."""
    seen: list[tuple[str, str]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _explain(conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool):
        words = statement.lstrip().upper()
        if many or "RELAY_MAILBOX" not in words or not words.startswith(("SELECT", "UPDATE")):
            return
        raw = conn.connection.dbapi_connection
        plan = raw.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
        seen.append((" ".join(statement.split())[:120], " | ".join(row[3] for row in plan)))

    return seen


def test_every_frequent_mailbox_query_uses_an_index(engine: Engine) -> None:
    plans = _plans(engine)
    campaign = Campaign(
        id="cmp_0123456789abcdef",
        business="shop",
        name="x",
        template_id="t",
        category="marketing",
        send_at=0,
        expires_at=1,
        budget=1,
    )
    with Session(engine) as session:
        pending(session, "ana", 0, 10)  # a stream's read, a mailbox page
        pending_frames(session, ["ana", "bo"], 10)  # streams woken by another relay
        pending_frames(session, ["ana", "bo"], 10, (5, 9))  # ... with the batch's numbers
        acknowledge(session, "ana", ["0" * 32], 1)
        _recipient_states(session, [Candidate("ana", "shop", "marketing", None)], 10**12)
        campaigns.report(session, campaign, 0, FiguresPolicy(3_600_000, 0.1, 0.1, 1.0))
        session.rollback()
    Dispatcher(engine, SystemClock(), MailboxNotifier(), daily_cap=2, interval_s=1).run_once()

    expected = {
        "ix_mailbox_pending": 4,  # read, woken streams (twice), ack
        "ix_mailbox_released": 1,  # the marketing cap
        "ix_mailbox_campaign": 1,  # the report
        "ix_mailbox_due": 1,  # the dispatcher's release pass
        "ix_mailbox_expiring": 1,  # and its expiry pass
    }
    for index, count in expected.items():
        using = [s for s, plan in plans if f" INDEX {index} " in plan + " "]
        assert len(using) == count, (index, plans)
    scans = [(s, plan) for s, plan in plans if "SCAN relay_mailbox" in plan]
    assert not scans, scans
