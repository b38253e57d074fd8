"""What the shuffler keeps: each held report and a random order key, nothing else.

No arrival time, no address, no counter: the table is ``WITHOUT ROWID`` and keyed by 16
random bytes, so even SQLite's own row order says nothing about which report came first. The
token input is a column of its own (it is also inside the report) only so that a unique index
keeps one report per token: a device that resends after a lost answer is not counted twice,
and a batch's B reports come from B distinct tokens.
"""

import secrets
import threading
from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

# The shuffler's own metadata: its table never joins the relay's or the client's schema.
metadata = MetaData()

held = Table(
    "shuffler_report",
    metadata,
    Column("order_key", LargeBinary(16), primary_key=True),
    Column("token_input", String(64), nullable=False, unique=True),
    Column("report", String(512), nullable=False),
    sqlite_with_rowid=False,
)


class ReportStore:
    """The held reports in the shuffler's own SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(f"sqlite:///{path}")

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            # Not WAL: a write-ahead log keeps each commit's pages, one report after another,
            # until a checkpoint, which is exactly the arrival order this store must not keep.
            # A rollback journal holds only the pages before the current write, then is gone.
            cursor.execute("PRAGMA journal_mode=DELETE")
            cursor.execute("PRAGMA synchronous=FULL")  # a 202 means the report is on disk
            # Freed pages are overwritten, so forwarded reports do not linger in the file.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        metadata.create_all(self.engine)
        self._lock = threading.Lock()  # one writer at a time within this process

    def add(self, token_input: str, report: str) -> bool:
        """Hold one report; False if a report with this token is held already."""
        with self._lock, self.engine.begin() as conn:
            try:
                conn.execute(
                    insert(held).values(
                        order_key=secrets.token_bytes(16), token_input=token_input, report=report
                    )
                )
            except IntegrityError:
                return False
        return True

    def count(self) -> int:
        """Held reports, each from a distinct token (the unique index sees to it)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(held)).scalar_one())

    def take(self, limit: int) -> list[tuple[bytes, str]]:
        """Up to ``limit`` held reports as (order key, report), in order-key (random) order.
        They stay held until :meth:`remove`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(held.c.order_key, held.c.report).order_by(held.c.order_key).limit(limit)
            )
            return [(bytes(k), r) for k, r in rows]

    def remove(self, keys: list[bytes]) -> None:
        with self._lock, self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                conn.execute(delete(held).where(held.c.order_key.in_(keys[start : start + 500])))

    def close(self) -> None:
        self.engine.dispose()
