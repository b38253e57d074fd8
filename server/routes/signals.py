"""Privacy signals: campaign keys, blind token issuance (authenticated), anonymous reports."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session

from server import signals, token_log
from server.auth import CurrentAccount, DbSession
from server.errors import ApiError
from server.json_body import documented_body, parse_body
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
from shared.shuffled import KEY_HEADER, SIGNATURE_HEADER, ShuffledBatch, verify_batch
from shared.token_log import KeyLog

router = APIRouter(prefix="/v1/signals", tags=["signals"], route_class=TransactionalRoute)


@router.get("/keys/{campaign_id}")
def campaign_key(campaign_id: str, session: DbSession) -> CampaignKey:
    """The campaign's issuer public key. Unauthenticated, so a client can fetch it over the
    anonymous channel too and check it is the one its tokens were proven against."""
    key = signals.campaign_key(session, campaign_id)
    return CampaignKey(campaign_id=campaign_id, public_key=b64encode(key.public_key))


@router.get("/key-log")
def key_log(session: DbSession) -> KeyLog:
    """Every campaign's issuer public key, in the signed, append-only token key log.
    Unauthenticated: devices fetch it through the shuffler (which serves everyone the same
    copy), check that it extends the one they saw before, and use a token only if the key
    it was proven against is the one listed here for its campaign."""
    return token_log.current(session)


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
    """Anonymous interaction reports sent straight to the relay: closed unless the operator
    set ``allow_direct_signals``, since the relay would see when and from where each came.
    Refuses any request that carries credentials: this channel must never be linkable to an
    account."""
    settings = request.app.state.settings
    if not settings.allow_direct_signals:
        where = settings.shuffler_url or "the address the relay's operator publishes"
        raise ApiError(
            403,
            "use_the_shuffler",
            f"Reports go through the shuffler at {where} (POST /v1/reports, one report per "
            "request), not straight to the relay, which would see when and from where each "
            "arrived.",
        )
    _no_credentials(request)
    return _redeemed(session, body.reports)


def _no_credentials(request: Request) -> None:
    sent = [h for h in AUTH_HEADERS if h in request.headers]
    if sent:
        raise ApiError(
            400,
            "credentials_on_anonymous_channel",
            f"Signals are anonymous; send them without {', '.join(sent)}.",
        )


def _redeemed(session: Session, reports: list[str]) -> SignalResult:
    outcomes = signals.redeem(session, reports)
    return SignalResult(
        counted=sum(o is None for o in outcomes),
        refused={i: o for i, o in enumerate(outcomes) if o is not None},
    )


async def _signed_batch(request: Request) -> ShuffledBatch:
    """The batch, once its signature shows it comes from a shuffler this relay trusts. Runs
    before the body is parsed, so an unsigned request costs no JSON work."""
    _no_credentials(request)
    trusted = request.app.state.shuffler_keys
    if not trusted:
        raise ApiError(
            403,
            "no_shuffler_configured",
            "This relay trusts no shuffler (set SEALPOST_RELAY_SHUFFLER_KEYS).",
        )
    body = await request.body()
    key = request.headers.get(KEY_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not verify_batch(key, signature, body, trusted):
        raise ApiError(
            401,
            "bad_shuffler_signature",
            f"A batch must be signed ({SIGNATURE_HEADER}) by a shuffler key ({KEY_HEADER}) "
            "this relay is configured with.",
        )
    return parse_body(ShuffledBatch, body)


@router.post("/shuffled", openapi_extra=documented_body(ShuffledBatch))
def shuffled(
    batch: Annotated[ShuffledBatch, Depends(_signed_batch)], session: DbSession
) -> SignalResult:
    """A shuffler's batch: reports in random order, from devices the relay never sees. Each
    is counted as ``POST /v1/signals`` would; a resent batch counts nothing (spent tokens)."""
    return _redeemed(session, batch.reports)
