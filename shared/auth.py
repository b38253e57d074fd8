"""Request authentication: every request is signed with the account's Ed25519 key.

The signed string (UTF-8) is, with ``\\n`` between fields:

    SEALPOST-REQ-V1
    <METHOD upper-case>
    <path, with ?query, exactly as sent on the request line (not percent-decoded)>
    <timestamp: the Sealpost-Timestamp header's text (unix milliseconds, decimal digits)>
    <nonce: 32 lowercase hex digits, fresh per request>
    <sha256 of the raw body, lowercase hex (of b"" when there is none)>
"""

import hashlib
import secrets
import time

from nacl.signing import SigningKey

from shared.encoding import b64encode

HANDLE_HEADER = "Sealpost-Handle"
TIMESTAMP_HEADER = "Sealpost-Timestamp"
NONCE_HEADER = "Sealpost-Nonce"
SIGNATURE_HEADER = "Sealpost-Signature"
AUTH_HEADERS = (HANDLE_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

NONCE_PATTERN = r"^[0-9a-f]{32}$"


def signing_string(
    method: str, path: str, timestamp_ms: int | str, nonce: str, body: bytes
) -> bytes:
    """The exact bytes a request signature covers."""
    return signing_string_of_digest(
        method, path, timestamp_ms, nonce, hashlib.sha256(body).hexdigest()
    )


def signing_string_of_digest(
    method: str, path: str, timestamp_ms: int | str, nonce: str, body_sha256_hex: str
) -> bytes:
    """The same, from the body's digest (for a body hashed as it arrives)."""
    return "\n".join(
        ["SEALPOST-REQ-V1", method.upper(), path, str(timestamp_ms), nonce, body_sha256_hex]
    ).encode()


def sign_request(
    key: SigningKey,
    handle: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    timestamp_ms: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers that authenticate one request as ``handle``."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    nonce = nonce or secrets.token_hex(16)
    signature = key.sign(signing_string(method, path, ts, nonce, body)).signature
    return {
        HANDLE_HEADER: handle,
        TIMESTAMP_HEADER: str(ts),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: b64encode(signature),
    }
