"""Privacy signals: campaign keys, blind token issuance (authenticated), anonymous reports."""

from fastapi import APIRouter, Request

from server import signals
from server.auth import CurrentAccount, DbSession
from server.errors import ApiError
from server.transactions import TransactionalRoute
from shared.api import (
    CampaignKey,
    SignalBatch,
    SignalResult,
    TokenBatchRequest,
    TokenBatchResponse,
    TokenRequest,
    TokenResponse,
)
from shared.auth import AUTH_HEADERS
from shared.encoding import b64decode, b64encode

router = APIRouter(prefix="/v1/signals", tags=["signals"], route_class=TransactionalRoute)


@router.get("/keys/{campaign_id}")
def campaign_key(campaign_id: str, session: DbSession) -> CampaignKey:
    """The campaign's issuer public key. Unauthenticated, so a client can fetch it over the
    anonymous channel too and check it is the one its tokens were proven against."""
    key = signals.campaign_key(session, campaign_id)
    return CampaignKey(campaign_id=campaign_id, public_key=b64encode(key.public_key))


@router.post("/tokens")
def issue_token(
    body: TokenRequest, account: CurrentAccount, session: DbSession, request: Request
) -> TokenResponse:
    """Evaluate a blinded token for a campaign copy you received (one per copy)."""
    [issued] = signals.issue_many(
        session, account.handle, [_blinded(body)], request.app.state.clock.now_ms()
    )
    return _answer(*issued)


@router.post("/tokens/batch")
def issue_tokens(
    body: TokenBatchRequest, account: CurrentAccount, session: DbSession, request: Request
) -> TokenBatchResponse:
    """Several tokens at once, one per campaign copy: all issued, or none (the error names
    the item). The relay learns nothing it did not know: it delivered these copies to you."""
    items = [_blinded(item) for item in body.tokens]
    issued = signals.issue_many(session, account.handle, items, request.app.state.clock.now_ms())
    return TokenBatchResponse(tokens=[_answer(*one) for one in issued])


def _blinded(item: TokenRequest) -> tuple[str, bytes]:
    try:
        return item.msg_id, b64decode(item.blinded_element)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", "blinded_element must be base64") from exc


def _answer(campaign_id: str, evaluated: bytes, proof: bytes, public_key: bytes) -> TokenResponse:
    return TokenResponse(
        campaign_id=campaign_id,
        evaluated_element=b64encode(evaluated),
        proof=b64encode(proof),
        public_key=b64encode(public_key),
    )


@router.post("")
def report(body: SignalBatch, request: Request, session: DbSession) -> SignalResult:
    """Anonymous interaction reports. Refuses any request that carries credentials: this
    channel must never be linkable to an account."""
    sent = [h for h in AUTH_HEADERS if h in request.headers]
    if sent:
        raise ApiError(
            400,
            "credentials_on_anonymous_channel",
            f"Signals are anonymous; send them without {', '.join(sent)}.",
        )
    outcomes = signals.redeem(session, body.reports)
    return SignalResult(
        counted=sum(o is None for o in outcomes),
        refused={i: o for i, o in enumerate(outcomes) if o is not None},
    )
