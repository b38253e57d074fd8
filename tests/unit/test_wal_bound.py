"""The relay's SQLite write-ahead log stays bounded: a burst grows it, and once checkpointed
it is cut back to the limit the next time the log restarts (journal_size_limit)."""

from pathlib import Path

from sqlalchemy import text

from server.db import make_engine


def test_the_log_is_cut_back_after_a_burst(tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    engine = make_engine(f"sqlite:///{db}", wal_limit_bytes=256 * 1024)
    wal = Path(f"{db}-wal")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE burst (id INTEGER PRIMARY KEY, body BLOB)"))
    for _ in range(20):  # 4 MiB of log, in commits the background checkpoint does not see
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO burst (body) VALUES (zeroblob(200000))"))
    assert wal.stat().st_size > 2 * 1024 * 1024
    raw = engine.raw_connection()
    try:
        # What the relay's checkpointer does every second (server/checkpoints.py).
        raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        raw.close()
    with engine.begin() as conn:  # the next writer restarts the log, and cuts the file
        conn.execute(text("INSERT INTO burst (body) VALUES (x'00')"))
    assert wal.stat().st_size <= 256 * 1024
    engine.dispose()
