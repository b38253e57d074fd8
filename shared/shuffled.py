"""The shuffler's wire format: one report in from a device, shuffled batches out to the relay.

A device posts each report alone to the shuffler (:class:`ShufflerReport`, ``POST
/v1/reports``); the shuffler forwards held reports in shuffled batches (:class:`ShuffledBatch`,
``POST /v1/signals/shuffled`` on the relay), each batch signed with the shuffler's Ed25519
key. The relay counts reports only from batches signed by a key it is configured with, so the
relay never sees when or from where one report arrived. The report strings are exactly those
of :func:`shared.signals.encode_report`.

The batch signature covers (UTF-8, ``\\n`` between fields)::

    SEALPOST-SHUFFLED-V1
    POST
    /v1/signals/shuffled
    <sha256 of the raw body, lowercase hex>

It carries no timestamp or nonce: a replayed batch counts nothing, because every report in it
names a token the relay has already spent.
"""

import hashlib

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pydantic import BaseModel, ConfigDict, Field

from shared.encoding import b64decode, b64encode
from shared.signals import MAX_REPORT_BYTES

REPORTS_PATH = "/v1/reports"  # on the shuffler
SHUFFLED_PATH = "/v1/signals/shuffled"  # on the relay
KEY_HEADER = "Sealpost-Shuffler-Key"
SIGNATURE_HEADER = "Sealpost-Shuffler-Signature"
SHUFFLER_HEADERS = (KEY_HEADER, SIGNATURE_HEADER)
MAX_SHUFFLED = 1000  # reports per forwarded batch


class ShufflerReport(BaseModel):
    """One anonymous report, as a device sends it to the shuffler."""

    model_config = ConfigDict(extra="forbid", strict=True)

    report: str = Field(min_length=1, max_length=MAX_REPORT_BYTES)


class ShufflerReceipt(BaseModel):
    """The shuffler holds the report (or already held one with this token)."""

    model_config = ConfigDict(extra="forbid")

    held: bool = True


class ShuffledBatch(BaseModel):
    """Reports in the shuffler's random order, as canonical report JSON strings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reports: list[str] = Field(min_length=1, max_length=MAX_SHUFFLED)


def signing_string(body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(["SEALPOST-SHUFFLED-V1", "POST", SHUFFLED_PATH, digest]).encode()


def public_key_b64(key: SigningKey) -> str:
    return b64encode(bytes(key.verify_key))


def sign_batch(key: SigningKey, body: bytes) -> dict[str, str]:
    """The headers that show the relay this batch body comes from the shuffler with ``key``."""
    signature = key.sign(signing_string(body)).signature
    return {KEY_HEADER: public_key_b64(key), SIGNATURE_HEADER: b64encode(signature)}


def verify_batch(key_b64: str, signature_b64: str, body: bytes, trusted: frozenset[str]) -> bool:
    """True if ``key_b64`` is one of the ``trusted`` shuffler keys and signed ``body``."""
    if key_b64 not in trusted:
        return False
    try:
        VerifyKey(b64decode(key_b64)).verify(signing_string(body), b64decode(signature_b64))
    except (ValueError, BadSignatureError):
        return False
    return True
