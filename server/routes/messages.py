"""Submitting envelopes, one at a time or in batches."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from server.auth import CurrentAccount, DbSession
from server.errors import ApiError
from server.json_body import documented_body, json_body
from server.mailbox import StoreOutcome, store_envelopes
from server.ratelimit import retry_after_header
from server.transactions import TransactionalRoute
from shared.api import BatchRequest, BatchResponse, SendResult
from shared.envelope import Envelope

router = APIRouter(prefix="/v1/messages", tags=["messages"], route_class=TransactionalRoute)

_STATUS_OF = {
    "sender_mismatch": 403,
    "unknown_recipient": 404,
    "unknown_template": 404,
    "unknown_campaign": 404,
    "id_conflict": 409,
    "campaign_cancelled": 409,
    "campaign_stopped": 409,
    "template_paused": 403,
    "template_disabled": 403,
    "budget_exhausted": 402,
    "insufficient_balance": 402,
    "outside_service_window": 403,
    "too_many_to_recipient": 429,
    "request_pending": 403,  # until the person accepts the sender's message request
    "too_many_requests": 429,
    "mailbox_full": 429,
    "duplicate_recipient": 409,
}


def _charge_chat(request: Request, sender: str, envelopes: list[Envelope]) -> None:
    """Each chat envelope costs one token of the sender's chat bucket: a batch of 1,000 is a
    thousand messages, not one request."""
    cost = sum(e.kind == "chat" for e in envelopes)
    if not cost:
        return
    wait = request.app.state.chat_limits.take(sender, cost)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"Too many chat messages from {sender}: this request holds {cost} envelopes, "
            f"each costing one of {request.app.state.settings.chat_burst} at most at once; "
            f"retry after {wait:.1f} s or send fewer at a time.",
            headers=retry_after_header(wait),
        )


def _after_store(request: Request, outcome: StoreOutcome) -> None:
    request.app.state.notifier.push(outcome.pushed)


@router.post("", status_code=202, responses={200: {"model": SendResult}})
def send_one(
    envelope: Envelope,
    account: CurrentAccount,
    session: DbSession,
    request: Request,
    response: Response,
) -> SendResult:
    """Store one envelope for its recipient. A retry of the same envelope answers ``duplicate``."""
    state = request.app.state
    _charge_chat(request, account.handle, [envelope])
    outcome = store_envelopes(
        session,
        account,
        [envelope],
        state.routing,
        state.clock.now_ms(),
        listening=state.notifier.listening,
        origin=state.notifier.origin,
        directory=state.accounts,
    )
    [result] = outcome.results
    if result.error:
        raise ApiError(
            _STATUS_OF.get(result.error.code, 422), result.error.code, result.error.message
        )
    if result.status == "duplicate":
        response.status_code = 200
    _after_store(request, outcome)
    return result


@router.post("/batch", openapi_extra=documented_body(BatchRequest))
def send_batch(
    batch: Annotated[BatchRequest, Depends(json_body(BatchRequest))],
    account: CurrentAccount,
    session: DbSession,
    request: Request,
) -> BatchResponse:
    """Store up to 1,000 envelopes, each with its own result: a refused envelope (unknown
    recipient, id conflict, budget) spoils nothing. A malformed one fails the batch with 422
    naming its index, since the whole body must match the schema."""
    state = request.app.state
    _charge_chat(request, account.handle, batch.envelopes)
    outcome = store_envelopes(
        session,
        account,
        batch.envelopes,
        state.routing,
        state.clock.now_ms(),
        listening=state.notifier.listening,
        origin=state.notifier.origin,
        directory=state.accounts,
    )
    _after_store(request, outcome)
    results = outcome.results
    counts = {s: sum(r.status == s for r in results) for s in ("accepted", "duplicate", "rejected")}
    return BatchResponse(results=results, **counts)
