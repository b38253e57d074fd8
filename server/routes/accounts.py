"""Registration and the public key directory."""

import json
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy.exc import IntegrityError

from server.auth import CurrentAccount, DbSession, SignedRequest, signed_request, verify_signed
from server.errors import ApiError
from server.known_accounts import KnownAccount
from server.models import Account
from server.ratelimit import retry_after_header
from server.reserved_handles import reserved_word
from server.transactions import TransactionalRoute
from shared.api import AccountInfo, LookupRequest, LookupResponse, RegisterAccount
from shared.identifiers import HANDLE_PATTERN

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=TransactionalRoute)


def _info(account: Account | KnownAccount) -> AccountInfo:
    # Stored values were validated at registration; construct, don't re-validate.
    return AccountInfo.model_construct(
        handle=account.handle,
        kind=account.kind,
        display_name=account.display_name,
        verified=account.verified,
        sign_key=account.sign_key,
        box_key=account.box_key,
    )


@lru_cache(maxsize=200_000)
def _info_json(account: KnownAccount) -> bytes:
    """The directory entry as served, built once per account (accounts never change).

    The same JSON as ``_info(account).model_dump_json()`` (a test checks), written directly:
    building the model, or even a dict for json.dumps, was most of a cold audience lookup's
    CPU. Handles, kinds and keys were validated at registration and need no escaping.
    """
    name = json.dumps(account.display_name, ensure_ascii=False)
    verified = "true" if account.verified else "false"
    return (
        f'{{"handle":"{account.handle}","kind":"{account.kind}","display_name":{name},'
        f'"verified":{verified},"sign_key":"{account.sign_key}","box_key":"{account.box_key}"}}'
    ).encode()


@router.post("", status_code=201)
def register(
    body: RegisterAccount,
    request: Request,
    signed: Annotated[SignedRequest, Depends(signed_request)],
    session: DbSession,
) -> AccountInfo:
    """Register a handle with its public keys; the request is signed by the key it registers."""
    if signed.handle != body.handle:
        raise ApiError(401, "bad_signature", "Sign the registration as the handle it registers.")
    verify_signed(request, signed, body.sign_key, session)
    looks_like = reserved_word(body.handle)
    if looks_like is not None:
        raise ApiError(
            403,
            "reserved_handle",
            f"'{body.handle}' is reserved: it could pass for the platform's @{looks_like}. "
            "Choose another handle.",
        )
    if session.get(Account, body.handle) is not None:
        raise ApiError(409, "handle_taken", f"'{body.handle}' is taken; choose another handle.")
    _limit_registrations(request)
    settings = request.app.state.settings
    account = Account(
        handle=body.handle,
        kind=body.kind,
        display_name=body.display_name,
        country=body.country,
        sign_key=body.sign_key,
        box_key=body.box_key,
        verified=body.kind == "business" and settings.auto_verify_businesses,
        created_at=request.app.state.clock.now_ms(),
    )
    session.add(account)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ApiError(409, "handle_taken", f"'{body.handle}' is taken; choose another.") from exc
    return _info(account)


def _limit_registrations(request: Request) -> None:
    """New accounts per client address: a blocked sender cannot simply register again and
    again (the limit is charged only for a registration that would otherwise succeed)."""
    limits = request.app.state.registration_limits
    if limits is None:
        return
    address = request.client.host if request.client else "unknown"
    wait = limits.take(address)
    if wait:
        settings = request.app.state.settings
        raise ApiError(
            429,
            "registration_limited",
            f"Too many new accounts from this address (at most {settings.registration_burst} "
            f"at once, {settings.registrations_per_hour:g} an hour); retry after {wait:.0f} s.",
            headers=retry_after_header(wait),
        )


@router.get("/{handle}", response_model=AccountInfo)
def lookup(
    handle: Annotated[str, Path(pattern=HANDLE_PATTERN)],
    _: CurrentAccount,
    session: DbSession,
    request: Request,
) -> Response:
    """A handle's public keys and display name."""
    account = request.app.state.accounts.get(session, handle)
    if account is None:
        raise ApiError(404, "unknown_handle", f"No account '{handle}' on this relay.")
    return Response(_info_json(account), media_type="application/json")


@router.post("/lookup", response_model=LookupResponse)
def lookup_many(
    body: LookupRequest, _: CurrentAccount, session: DbSession, request: Request
) -> Response:
    """Up to 1,000 handles' keys at once (a campaign's audience)."""
    found = request.app.state.accounts.get_many(session, body.handles)
    handles = list(dict.fromkeys(body.handles))
    # Joined from cached entries: validating and serialising 1,000 models per request was
    # most of a campaign's audience lookup.
    accounts = b",".join(_info_json(found[h]) for h in handles if h in found)
    unknown = json.dumps([h for h in handles if h not in found]).encode()
    return Response(
        b'{"accounts":[' + accounts + b'],"unknown":' + unknown + b"}",
        media_type="application/json",
    )
