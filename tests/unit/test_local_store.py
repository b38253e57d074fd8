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


def test_a_store_from_before_key_changes_gets_the_contact_columns(tmp_path):
    # A contact pinned by an older version: no verified mark, no key change waiting.
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE client_contact (handle VARCHAR NOT NULL PRIMARY KEY, kind VARCHAR NOT "
            "NULL, display_name VARCHAR NOT NULL, verified BOOLEAN NOT NULL, sign_key VARCHAR "
            "NOT NULL, box_key VARCHAR NOT NULL)"
        )
        db.execute("INSERT INTO client_contact VALUES ('ana', 'person', 'Ana', 0, 'k', 'b')")
    store = LocalStore(path)
    try:
        contact = store.contact("ana")
        assert contact is not None
        assert (contact.safety_verified, contact.key_changed, contact.key_changed_at) == (
            False,
            False,
            None,
        )
        contact.new_sign_key, contact.new_box_key = "k2", "b2"
        store.save_contact(contact)
        assert store.contact("ana").key_changed  # type: ignore[union-attr]
    finally:
        store.close()
    LocalStore(path).close()  # opening again: nothing left to add


def test_a_signal_table_from_before_key_checks_gains_its_columns(tmp_path):
    from client.ledger import PrivacyLedger
    from client.signals import SignalAgent

    store = LocalStore(tmp_path / "store.db")
    with store.engine.begin() as conn:  # client_signal as versions before the key log made it
        conn.exec_driver_sql(
            "CREATE TABLE client_signal (campaign_id VARCHAR NOT NULL PRIMARY KEY, day VARCHAR "
            "NOT NULL, token_input VARCHAR NOT NULL, token_output VARCHAR NOT NULL, true_bits "
            "INTEGER NOT NULL, send_after INTEGER NOT NULL, sent BOOLEAN NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO client_signal VALUES ('cmp_1', '2026-12-01', 'i', 'o', 1, 0, 0)"
        )

    class NoRelay:
        last_signed_at = None

    agent = SignalAgent(NoRelay(), store.engine, tmp_path, PrivacyLedger(None))  # type: ignore[arg-type]
    assert agent.pending() == 1  # the old row is there, not withheld; its key unknown
    with store.session() as s:
        row = s.get(PendingSignal, "cmp_1")
        assert row is not None and row.public_key is None and row.withheld is None
    store.close()
