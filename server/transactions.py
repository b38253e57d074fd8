"""Every request's database work runs in one go and ends before its endpoint returns.

Where: FastAPI runs each sync dependency, the sync endpoint, and then the response's
validation on the thread pool, one hop each. At thousands of requests a second those hops (and
the GIL hand-offs they cause) cost more CPU than the requests' own work. So the relay's
dependencies are async and do no I/O, and this route class runs the endpoint (after turning a
:class:`~server.auth.Caller` into the verified account) in a single call (:func:`run_db_work`):

- on PostgreSQL, on a worker thread, so that requests overlap their network round trips;
- on SQLite, right on the event loop. Its calls take microseconds, writers take turns on one
  lock anyway, and the relay's Python runs on one core: a worker thread added only GIL
  hand-offs, a dozen context switches per request that cost more CPU than an ack's own work
  (2.2 ms of relay CPU per ack instead of 1.3). When another thread (the dispatcher, or a
  request that went to a thread) holds the write lock at that moment, the request goes to a
  thread after all rather than block the loop while it waits.

Why the transaction ends inside: on SQLite a transaction holds the process's write lock
(server/db.py). If a request's session were closed only after its response was sent, with
enough requests waiting on the lock the holder would never get a thread back to finish, and
the relay would stall for good. Ending the transaction on the endpoint's own thread, before it
returns, makes that impossible (and keeps locks short on PostgreSQL too).
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi.routing import APIRoute
from sqlmodel import Session

from server.auth import PENDING_NONCE, Caller
from server.db import request_session
from server.known_accounts import KnownAccount

T = TypeVar("T")


def authenticate_callers(kwargs: dict[str, Any], *, commit: bool = False) -> None:
    """Replace each Caller argument with its verified KnownAccount (blocking).

    The nonce goes into the endpoint's session, committed with its work, unless ``commit``
    (async endpoints, which hold no transaction open) or the endpoint has no session; then
    it is committed here, even when the request is refused (rate limited), so that a refused
    request cannot be replayed either.
    """
    for name, value in kwargs.items():
        if not isinstance(value, Caller):
            continue
        session = next((v for v in kwargs.values() if isinstance(v, Session)), None)
        if session is None:
            with request_session(value.request.app.state.engine) as own:
                kwargs[name] = _checked(value, own, commit=True)
        else:
            kwargs[name] = _checked(value, session, commit)


def _checked(caller: Caller, session: Session, commit: bool) -> KnownAccount:
    if not commit:
        return caller.authenticate(session)
    try:
        return caller.authenticate(session)
    finally:
        session.commit()  # the nonce, even when the request was refused


def run_in_transaction(endpoint: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``endpoint(**kwargs)`` and its callers' checks in one transaction, committed (or rolled
    back, keeping the nonce) before it returns. Blocking."""
    sessions = [v for v in kwargs.values() if isinstance(v, Session)]
    try:
        try:
            authenticate_callers(kwargs)
            result = endpoint(**kwargs)
        except BaseException:
            for session in sessions:
                session.rollback()  # the request's nonce is inserted again (server/auth.py)
                session.commit()  # and kept: a refused request is not replayable either
            raise
        for session in sessions:
            # Commits the nonce, and whatever the endpoint left uncommitted; committing a
            # read (unlike a rollback) keeps the loaded objects usable for the response.
            session.commit()
        return result
    finally:
        for session in sessions:
            if session.info.pop(PENDING_NONCE, None) is not None:
                session.rollback()  # a commit failed: never leave the write lock behind


def _db_threads(kwargs: dict[str, Any]) -> anyio.CapacityLimiter | None:
    """How many requests may run their database work at once in this process.

    On SQLite writers take turns anyway (server/db.py), and forty threads queueing for its
    lock and for the GIL cost far more than they overlap: a few suffice. PostgreSQL gets
    more, to overlap network round trips.
    """
    request = next((v.request for v in kwargs.values() if isinstance(v, Caller)), None)
    if request is None:
        return None
    state = request.app.state
    limiter = getattr(state, "db_threads", None)
    if limiter is None:
        sqlite = state.engine.dialect.name == "sqlite"
        limiter = state.db_threads = anyio.CapacityLimiter(4 if sqlite else 16)
    return limiter


async def run_db_work(endpoint: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``endpoint(**kwargs)`` in its transaction, here or on a worker thread (see above)."""
    if _runs_inline(kwargs):
        return run_in_transaction(endpoint, kwargs)
    return await anyio.to_thread.run_sync(
        run_in_transaction, endpoint, kwargs, limiter=_db_threads(kwargs)
    )


async def run_read(state: Any, read: Callable[..., T], *args: Any) -> T:
    """``read(*args)``, a read-only database call outside any request's transaction (a
    stream's mailbox read): on SQLite here, like requests; on PostgreSQL on a thread."""
    if state.write_lock is not None:
        return read(*args)
    return await anyio.to_thread.run_sync(read, *args)


def _runs_inline(kwargs: dict[str, Any]) -> bool:
    request = next((v.request for v in kwargs.values() if isinstance(v, Caller)), None)
    if request is None:
        return False
    lock = request.app.state.write_lock  # SQLite only
    return lock is not None and not lock.locked()


def _on_one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    async def run(**kwargs: Any) -> Any:
        return await run_db_work(endpoint, kwargs)

    return run


def _authenticated_first(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    async def run(**kwargs: Any) -> Any:
        if any(isinstance(v, Caller) for v in kwargs.values()):
            await anyio.to_thread.run_sync(
                functools.partial(authenticate_callers, kwargs, commit=True)
            )
        return await endpoint(**kwargs)

    return run


class TransactionalRoute(APIRoute):
    """The route class of every relay router (``APIRouter(route_class=...)``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.iscoroutinefunction(endpoint):
            endpoint = _authenticated_first(endpoint)
        else:
            endpoint = _on_one_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)


def caller_routes(routes: list[Any]) -> list[APIRoute]:
    """Every route among ``routes`` (included routers too) whose endpoint takes a caller
    (``CurrentAccount``)."""
    from server.auth import caller

    def takes_caller(dependant: Any) -> bool:
        return any(d.call is caller or takes_caller(d) for d in dependant.dependencies)

    found: list[APIRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)  # an included router (FastAPI 0.165)
        if included is not None:
            found += caller_routes(included.routes)
        elif isinstance(route, APIRoute) and takes_caller(route.dependant):
            found.append(route)
    return found


def unverified_routes(routes: list[Any]) -> list[str]:
    """The routes that take a caller but would not verify it: an endpoint declared under a
    router without :class:`TransactionalRoute` would get the unverified
    :class:`~server.auth.Caller`, and serve unsigned requests. ``create_app`` refuses to build
    an app with any."""
    return [
        f"{sorted(route.methods or ())} {route.path}"
        for route in caller_routes(routes)
        if not isinstance(route, TransactionalRoute)
    ]
