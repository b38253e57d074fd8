"""Signed-request authentication and per-account rate limiting, as FastAPI dependencies.

The dependencies here run on the event loop and touch no database: ``CurrentAccount`` hands
the endpoint a :class:`Caller`, which ``TransactionalRoute`` (server/transactions.py) turns
into the verified :class:`KnownAccount` on the endpoint's own worker thread, just before the
endpoint runs. One thread hop per request instead of one per dependency: at thousands of
requests a second those hops, not the work, were most of the relay's CPU.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from sqlalchemy import delete, event, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session
from starlette.types import Scope

from server.db import get_session
from server.errors import ApiError, is_storage_full
from server.known_accounts import KnownAccount
from server.models import RequestNonce
from server.ratelimit import retry_after_header
from shared.auth import (
    HANDLE_HEADER,
    NONCE_HEADER,
    NONCE_PATTERN,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signing_string,
)
from shared.encoding import b64decode, b64encode
from shared.identifiers import HANDLE_PATTERN

_NONCES = RequestNonce.__table__  # type: ignore[attr-defined]
# Built once: every signed request inserts a nonce, and building the statement each time cost
# more CPU than running it.
_INSERT_NONCE = insert(_NONCES)

# A valid Ed25519 public key whose private key was thrown away at import.
NOBODY_KEY = b64encode(bytes(SigningKey.generate().verify_key))


@dataclass(frozen=True)
class SignedRequest:
    """The auth headers of a request, parsed but not yet verified."""

    handle: str
    timestamp_ms: int
    nonce: str
    signature: bytes
    message: bytes  # the exact bytes the signature must cover


async def raw_body(request: Request) -> bytes:
    return await request.body()


@dataclass(frozen=True)
class AuthHeaders:
    """The four Sealpost-* headers in their checked form (checks 1-5 of protocol §4.5)."""

    handle: str
    timestamp: str  # the header's own text, as signed
    nonce: str
    signature: bytes

    @property
    def timestamp_ms(self) -> int:
        return int(self.timestamp)


def auth_headers(headers: Mapping[str, str]) -> AuthHeaders:
    """Parse the four Sealpost-* headers; 401 with what is missing or malformed."""
    missing = [
        h
        for h in (HANDLE_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
        if h not in headers
    ]
    if missing:
        raise ApiError(401, "unauthenticated", f"Sign the request: missing {', '.join(missing)}.")
    handle, ts, nonce = headers[HANDLE_HEADER], headers[TIMESTAMP_HEADER], headers[NONCE_HEADER]
    if not re.match(HANDLE_PATTERN, handle):
        raise ApiError(401, "unauthenticated", f"{HANDLE_HEADER} is not a valid handle.")
    if not (ts.isascii() and ts.isdigit()) or len(ts) > 16:
        raise ApiError(401, "unauthenticated", f"{TIMESTAMP_HEADER} must be unix milliseconds.")
    if not re.match(NONCE_PATTERN, nonce):
        raise ApiError(401, "unauthenticated", f"{NONCE_HEADER} must be 32 lowercase hex digits.")
    try:
        signature = b64decode(headers[SIGNATURE_HEADER])
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise ApiError(401, "bad_signature", f"{SIGNATURE_HEADER} must be 64 bytes in base64.")
    return AuthHeaders(handle, ts, nonce, signature)


def signed_path(scope: Scope) -> str:
    """The path and query exactly as sent (not percent-decoded): what a signature covers, so
    that a client never has to guess a normalisation."""
    path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def check_window(state: Any, timestamp_ms: int) -> None:
    """Check 8 of protocol §4.5: 401 ``stale_request`` outside the clock window."""
    # Wall time, not state.clock: the injectable clock moves scheduling and caps (tests,
    # simulations), while signatures are made on real device clocks.
    skew = timestamp_ms - state.wall_clock.now_ms()
    if abs(skew) > state.settings.auth_window_s * 1000:
        raise ApiError(
            401,
            "stale_request",
            f"The request timestamp is {skew / 1000:+.0f} s from the relay's clock; "
            f"allowed is ±{state.settings.auth_window_s} s. Check the device clock.",
        )


# The scope keys server/request_guard.py leaves for a request whose signature it verified
# before the body was parsed: the SignedRequest, and the key it verified against.
PRECHECKED = "sealpost.signed"
VERIFIED_WITH = "sealpost.verified_with"


async def signed_request(
    request: Request, body: Annotated[bytes, Depends(raw_body)]
) -> SignedRequest:
    """Parse the four Sealpost-* headers; 401 with what is missing or malformed."""
    checked = request.scope.get(PRECHECKED)
    if checked is not None:  # parsed, and its body hashed, by the request guard
        return checked
    found = auth_headers(request.headers)
    return SignedRequest(
        handle=found.handle,
        timestamp_ms=found.timestamp_ms,
        nonce=found.nonce,
        signature=found.signature,
        message=signing_string(
            request.method, signed_path(request.scope), found.timestamp, found.nonce, body
        ),
    )


BAD_SIGNATURE = (
    "The signature does not match this request and the account's key (or there is "
    "no such account). Sign method, path with query, timestamp, nonce and the body's "
    "sha256 exactly, with the key registered for this handle."
)


def verify_signed(
    request: Request,
    signed: SignedRequest,
    key_b64: str,
    session: Session,
    *,
    commit: bool = True,
) -> None:
    """Check signature, clock window and nonce freshness; 401 naming the failed check.

    With ``commit=False`` the nonce joins the session's transaction (one commit per request
    instead of two) and stays with the session until a commit: a rollback re-inserts it at
    once (see ``_keep_nonce``), so a request that fails, or rolls back and retries, still
    cannot be replayed.
    """
    state = request.app.state
    scope = request.scope
    # Verified already, before its body was parsed (server/request_guard.py): not again.
    if scope.get(PRECHECKED) is not signed or scope.get(VERIFIED_WITH) != key_b64:
        verify_signature(signed.message, signed.signature, key_b64)
    check_window(state, signed.timestamp_ms)
    now = state.wall_clock.now_ms()
    window_ms = state.settings.auth_window_s * 1000
    kept = state.nonces_in_memory  # only while the disk was full (server/nonce_memory.py)
    if kept and kept.seen(signed.handle, signed.nonce, now, window_ms):
        raise _replayed()
    # Core, not the ORM: this runs on every request and the unit of work costs more than it.
    nonce_row = {"handle": signed.handle, "nonce": signed.nonce, "seen_at": now}
    try:
        session.execute(_INSERT_NONCE, nonce_row)
        if commit:
            session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise _replayed() from exc
    except DBAPIError as exc:
        if not is_storage_full(exc):
            raise
        # The disk is full: hold the nonce here for its window and let the request go on,
        # so that mail already stored can still be read; whatever it writes is refused.
        session.rollback()
        kept.keep(signed.handle, signed.nonce, now)
        return
    if not commit:
        session.info[PENDING_NONCE] = nonce_row
    state.nonce_inserts += 1
    if state.nonce_inserts % 1000 == 0:
        # Nonces older than twice the window can never be accepted again; forget them.
        session.exec(delete(RequestNonce).where(RequestNonce.seen_at < now - 2 * window_ms))
        if commit:
            session.commit()


def verify_signature(message: bytes, signature: bytes, key_b64: str) -> None:
    """Checks 6-7 of protocol §4.5: 401 ``bad_signature`` unless ``signature`` is the key's."""
    try:
        VerifyKey(b64decode(key_b64)).verify(message, signature)
    except (BadSignatureError, ValueError) as exc:
        raise ApiError(401, "bad_signature", BAD_SIGNATURE) from exc


PENDING_NONCE = "sealpost_pending_nonce"


def _replayed() -> ApiError:
    return ApiError(
        401,
        "replayed_request",
        "This nonce was already used; send a fresh nonce with every request.",
    )


@event.listens_for(Session, "after_soft_rollback")
def _keep_nonce(session: Session, _previous: object) -> None:
    """A rolled-back request keeps its nonce: insert it again in the next transaction."""
    row = session.info.get(PENDING_NONCE)
    if row is not None and session.is_active:
        session.execute(_INSERT_NONCE, row)


@event.listens_for(Session, "after_commit")
def _nonce_kept(session: Session) -> None:
    session.info.pop(PENDING_NONCE, None)


@dataclass(frozen=True)
class Caller:
    """A signed request whose account is not checked yet (see the module docstring)."""

    signed: SignedRequest
    request: Request

    def authenticate(self, session: Session) -> KnownAccount:
        """The account that signed the request, after signature, window, replay and rate
        checks. The nonce is inserted in ``session``'s transaction, which the caller must
        commit. Blocking (database work): server/transactions.py decides where it runs."""
        signed = self.signed
        try:
            account = self.request.app.state.accounts.get(session, signed.handle)
            if account is None:
                # Checked against a key nobody holds, so an unknown handle fails exactly as a
                # wrong key does: a probe learns nothing about which handles exist.
                verify_signed(self.request, signed, NOBODY_KEY, session, commit=False)
                raise AssertionError("a signature verified against a key nobody holds")
            verify_signed(self.request, signed, account.sign_key, session, commit=False)
        except BaseException:
            session.rollback()  # never leave a transaction (and SQLite's write lock) behind
            raise
        wait = self.request.app.state.rate_limits.take(account.handle)
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests from {account.handle}; retry after {wait:.1f} s.",
                headers=retry_after_header(wait),
            )
        return account


async def caller(
    request: Request, signed: Annotated[SignedRequest, Depends(signed_request)]
) -> Caller:
    return Caller(signed=signed, request=request)


# Declared as KnownAccount, which is what the endpoint receives: TransactionalRoute swaps the Caller
# this dependency yields for the verified account before calling the endpoint.
CurrentAccount = Annotated[KnownAccount, Depends(caller)]
DbSession = Annotated[Session, Depends(get_session)]
