"""Wakes open delivery streams when their mailbox gets mail.

The database stays the source of truth: a wake-up only tells a stream to look again, so a
missed or spurious wake-up never loses or duplicates anything.
"""

import asyncio
import threading
from collections import defaultdict


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
