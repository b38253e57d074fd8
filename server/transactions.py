"""Every request's database transaction ends when its endpoint returns.

Why: on SQLite a transaction holds the process's write lock (server/db.py). FastAPI closes a
request's session only after validating and sending the response, each step on the shared
thread pool; with enough requests waiting on the lock, the holder would never get a thread
back to finish, and the relay would stall for good. Ending the transaction inside the
endpoint's own thread, before it returns, makes that impossible (and keeps locks short on
PostgreSQL too).
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlmodel import Session


def _ending_transactions(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        sessions = [v for v in (*args, *kwargs.values()) if isinstance(v, Session)]
        try:
            result = endpoint(*args, **kwargs)
        except BaseException:
            for session in sessions:
                session.rollback()
            raise
        for session in sessions:
            # Writes were committed by the endpoint; what is left is a read, and committing
            # it (unlike a rollback) keeps the loaded objects usable for the response.
            session.commit()
        return result

    return run


class TransactionalRoute(APIRoute):
    """The route class of every relay router (``APIRouter(route_class=...)``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _ending_transactions(endpoint)
        super().__init__(path, endpoint, **kwargs)
