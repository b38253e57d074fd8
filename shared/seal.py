"""Sign-then-seal and open-and-verify.

A sealed box alone proves nothing about who made it (anyone can seal to a public key), so the
sender signs the inner payload first and the recipient checks that signature and that the
payload's ids match the envelope it arrived in. Byte layout (see docs/protocol.md):

    signed   = b"SEALPOST-MSG-V1\\n" || canonical_json(payload)
    framed   = ed25519_signature(signed) [64 bytes] || canonical_json(payload)
    padded   = uint32_be(len(framed)) || framed || zero bytes up to (2**k - 48)
    sealed   = crypto_box_seal(padded, recipient_x25519_public)   # 2**k bytes
"""

from typing import Literal

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import PublicKey, SealedBox
from pydantic import ValidationError

from shared.encoding import b64encode, canonical_json
from shared.envelope import ChatPayload, Envelope, TemplatePayload, inner_payload_adapter
from shared.keys import AccountKeys, PublicKeys
from shared.version import MAX_CIPHERTEXT_BYTES, MIN_CIPHERTEXT_BYTES, SEAL_OVERHEAD_BYTES

SIGNING_CONTEXT = b"SEALPOST-MSG-V1\n"
SIGNATURE_BYTES = 64
LENGTH_PREFIX_BYTES = 4

Payload = ChatPayload | TemplatePayload

VerificationFailure = Literal[
    "cannot_decrypt",
    "bad_padding",
    "bad_payload",
    "bad_signature",
    "sender_mismatch",
    "recipient_mismatch",
    "id_mismatch",
    "kind_mismatch",
    # Checked by the client after opening (see client/messenger.py):
    "unknown_sender",
    "template_mismatch",
    "key_changed",  # signed by the sender's new key, which the person has not accepted yet
    "bad_variable",  # a template variable whose value is not of its declared type
    # Not a failed check but the person's own choice, applied on the device: a non-marketing
    # copy whose text promotes, from a business they stopped or past their level or cap. Held
    # back like a quarantined copy, so that it is never shown and the store says why.
    "hidden_by_choice",
]


class VerificationError(Exception):
    """A received envelope that must be quarantined, never shown as genuine."""

    def __init__(self, reason: VerificationFailure, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PayloadTooLarge(ValueError):
    """The signed payload does not fit in the largest ciphertext bucket."""


def padded_size(framed_len: int) -> int:
    """Plaintext size after padding, so that the sealed box is a power of two bytes long."""
    needed = framed_len + LENGTH_PREFIX_BYTES + SEAL_OVERHEAD_BYTES
    size = MIN_CIPHERTEXT_BYTES
    while size < needed:
        size *= 2
    if size > MAX_CIPHERTEXT_BYTES:
        limit = MAX_CIPHERTEXT_BYTES - SEAL_OVERHEAD_BYTES - LENGTH_PREFIX_BYTES - SIGNATURE_BYTES
        raise PayloadTooLarge(f"payload is {framed_len - SIGNATURE_BYTES} bytes; max is {limit}")
    return size - SEAL_OVERHEAD_BYTES


def sign_payload(payload: Payload, keys: AccountKeys) -> bytes:
    """``signature || payload_json``: the framed bytes that get padded and sealed."""
    # exclude_none: a payload without a campaign id signs the same bytes as before the field
    # existed (the only optional field), so older test vectors and peers still agree.
    body = canonical_json(payload.model_dump(mode="json", exclude_none=True))
    signature = keys.signing.sign(SIGNING_CONTEXT + body).signature
    return signature + body


def pad(framed: bytes) -> bytes:
    size = padded_size(len(framed))
    prefix = len(framed).to_bytes(LENGTH_PREFIX_BYTES, "big")
    return prefix + framed + bytes(size - LENGTH_PREFIX_BYTES - len(framed))


def unpad(padded: bytes) -> bytes:
    if len(padded) < LENGTH_PREFIX_BYTES:
        raise VerificationError("bad_padding", "plaintext shorter than its length prefix")
    n = int.from_bytes(padded[:LENGTH_PREFIX_BYTES], "big")
    end = LENGTH_PREFIX_BYTES + n
    if end > len(padded) or any(padded[end:]):
        raise VerificationError("bad_padding", "length prefix or zero padding is wrong")
    return padded[LENGTH_PREFIX_BYTES:end]


def seal(payload: Payload, sender: AccountKeys, recipient_box: PublicKey) -> bytes:
    """Sign ``payload`` with the sender's key, pad it and seal it to the recipient."""
    return SealedBox(recipient_box).encrypt(pad(sign_payload(payload, sender)))


def seal_envelope(
    payload: Payload,
    sender: AccountKeys,
    recipient_box: PublicKey,
    **routing: object,
) -> Envelope:
    """Build the envelope for ``payload``; ``routing``: category, template, campaign, times."""
    return Envelope(
        id=payload.id,
        sender=payload.sender,
        recipient=payload.recipient,
        kind=payload.kind,
        ciphertext=b64encode(seal(payload, sender, recipient_box)),
        **routing,  # type: ignore[arg-type]
    )


def open_envelope(envelope: Envelope, me: AccountKeys, sender_keys: PublicKeys) -> Payload:
    """Decrypt, verify and cross-check an envelope addressed to the holder of ``me``.

    ``sender_keys`` are the directory keys of ``envelope.sender``. Raises
    :class:`VerificationError` naming the first check that failed.
    """
    try:
        padded = SealedBox(me.box).decrypt(envelope.ciphertext_bytes())
    except CryptoError as exc:
        raise VerificationError("cannot_decrypt", "not sealed to this account's key") from exc
    framed = unpad(padded)
    if len(framed) <= SIGNATURE_BYTES:
        raise VerificationError("bad_payload", "no payload after the signature")
    signature, body = framed[:SIGNATURE_BYTES], framed[SIGNATURE_BYTES:]
    try:
        sender_keys.sign.verify(SIGNING_CONTEXT + body, signature)
    except BadSignatureError as exc:
        raise VerificationError(
            "bad_signature", f"not signed by {envelope.sender}'s published key"
        ) from exc
    try:
        payload = inner_payload_adapter.validate_json(body)
    except ValidationError as exc:
        raise VerificationError("bad_payload", f"payload does not match the schema: {exc}") from exc
    if payload.sender != envelope.sender:
        raise VerificationError(
            "sender_mismatch", f"signed by {payload.sender}, delivered as from {envelope.sender}"
        )
    if payload.recipient != envelope.recipient:
        raise VerificationError(
            "recipient_mismatch",
            f"written for {payload.recipient}, delivered to {envelope.recipient}",
        )
    if payload.id != envelope.id:
        raise VerificationError("id_mismatch", f"payload id {payload.id} != envelope {envelope.id}")
    if payload.kind != envelope.kind:
        raise VerificationError("kind_mismatch", f"payload {payload.kind} != {envelope.kind}")
    return payload
