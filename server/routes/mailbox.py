"""A person's own mailbox: page through it, stream it (SSE), acknowledge what was stored."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from server.auth import CurrentAccount, DbSession
from server.errors import ApiError
from server.mailbox import acknowledge, pending, to_envelope
from server.models import Account
from shared.api import AckRequest, AckResponse, MailboxItem, MailboxPage
from shared.identifiers import HANDLE_PATTERN

router = APIRouter(prefix="/v1/mailboxes", tags=["mailbox"])

HandlePath = Annotated[str, Path(pattern=HANDLE_PATTERN)]


def _own(account: Account, handle: str) -> None:
    if account.handle != handle:
        raise ApiError(403, "forbidden", f"{account.handle} may not touch the mailbox of {handle}.")


@router.get("/{handle}")
def read_page(
    handle: HandlePath,
    account: CurrentAccount,
    session: DbSession,
    request: Request,
    after: Annotated[int, Query(ge=0)] = 0,
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


def _frame(item: MailboxItem) -> bytes:
    data = json.dumps(item.model_dump(mode="json"), separators=(",", ":"))
    return f"id: {item.seq}\nevent: envelope\ndata: {data}\n\n".encode()


@router.get(
    "/{handle}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    handle: HandlePath,
    account: CurrentAccount,
    request: Request,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: every pending envelope after the cursor, then new ones as they come.

    Resume after a disconnect with ``Last-Event-ID`` (or ``?after=``). Delivery is at least
    once: an envelope is sent again on a later connection until it is acked.
    """
    _own(account, handle)
    cursor = after or 0
    if last_event_id and last_event_id.isdigit():
        cursor = max(cursor, int(last_event_id))
    state = request.app.state

    def fetch(after_seq: int) -> list[MailboxItem]:
        with Session(state.engine) as session:
            rows = pending(session, handle, after_seq, state.settings.page_limit)
            return [MailboxItem(seq=r.seq or 0, envelope=to_envelope(r)) for r in rows]

    async def frames() -> AsyncIterator[bytes]:
        nonlocal cursor
        wake = state.notifier.subscribe(handle)
        try:
            yield f"retry: 2000\nevent: ready\ndata: {json.dumps({'after': cursor})}\n\n".encode()
            while not state.shutting_down:
                wake.clear()  # before the fetch, so mail stored during it wakes the next wait
                items = await anyio.to_thread.run_sync(fetch, cursor)
                for item in items:
                    yield _frame(item)
                    cursor = item.seq
                if len(items) == state.settings.page_limit:
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), timeout=state.settings.keepalive_s)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keepalive\n\n"
        finally:
            state.notifier.unsubscribe(handle, wake)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
