"""Request nonces held in memory while the database cannot store them (its disk is full).

Every signed request's nonce is written to the database, so that no one can replay it
(server/auth.py). When that write fails for want of space, refusing the request would stop
people even reading mail already stored; accepting it without a record would let anyone
replay it. So the nonce is kept here, in this process, for twice the signing window (after
which its timestamp is refused anyway), and every request's nonce is checked here as well
as in the database while anything is kept. A relay of several processes over PostgreSQL
keeps one such memory per process: during an outage a replay to another process is not
caught (docs/deploy.md says so).
"""

import threading


class NoncesInMemory:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._seen)

    def seen(self, handle: str, nonce: str, now_ms: int, window_ms: int) -> bool:
        """Whether this nonce was kept here (forgetting those past twice the window)."""
        with self._lock:
            self._forget(now_ms - 2 * window_ms)
            return (handle, nonce) in self._seen

    def keep(self, handle: str, nonce: str, now_ms: int) -> None:
        with self._lock:
            self._seen[(handle, nonce)] = now_ms

    def _forget(self, before_ms: int) -> None:
        if self._seen and min(self._seen.values()) < before_ms:
            self._seen = {k: t for k, t in self._seen.items() if t >= before_ms}
