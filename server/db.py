"""Engine creation for SQLite (default) and PostgreSQL, and the per-request session."""

import threading
import weakref
from _thread import LockType
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

# SQLite engine -> the lock its writers take turns on (see make_engine).
_WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, LockType]" = weakref.WeakKeyDictionary()


def sqlite_write_lock(engine: Engine) -> LockType | None:
    """The lock a SQLite engine's write transactions hold (None on PostgreSQL)."""
    return _WRITE_LOCKS.get(engine)


WAL_LIMIT_BYTES = 64 * 1024 * 1024


def make_engine(
    url: str, *, durable: bool = True, wal_limit_bytes: int = WAL_LIMIT_BYTES
) -> Engine:
    """An engine tuned for the relay's access pattern (many short writes, concurrent readers).

    ``durable`` (SQLite): every commit the relay has answered for is on disk, power cut
    included (``synchronous=FULL``: the log is synced at each commit, one per group commit,
    not per row). Off, a process crash still loses nothing, but an OS crash or power cut can
    lose the last commits (``NORMAL``). PostgreSQL commits are durable by its own default.
    ``wal_limit_bytes`` (SQLite): what the log file is cut back to once checkpointed."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every worker thread (40) may hold a connection, and the dispatcher one more: a pool
        # that large never opens and closes overflow connections under load (which, with the
        # PRAGMAs below, cost more than the queries they served).
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=50,
            max_overflow=10,
        )

        @event.listens_for(engine, "connect")
        def _tune(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers (streams) proceed while a sender writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            cur.execute("PRAGMA busy_timeout=30000")
            # Checkpoints run in the background (server/checkpoints.py); a commit does one
            # itself only past ~40 MB of log.
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            # A checkpoint copies the log into the database but leaves the file as large as
            # the biggest burst made it (4.3 MB of log beside 1.9 MB of data was seen): cut it
            # back when the log restarts after a checkpoint, so it stays bounded.
            cur.execute(f"PRAGMA journal_size_limit={int(wal_limit_bytes)}")
            # A ciphertext the relay drops (delivered, refused, expired) is overwritten with
            # zeros in the file, not left in free space. Many SQLite builds (Debian's) do this
            # by default; say so, so that every platform keeps the promise (docs/protocol.md §8.1).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()
            # Let SQLAlchemy, not the driver, open transactions (see _begin).
            dbapi_conn.isolation_level = None

        # SQLite has one writer at a time. Queue writers on a lock in this process rather
        # than in SQLite's busy handler, which sleeps in steps of up to 100 ms and so turns
        # brief contention (a request vs. the dispatcher) into long stalls.
        write_lock = threading.Lock()
        _WRITE_LOCKS[engine] = write_lock

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Nearly every request writes (at least its nonce), and a deferred transaction that
            # reads and then writes fails at once with SQLITE_BUSY when another writer got in
            # between. IMMEDIATE takes the write lock up front. Pure readers (delivery
            # streams) use read_engine() and stay deferred.
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            if mode == "IMMEDIATE":
                write_lock.acquire()
                conn.info["sealpost_write_lock"] = True
            try:
                conn.exec_driver_sql(f"BEGIN {mode}")
            except BaseException:
                _release(conn)
                raise

        # SQLAlchemy fires these events *before* it commits or rolls back. Releasing the lock
        # there would let the next writer's BEGIN IMMEDIATE meet SQLite's lock still held and
        # sleep in the busy handler; so end the transaction here first (the driver's own
        # commit/rollback that follows is then a no-op).
        @event.listens_for(engine, "commit")
        def _commit(conn: Any) -> None:
            if conn.info.get("sealpost_write_lock"):
                try:
                    conn.connection.dbapi_connection.commit()
                finally:
                    _release(conn)

        @event.listens_for(engine, "rollback")
        def _rollback(conn: Any) -> None:
            if conn.info.get("sealpost_write_lock"):
                try:
                    conn.connection.dbapi_connection.rollback()
                finally:
                    _release(conn)

        def _release(conn: Any) -> None:
            if conn.info.pop("sealpost_write_lock", False):
                write_lock.release()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No pre-ping: it cost a round trip on every request. A connection that died (a database
    # restart) fails one request, and SQLAlchemy then discards the whole pool's connections.
    return create_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800)


def read_engine(engine: Engine) -> Engine:
    """The same database for read-only work: on SQLite its transactions take no write lock."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="DEFERRED")
    return engine


def request_session(engine: Engine) -> Session:
    """The session a request's work runs in (see :func:`get_session`)."""
    return Session(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request.

    Async so that FastAPI opens and closes it on the event loop (both are cheap and do no
    I/O: the request's work connects, and ends the transaction, see server/transactions.py)
    rather than spending a thread hop on each.

    No expiry on commit: reading an attribute after the auth commit must not open a new
    transaction, which on a long-lived stream would hold SQLite's write lock for its lifetime.
    """
    with request_session(request.app.state.engine) as session:
        yield session
