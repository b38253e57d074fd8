"""Acks that arrive together share one database transaction.

A thousand connected clients ack in waves: each a few seconds after its first unacked
message, so after a batch reaches them all, a thousand acks land within the same second. On
SQLite every transaction's commit writes each page it changed to the write-ahead log; one
mailbox page holds the envelopes of a dozen recipients, all of whom ack in the same wave, so
committing their acks one by one wrote the same pages a dozen times (0.7 ms of database work
per ack of 27 envelopes, against 0.45 ms in groups). On PostgreSQL a group is one thread
hop and one BEGIN/COMMIT instead of one per ack: sustained delivery with acks went from
~7,000 to ~8,800 messages/s in the benchmark.

How: the first ack to arrive schedules a flush for the event loop's next turn; every ack
whose request was read by then joins it. The group runs as one transaction, each request
checked (signature, nonce, rate) and served exactly as on its own. If any of them fails, the
group's transaction is rolled back, nothing of it was committed, and each request then runs
on its own (server/transactions.py), so a failing request answers exactly as it always did
and spoils no other. The answers go out only after the commit.

One cost of that fallback: the requests of a failed group spend their rate-limit tokens
twice. Only a request that fails (a replay, a bad signature, someone else's mailbox) can make
a group fail, and the extra token is one request's.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from server.auth import PENDING_NONCE
from server.db import request_session
from server.transactions import authenticate_callers, run_in_transaction

Outcome = tuple[bool, Any]  # (succeeded, result or exception)
# Most of the gain comes by ten requests a transaction (0.46 ms an ack; 0.42 at fifty).
MAX_GROUP = 64


@dataclass
class _Request:
    endpoint: Callable[..., Any]
    kwargs: dict[str, Any]  # as for run_db_work: a Caller, and the request's own Session
    answer: asyncio.Future[Any]


class GroupCommit:
    """One per relay; ``await run(endpoint, kwargs)`` instead of ``run_db_work``. On SQLite a
    group runs on the event loop (as requests do, server/transactions.py), on PostgreSQL on a
    worker thread."""

    def __init__(self, engine: Engine, write_lock: Any | None) -> None:
        self.engine = engine
        self.write_lock = write_lock
        self._waiting: list[_Request] = []
        self._flushes: set[asyncio.Task[None]] = set()  # kept, so none is collected early
        # For tests and curious operators: transactions that served several requests, and
        # groups that failed and were served one by one.
        self.groups = 0
        self.fallbacks = 0

    async def run(self, endpoint: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """``endpoint(**kwargs)`` in a transaction shared with the acks that arrived with it."""
        loop = asyncio.get_running_loop()
        request = _Request(endpoint, kwargs, loop.create_future())
        self._waiting.append(request)
        if len(self._waiting) == 1:
            # A task's first step runs on the loop's next turn: after every request already
            # read in this one has reached this point too.
            self._start_flush(loop)
        return await request.answer

    def _start_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        requests, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
        if self._waiting:
            # The rest on the loop's next turn: a wave of a thousand acks in one go would
            # hold the loop (and every stream) for a third of a second.
            self._start_flush(asyncio.get_running_loop())
        try:
            if self.write_lock is None or self.write_lock.locked():
                # PostgreSQL (network round trips), or another thread (the dispatcher) is
                # writing on SQLite: wait on a thread, not here.
                outcomes = await anyio.to_thread.run_sync(self._serve, requests)
            else:
                outcomes = self._serve(requests)
        except BaseException as exc:  # e.g. cancelled at shutdown: no request waits forever
            for request in requests:
                if not request.answer.done():
                    request.answer.set_exception(exc)
            raise
        for request, (ok, value) in zip(requests, outcomes, strict=True):
            if request.answer.done():
                continue  # the client went away meanwhile
            if ok:
                request.answer.set_result(value)
            else:
                request.answer.set_exception(value)

    def _serve(self, requests: list[_Request]) -> list[Outcome]:
        if len(requests) > 1:
            together = self._together(requests)
            if together is not None:
                self.groups += 1
                return together
            self.fallbacks += 1
        return [_alone(r) for r in requests]

    def _together(self, requests: list[_Request]) -> list[Outcome] | None:
        """Every request's result from one transaction; None if any failed (then nothing
        of the group was committed)."""
        with request_session(self.engine) as session:
            try:
                results = []
                for request in requests:
                    # A copy: the Caller must stay in the original for a run on its own.
                    kwargs = {
                        k: session if isinstance(v, Session) else v
                        for k, v in request.kwargs.items()
                    }
                    authenticate_callers(kwargs)
                    results.append(request.endpoint(**kwargs))
                session.commit()
            except Exception:
                # Not the failed request's nonce: it is inserted again when it runs alone.
                session.info.pop(PENDING_NONCE, None)
                session.rollback()
                return None
        return [(True, result) for result in results]


def _alone(request: _Request) -> Outcome:
    try:
        return True, run_in_transaction(request.endpoint, request.kwargs)
    except Exception as exc:
        return False, exc
