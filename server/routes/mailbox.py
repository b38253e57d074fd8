"""A person's own mailbox: page through it, stream it (SSE), acknowledge what was stored."""

import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session
from starlette.types import Receive, Scope, Send

from server import frames
from server.auth import CurrentAccount, DbSession
from server.errors import ApiError
from server.frames import Frame
from server.hot_routes import HotRoute
from server.known_accounts import KnownAccount
from server.mailbox import acknowledge, pending, to_envelope
from server.ratelimit import retry_after_header
from server.transactions import TransactionalRoute, run_read
from shared.api import AckRequest, AckResponse, MailboxItem, MailboxPage
from shared.identifiers import HANDLE_PATTERN
from shared.version import MAX_INT64

router = APIRouter(prefix="/v1/mailboxes", tags=["mailbox"], route_class=TransactionalRoute)

# A client that never acks gets no more than this many envelopes ahead of its acks.
MAX_UNACKED_PER_STREAM = 5000
# Pushed envelopes skip the database; after this many unacked, read it to prune.
PRUNE_AFTER = 1000

HandlePath = Annotated[str, Path(pattern=HANDLE_PATTERN)]


def _own(account: KnownAccount, handle: str) -> None:
    if account.handle != handle:
        raise ApiError(403, "forbidden", f"{account.handle} may not touch the mailbox of {handle}.")


@router.get("/{handle}")
def read_page(
    handle: HandlePath,
    account: CurrentAccount,
    session: DbSession,
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> MailboxPage:
    """Pending envelopes after ``after`` (a ``seq``), oldest first. They stay until acked."""
    _own(account, handle)
    rows = pending(session, handle, after, limit or request.app.state.settings.page_limit)
    items = [MailboxItem(seq=r.seq or 0, envelope=to_envelope(r)) for r in rows]
    return MailboxPage(items=items, next_after=items[-1].seq if items else after)


@router.post("/{handle}/ack")
def ack(
    handle: HandlePath,
    body: AckRequest,
    account: CurrentAccount,
    session: DbSession,
    request: Request,
) -> AckResponse:
    """Remove envelopes the client has stored; ids not pending in this mailbox change nothing."""
    _own(account, handle)
    acked, unknown = acknowledge(session, handle, body.ids, request.app.state.clock.now_ms())
    return AckResponse(acked=acked, unknown=unknown)


# Clients ack every few seconds while messages flow: served lean (server/hot_routes.py).
HOT_ROUTES = [
    HotRoute(
        "POST",
        re.compile(rf"/v1/mailboxes/(?P<handle>{HANDLE_PATTERN.strip('^$')})/ack"),
        AckRequest,
        ack,
    )
]


@router.get(
    "/{handle}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    handle: HandlePath, account: CurrentAccount, request: Request
) -> StreamingResponse:
    """Server-sent events: every pending envelope, then new ones as they arrive.

    Resuming is reconnecting: a new connection sends every envelope still unacked, including
    ones received but not yet acked (the client's store ignores those). A ``Last-Event-ID`` is
    deliberately not used to skip anything: on PostgreSQL a lower ``seq`` can commit after a
    higher one, and skipping by cursor could then hide it.
    """
    _own(account, handle)
    state = request.app.state
    page = state.settings.page_limit
    # Taken here, before the answer starts, so that one over the cap is a clear 429.
    cap = state.settings.max_streams_per_account
    sub = state.notifier.subscribe(handle, state.settings.keepalive_s, limit=cap)
    if sub is None:
        raise ApiError(
            429,
            "too_many_streams",
            f"{handle} already has {cap} delivery streams open on this relay, as many as one "
            "account may; close one (a stream the client dropped is noticed at its next "
            "keepalive) and retry.",
            headers=retry_after_header(state.settings.keepalive_s),
        )

    def fetch(exclude: set[int]) -> tuple[set[int], list[Frame]]:
        """The numbers of everything pending, and frames of those not in ``exclude``."""
        # Enough rows to get past the ones already sent (and not yet acked) on this stream;
        # only new ones are rendered, since a busy stream re-reads dozens it already sent.
        with Session(state.read_engine) as session:
            rows = pending(session, handle, 0, page + len(exclude))
        return {r.seq for r in rows}, [frames.from_row(r) for r in rows if r.seq not in exclude]

    async def events() -> AsyncIterator[bytes]:
        sent: set[int] = set()  # sent on this connection and not yet acked
        must_read = True  # the database, not pushes, decides what is pending
        try:
            yield b"retry: 2000\nevent: ready\ndata: {}\n\n"
            while not state.shutting_down:
                if must_read:
                    sub.drain()  # anything pushed until now is covered by this read
                    # A thousand streams re-read at every keepalive: on SQLite, thread
                    # hand-offs cost more than the reads (server/transactions.py).
                    waiting, fresh = await run_read(state, fetch, sent)
                    sent &= waiting  # forget acked ones; pending ones are not sent again
                    room = max(0, min(page, MAX_UNACKED_PER_STREAM - len(sent)))
                    fresh = fresh[:room]
                    if fresh:
                        # One write for all of them: per-frame writes cost a system call each.
                        yield b"".join(f.data for f in fresh)
                        sent.update(f.seq for f in fresh)
                    if fresh and len(fresh) == room:
                        continue  # maybe more pending: read again without waiting
                    must_read = False
                await sub.wait()
                if sub.keepalive_due:
                    # On its own schedule, busy or not: also a slow safety net for anything
                    # a push missed. A client that went away is noticed by the server (the
                    # response listens for the disconnect, or this write fails), so no
                    # check here: asking for it cost as much as the re-read.
                    sub.keepalive_sent()
                    yield b": keepalive\n\n"
                    must_read = True
                    continue
                pushed, must_read = sub.drain()
                fresh = [f for f in pushed if f.seq not in sent]
                if len(sent) + len(fresh) > PRUNE_AFTER:
                    must_read = True  # let a read forget acked ones and apply the cap
                    continue
                if fresh:
                    yield b"".join(f.data for f in fresh)
                    sent.update(f.seq for f in fresh)
        finally:
            state.notifier.unsubscribe(handle, sub)

    return _Stream(
        events(),
        closed=lambda: state.notifier.unsubscribe(handle, sub),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class _Stream(StreamingResponse):
    """A stream whose watch is given back however the response ends: an events generator
    that never started (the client left first) runs no ``finally`` of its own."""

    def __init__(self, content: AsyncIterator[bytes], closed: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._closed = closed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._closed()
