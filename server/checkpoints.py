"""Moves SQLite's WAL checkpoints off the request path.

SQLite checkpoints the write-ahead log from inside whichever commit crosses the threshold,
so one request in a few hundred also copied the log into the database and synced it, while
holding the relay's write lock (every other writer waited). A background thread instead runs
a PASSIVE checkpoint every second, which never blocks writers; request connections only
checkpoint themselves if the log grows far past that (server/db.py), a safety net for a relay
whose thread is not running.
"""

import logging
import threading

from sqlalchemy import Engine

log = logging.getLogger("sealpost.checkpoints")


class Checkpointer:
    def __init__(self, engine: Engine, interval_s: float = 1.0) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.engine.dialect.name != "sqlite":
            return  # PostgreSQL checkpoints on its own
        self._thread = threading.Thread(target=self._loop, daemon=True, name="checkpoints")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        # A raw DB-API connection: no SQLAlchemy transaction, so no BEGIN and no write lock.
        connection = self.engine.raw_connection()
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:  # a busy or closing database: try again next time
                    log.debug("checkpoint skipped", exc_info=True)
        finally:
            connection.close()
