"""Wakes open delivery streams when their mailbox gets mail, in this process and (through
PostgreSQL LISTEN/NOTIFY) in every other relay process sharing the database.

The database stays the source of truth: a wake-up only tells a stream to look again, so a
missed or spurious wake-up never loses or duplicates anything.
"""

import asyncio
import logging
import threading
from collections import defaultdict

from sqlalchemy import text
from sqlmodel import Session

log = logging.getLogger("sealpost.notify")


class MailboxNotifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )
        self._lock = threading.Lock()

    def subscribe(self, handle: str) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters[handle].add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, handle: str, event: asyncio.Event) -> None:
        with self._lock:
            waiters = self._waiters.get(handle, set())
            for item in [w for w in waiters if w[1] is event]:
                waiters.discard(item)
            if not waiters:
                self._waiters.pop(handle, None)

    def publish(self, handles: set[str]) -> None:
        """Wake every stream of ``handles``; safe to call from any thread."""
        with self._lock:
            targets = [w for h in handles for w in self._waiters.get(h, ())]
        for loop, event in targets:
            loop.call_soon_threadsafe(event.set)

    def wake_all(self) -> None:
        """Wake every stream, e.g. so they notice the relay is shutting down."""
        self.publish(set(self._waiters))


CHANNEL = "sealpost_mailbox"
# NOTIFY payloads must stay under 8000 bytes; handles are at most 32 characters.
_HANDLES_PER_NOTIFY = 200


def announce(session: Session, handles: set[str]) -> None:
    """Tell every relay process sharing this PostgreSQL database that these mailboxes have
    new mail. Sent inside the caller's transaction, so it is delivered only if it commits.
    A no-op on SQLite, where only one relay process can run."""
    if not handles or session.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted(handles)
    for i in range(0, len(ordered), _HANDLES_PER_NOTIFY):
        payload = ",".join(ordered[i : i + _HANDLES_PER_NOTIFY])
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )


class PostgresWakeups:
    """Listens for other processes' announcements and wakes this process's streams.

    The database stays the source of truth: a lost notification only delays a stream until
    its next keepalive, when it looks again anyway.
    """

    def __init__(self, url: str, notifier: MailboxNotifier) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.notifier = notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pg-listen")
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.notifier.publish(set(note.payload.split(",")))
            except Exception:
                log.warning("LISTEN connection lost; reconnecting in %.1f s", delay)
                self.listening.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
