"""The device's local store: its schema is the same however it was created, and stores opened
in one process share their compiled SQL without sharing any data."""

import sqlite3
from pathlib import Path

from sqlmodel import SQLModel, create_engine

from client.signals import PendingSignal
from client.store import CLIENT_TABLES, Conversation, LocalStore, StoredMessage, create_tables


def _schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return sorted(rows)


def test_a_new_store_gets_the_schema_create_all_would_give(tmp_path):
    tables = [*CLIENT_TABLES, PendingSignal.__table__]
    reference = create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    SQLModel.metadata.create_all(reference, tables=tables)
    reference.dispose()
    fast = create_engine(f"sqlite:///{tmp_path / 'fast.db'}")
    create_tables(fast, tables)
    create_tables(fast, tables)  # a second time: all there, nothing to do, no error
    fast.dispose()
    assert _schema(tmp_path / "fast.db") == _schema(tmp_path / "reference.db")
    assert any(kind == "index" for kind, _, _ in _schema(tmp_path / "fast.db"))


def test_a_store_missing_some_tables_gets_the_rest(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'partial.db'}")
    create_tables(engine, CLIENT_TABLES[:2])
    create_tables(engine, CLIENT_TABLES)
    engine.dispose()
    names = {name for kind, name, _ in _schema(tmp_path / "partial.db") if kind == "table"}
    assert names >= {t.name for t in CLIENT_TABLES}


def test_stores_share_compiled_sql_but_never_rows(tmp_path):
    ana, bob = LocalStore(tmp_path / "ana.db"), LocalStore(tmp_path / "bob.db")
    try:
        assert ana.engine.dialect == bob.engine.dialect  # one compiled-SQL cache for both
        message = StoredMessage(
            msg_id="m1",
            peer="carol",
            direction="out",
            sender="ana",
            recipient="carol",
            text="for carol, from ana",
            sent_at=1,
            status="queued",
        )
        ana.queue_outgoing(message, Conversation(peer="carol", display_name="carol"))
        assert [m.text for m in ana.messages("carol")] == ["for carol, from ana"]
        assert bob.messages("carol") == []
    finally:
        ana.close()
        bob.close()
