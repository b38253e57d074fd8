"""The request-signing string: exactly the bytes docs/protocol.md describes."""

import hashlib

from nacl.signing import SigningKey

from shared.auth import sign_request, signing_string
from shared.encoding import b64decode


def test_signing_string_layout():
    body = b'{"ids":["00"]}'
    expected = (
        "SEALPOST-REQ-V1\nPOST\n/v1/mailboxes/bob/ack?x=1\n1700000000000\n"
        + "ab" * 16
        + "\n"
        + hashlib.sha256(body).hexdigest()
    ).encode()
    assert (
        signing_string("post", "/v1/mailboxes/bob/ack?x=1", 1700000000000, "ab" * 16, body)
        == expected
    )


def test_signed_headers_verify_with_the_public_key():
    key = SigningKey(bytes(range(32)))
    headers = sign_request(key, "alice", "GET", "/v1/accounts/bob", timestamp_ms=5, nonce="0" * 32)
    message = signing_string("GET", "/v1/accounts/bob", 5, "0" * 32, b"")
    key.verify_key.verify(message, b64decode(headers["Sealpost-Signature"]))
    assert headers["Sealpost-Handle"] == "alice" and headers["Sealpost-Timestamp"] == "5"
