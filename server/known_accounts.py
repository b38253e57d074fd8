"""A per-process cache of registered accounts, for authenticating requests without the ORM.

Safe because an account never changes once registered (handle, kind, country and keys are
fixed; there is no key rotation or deletion), so a cached copy can only be missing, never
stale. Loading one through the ORM cost more CPU than the rest of a small request.
"""

import threading
from dataclasses import dataclass, fields

from sqlalchemy import select
from sqlmodel import Session

from server.models import Account
from server.sql_lists import one_of

_TABLE = Account.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class KnownAccount:
    """A registered account as requests see it: read-only, shared between threads.

    A plain dataclass, because building an ORM ``Account`` costs ~100 µs (a thousand of
    them per audience lookup)."""

    handle: str
    kind: str
    display_name: str
    country: str | None
    sign_key: str
    box_key: str
    verified: bool
    created_at: int


# The table's columns in KnownAccount's field order (handle first).
_COLUMNS = [_TABLE.c[f.name] for f in fields(KnownAccount)]


class KnownAccounts:
    """Handle -> its ``KnownAccount``; bounded so a flood of handles cannot grow it forever."""

    def __init__(self, limit: int = 200_000) -> None:
        self._accounts: dict[str, KnownAccount] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def get_many(self, session: Session, handles: list[str]) -> dict[str, KnownAccount]:
        """The registered ones among ``handles`` (one query for those not cached yet)."""
        found = {h: a for h in handles if (a := self._accounts.get(h)) is not None}
        missing = [h for h in dict.fromkeys(handles) if h not in found]
        if missing:
            rows = session.execute(select(*_COLUMNS).where(one_of(_TABLE.c.handle, missing)))
            # Positional: building each from a row's mapping cost twice as much.
            loaded = {row[0]: KnownAccount(*row) for row in rows}
            with self._lock:
                if len(self._accounts) + len(loaded) > self._limit:
                    self._accounts.clear()
                self._accounts.update(loaded)
            found.update(loaded)
        return found

    def cached(self, handle: str) -> KnownAccount | None:
        """The account if this process has it in memory (no database work)."""
        return self._accounts.get(handle)

    def get(self, session: Session, handle: str) -> KnownAccount | None:
        """The account, from memory or (once) from the database; None if not registered."""
        account = self._accounts.get(handle)
        if account is not None:
            return account
        row = session.execute(select(*_COLUMNS).where(_TABLE.c.handle == handle)).first()
        if row is None:
            return None  # not cached: it may be registered a moment later
        account = KnownAccount(*row)
        with self._lock:
            if len(self._accounts) >= self._limit:
                self._accounts.clear()
            self._accounts[handle] = account
        return account
