"""Wakes open delivery streams when their mailbox gets mail, in this process and (through
PostgreSQL LISTEN/NOTIFY) in every other relay process sharing the database.

The database stays the source of truth: a wake-up only tells a stream to look again, so a
missed or spurious wake-up never loses or duplicates anything.
"""

import asyncio
import logging
import random
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

log = logging.getLogger("sealpost.notify")


class Subscription:
    """One open stream's mailbox watch: envelopes stored by this process since the stream last
    looked (so it can send them without querying the database), whether it must look in the
    database instead, and whether its keepalive is due.

    Waiting is a bare future and the keepalive a timer on its own fixed schedule, not a
    timeout around each wait: with a thousand streams woken several times a second, building
    and cancelling a timeout per wake (each leaving a cancelled timer in the loop's heap) was
    a fifth of what delivering a pushed message cost.
    """

    def __init__(self, keepalive_s: float | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.pushed: list[Any] = []
        self.must_fetch = False  # woken without the envelopes: look in the database
        self.keepalive_due = False
        self._keepalive_s = keepalive_s
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._schedule_keepalive()

    def drain(self) -> tuple[list[Any], bool]:
        """Pushed envelopes and whether a database read is needed too; resets both."""
        pushed, self.pushed = self.pushed, []
        must_fetch, self.must_fetch = self.must_fetch, False
        return pushed, must_fetch

    def keepalive_sent(self) -> None:
        """The stream handled a due keepalive: schedule the next one."""
        self.keepalive_due = False
        self._schedule_keepalive()

    async def wait(self) -> None:
        """Until something was pushed, a read is asked for, or the keepalive is due."""
        if self.pushed or self.must_fetch or self.keepalive_due:
            return
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _schedule_keepalive(self) -> None:
        if self._keepalive_s is not None:
            # Each stream at its own moment: streams that connected together would otherwise
            # all re-read their mailboxes in the same instant, a burst that stalled requests.
            delay = self._keepalive_s * random.uniform(0.75, 1.0)
            self._timer = self.loop.call_later(delay, self._keepalive)

    def _keepalive(self) -> None:
        self.keepalive_due = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _push(self, items: list[Any] | None) -> None:  # runs on the stream's own loop
        if items is None:
            self.must_fetch = True
        else:
            self.pushed.extend(items)
        self._wake()


def _push_all(targets: list[tuple[Subscription, Any]]) -> None:
    for sub, batch in targets:
        sub._push(batch)


class MailboxNotifier:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()
        # Names this relay's announcements, so that it can ignore its own: its streams were
        # already handed the envelopes, and re-reading every woken mailbox doubled the work.
        self.origin = secrets.token_hex(4)

    def subscribe(
        self, handle: str, keepalive_s: float | None = None, limit: int | None = None
    ) -> Subscription | None:
        """Watch ``handle``'s mailbox; the watch's keepalive falls due about every
        ``keepalive_s`` seconds (never, if None). None if ``handle`` already has ``limit``
        watches in this process (checked and added at once, so concurrent streams cannot
        all slip under it). Call from the stream's event loop."""
        sub = Subscription(keepalive_s)
        with self._lock:
            subs = self._subs[handle]
            if limit is not None and len(subs) >= limit:
                sub.close()
                return None
            subs.add(sub)
        return sub

    def unsubscribe(self, handle: str, sub: Subscription) -> None:
        sub.close()
        with self._lock:
            subs = self._subs.get(handle, set())
            subs.discard(sub)
            if not subs:
                self._subs.pop(handle, None)

    def open_streams(self) -> int:
        """How many streams are open in this process (safe from any thread)."""
        with self._lock:
            return sum(len(subs) for subs in self._subs.values())

    def listening(self, handle: str) -> bool:
        """Whether a stream of ``handle`` is open in this process (safe from any thread)."""
        return handle in self._subs

    def publish(self, handles: set[str]) -> None:
        """Tell every stream of ``handles`` to look in the database; safe from any thread."""
        self._deliver({h: None for h in handles})

    def push(self, items: dict[str, list[Any]]) -> None:
        """Hand freshly committed envelopes to the streams of their recipients in this
        process; safe from any thread. Streams still re-read the database on connect and at
        every keepalive, so nothing depends on a push arriving."""
        self._deliver(items)  # type: ignore[arg-type]

    def _deliver(self, items: dict[str, list[Any] | None]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Subscription, Any]]] = {}
        with self._lock:
            for h in items:
                for sub in self._subs.get(h, ()):
                    by_loop.setdefault(sub.loop, []).append((sub, items[h]))
        # One wake-up per event loop, not per stream: a batch for a thousand recipients
        # would otherwise write to the loop's self-pipe a thousand times.
        for loop, targets in by_loop.items():
            loop.call_soon_threadsafe(_push_all, targets)

    def wake_all(self) -> None:
        """Wake every stream, e.g. so they notice the relay is shutting down."""
        self.publish(set(self._subs))


CHANNEL = "sealpost_mailbox"
SeqRange = tuple[int, int]
# NOTIFY payloads must stay under 8000 bytes; handles are at most 32 characters.
_HANDLES_PER_NOTIFY = 200


def announce(
    session: Session, handles: set[str], origin: str = "", seqs: SeqRange | None = None
) -> None:
    """Tell every relay process sharing this PostgreSQL database that these mailboxes have
    new mail. Sent inside the caller's transaction, so it is delivered only if it commits.
    ``origin`` is the announcing relay's ``MailboxNotifier.origin`` (it ignores its own);
    ``seqs``, when known, the lowest and highest number of the new envelopes, so that the
    others read just those. A no-op on SQLite, where only one relay process can run.

    Payload: ``origin|first-last|handle,handle,...`` (the range empty when not known).
    """
    if not handles or session.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted(handles)
    span = f"{seqs[0]}-{seqs[1]}" if seqs else ""
    for i in range(0, len(ordered), _HANDLES_PER_NOTIFY):
        payload = f"{origin}|{span}|" + ",".join(ordered[i : i + _HANDLES_PER_NOTIFY])
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )


class PostgresWakeups:
    """Listens for other processes' announcements and wakes this process's streams.

    The database stays the source of truth: a lost notification only delays a stream until
    its next keepalive, when it looks again anyway.
    """

    def __init__(
        self,
        url: str,
        notifier: MailboxNotifier,
        fetch: Callable[[list[str], SeqRange | None], dict[str, list[Any]] | None] | None = None,
    ) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.notifier = notifier
        # Reads the pending envelopes of several mailboxes (those numbered within the range,
        # when one is given) in one query (None: too many), so that streams here are handed
        # them instead of each re-reading its own mailbox.
        self.fetch = fetch
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
                            origin, seqs, handles = parse_announcement(note.payload)
                            if origin != self.notifier.origin:
                                self._wake(handles, seqs)
            except Exception:
                log.warning("LISTEN connection lost; reconnecting in %.1f s", delay)
                self.listening.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _wake(self, handles: list[str], seqs: SeqRange | None = None) -> None:
        """Wake the streams open here for ``handles``, with their pending envelopes if one
        query can fetch them; otherwise tell them to look in the database themselves."""
        local = [h for h in handles if self.notifier.listening(h)]
        if not local:
            return
        items = None
        if self.fetch is not None:
            try:
                items = self.fetch(local, seqs)
            except Exception:
                log.warning("reading woken mailboxes failed; streams will read their own")
        if items is None:
            self.notifier.publish(set(local))
        else:
            self.notifier.push({h: items.get(h, []) for h in local})


def parse_announcement(payload: str) -> tuple[str, SeqRange | None, list[str]]:
    """An announcement's origin, range of numbers (None: read everything pending), handles."""
    origin, _, rest = payload.partition("|")
    span, _, handles = rest.partition("|")
    first, _, last = span.partition("-")
    seqs = (int(first), int(last)) if first.isdigit() and last.isdigit() else None
    return origin, seqs, handles.split(",")
