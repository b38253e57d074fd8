"""One-time anonymous tokens: a verifiable OPRF, RFC 9497 OPRF(ristretto255, SHA-512), mode VOPRF.

The relay issues a token on the authenticated channel when a campaign message is delivered, and
accepts it once on the anonymous signal channel, without being able to tell which issuance a
redeemed token came from. The client blinds a random input, so the relay only ever evaluates a
uniformly random group element; the relay proves (DLEQ) that it used the secret key behind its
published public key, so it cannot tag one person by evaluating with a key of their own.

Protocol (all values are bytes; elements and scalars are 32 bytes, a proof is 64, an output 64)::

    client                                     relay (IssuerKey)
    input = new_token_input()
    blind_, blinded = blind(input)
                        -- blinded elements -->
                                               evaluated, proof = evaluate(key, blinded elements)
                        <-- evaluated, proof --
    output = finalize(input, blind_, blinded, evaluated, proof, key.public_key)
        (raises InvalidProof unless the relay used the key behind key.public_key)
    ... later, on the anonymous channel: Token(input, output)
                                               verify_token(key, input, output) -> bool
                                               (the relay also keeps a spent set of inputs)

Public API:

- ``new_token_input() -> bytes``: 32 random bytes, the token's private input.
- ``blind(input, *, blind_scalar=None) -> (blind_scalar, blinded_element)``.
- ``evaluate(key, blinded_elements, *, proof_scalar=None) -> (evaluated_elements, proof)``:
  one batched DLEQ proof for the whole list (at most ``MAX_BATCH``).
- ``verify_proof(public_key, blinded_elements, evaluated_elements, proof) -> bool``.
- ``finalize(input, blind_scalar, blinded_element, evaluated_element, proof, public_key)
  -> output`` and ``finalize_batch(inputs, blind_scalars, blinded_elements,
  evaluated_elements, proof, public_key) -> list[output]``.
- ``evaluate_unblinded(key, input) -> output`` (RFC 9497 ``Evaluate``) and
  ``verify_token(key, input, output) -> bool`` (constant-time comparison).
- ``hash_to_group(msg) -> element`` (RFC 9497 HashToGroup, for tests and audits).
- ``IssuerKey.generate()``, ``IssuerKey.derive(master_secret, label)``,
  ``IssuerKey.from_bytes(secret)``, ``key.to_bytes()``, ``key.public_key``.
- ``Token(input, output)``: what a signal report carries.
- Errors, all ``TokenError`` (a ``ValueError``): ``InvalidElement``, ``InvalidScalar``,
  ``InvalidProof``, ``InvalidInput``.

The optional ``blind_scalar`` and ``proof_scalar`` arguments exist for fixed test vectors only;
production code must leave them out so that fresh randomness is drawn.

Keys and linkability: a token verifies only under the key that issued it, so binding a token to
a campaign (or an epoch) is done by giving each campaign its own key, e.g.
``IssuerKey.derive(master, "campaign:" + campaign_id)`` (RFC 9497's security considerations,
"Parameter Commitments"). The DLEQ proof only shows that the key behind ``public_key`` was
used; the client must also make sure that ``public_key`` is the one everybody gets (for instance
by fetching it again over the anonymous channel), or a relay could still hand each person a key
of their own.

Conformance with RFC 9497: the context string, HashToGroup (hash_to_ristretto255 over
expand_message_xmd with SHA-512), HashToScalar, DeriveKeyPair, the batched DLEQ proof
(ComputeComposites / ComputeCompositesFast, GenerateProof, VerifyProof), Finalize and Evaluate
follow the RFC byte for byte; tests/unit/test_tokens.py checks the RFC's published
ristretto255-SHA512 VOPRF vectors (appendix A.1.2, including the batch of two) and RFC 9496's
ristretto255 vectors. Notes on how it is built:

- The output is the RFC's full SHA-512 (``Nh = 64`` bytes), not truncated to 32.
- PyNaCl exposes no ristretto255 functions, so the group operations come from libsodium through
  ``rbcl`` (:mod:`shared.ristretto255`); scalar arithmetic uses PyNaCl's
  ``crypto_core_ed25519_scalar_*``, which works modulo the same prime L. All of it is
  libsodium's constant-time code, secret scalars (the issuer key, blinds, proof nonces) included.
- ``RandomScalar`` reduces 64 random bytes modulo L (bias below 2^-250) and rejects zero.
"""

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from nacl import bindings as sodium

from shared import ristretto255 as group

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
PROOF_BYTES = 2 * SCALAR_BYTES
OUTPUT_BYTES = 64  # SHA-512
TOKEN_INPUT_BYTES = 32
MAX_INPUT_BYTES = 2**16 - 1  # inputs are length-prefixed with two bytes
# Evaluations per proof: a guard against oversized requests, well under the RFC's 2**16 limit.
MAX_BATCH = 1000

SUITE_ID = b"ristretto255-SHA512"
MODE_VOPRF = 0x01
CONTEXT_STRING = b"OPRFV1-" + bytes([MODE_VOPRF]) + b"-" + SUITE_ID
_DST_HASH_TO_GROUP = b"HashToGroup-" + CONTEXT_STRING
_DST_HASH_TO_SCALAR = b"HashToScalar-" + CONTEXT_STRING
_DST_DERIVE_KEY_PAIR = b"DeriveKeyPair" + CONTEXT_STRING
_DST_SEED = b"Seed-" + CONTEXT_STRING


class TokenError(ValueError):
    """A token protocol message or value that must be refused."""


class InvalidElement(TokenError):
    """Bytes that are not the canonical encoding of a non-identity ristretto255 element."""


class InvalidScalar(TokenError):
    """Bytes that are not a canonical scalar (or a zero scalar where one is not allowed)."""


class InvalidProof(TokenError):
    """The DLEQ proof does not show that the published key produced these evaluations."""


class InvalidInput(TokenError):
    """An input that cannot be used (too long, or hashing to the identity)."""


class Token(NamedTuple):
    """A finalized token: the private input and the OPRF output, shown once at redemption."""

    input: bytes
    output: bytes


# --- the group, as RFC 9497 uses it: elements are canonical 32-byte encodings --------------------

_L = 2**252 + 27742317777372353535851937790883648493  # order of the prime-order group
_IDENTITY_BYTES = group.IDENTITY


def _deserialize_element(data: bytes) -> bytes:
    """RFC 9497 DeserializeElement: canonical, valid, and not the identity."""
    try:
        return group.decode(data)
    except ValueError as exc:
        raise InvalidElement(str(exc)) from None


def _deserialize_scalar(data: bytes, what: str) -> bytes:
    if len(data) != SCALAR_BYTES or int.from_bytes(data, "little") >= _L:
        raise InvalidScalar(f"{what} is not a canonical scalar")
    return data


def _random_scalar() -> bytes:
    while True:
        scalar = sodium.crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64))
        if any(scalar):
            return scalar


def _expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 expand_message_xmd with SHA-512."""
    b_bytes, s_bytes = 64, 128
    ell = -(-length // b_bytes)
    if ell > 255 or length > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd: requested length or DST too long")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(
        bytes(s_bytes) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    ).digest()
    blocks = [hashlib.sha512(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(a ^ b for a, b in zip(b0, blocks[-1], strict=True))
        blocks.append(hashlib.sha512(mixed + bytes([i]) + dst_prime).digest())
    return b"".join(blocks)[:length]


def _hash_to_group(msg: bytes) -> bytes:
    """hash_to_ristretto255 (RFC 9380 appendix B) with the RFC 9497 HashToGroup DST."""
    uniform = _expand_message_xmd(msg, _DST_HASH_TO_GROUP, 64)
    return group.from_uniform(uniform)


def _hash_to_scalar(msg: bytes, dst: bytes = _DST_HASH_TO_SCALAR) -> bytes:
    return sodium.crypto_core_ed25519_scalar_reduce(_expand_message_xmd(msg, dst, 64))


def hash_to_group(msg: bytes) -> bytes:
    """RFC 9497 HashToGroup for this suite, serialized (exposed for tests and audits)."""
    return _hash_to_group(msg)


def _framed(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(2, "big") + part for part in parts)


# --- the batched DLEQ proof (RFC 9497 section 2.2) ---------------------------------------------


def _composite_weights(public_key: bytes, c: Sequence[bytes], d: Sequence[bytes]) -> list[bytes]:
    seed = hashlib.sha512(_framed(public_key, _DST_SEED)).digest()
    return [
        _hash_to_scalar(
            len(seed).to_bytes(2, "big")
            + seed
            + i.to_bytes(2, "big")
            + _framed(ci, di)
            + b"Composite"
        )
        for i, (ci, di) in enumerate(zip(c, d, strict=True))
    ]


def _challenge(public_key: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    transcript = _framed(public_key, m, z, t2, t3)
    return _hash_to_scalar(transcript + b"Challenge")


def _sum(points: Sequence[bytes]) -> bytes:
    total = _IDENTITY_BYTES
    for point in points:
        total = group.add(total, point)
    return total


def _check_batch(*lists: Sequence[object]) -> None:
    n = len(lists[0])
    if not 1 <= n <= MAX_BATCH:
        raise TokenError(f"a batch holds 1 to {MAX_BATCH} elements, not {n}")
    if any(len(other) != n for other in lists[1:]):
        raise TokenError("batch lists differ in length")


def verify_proof(
    public_key: bytes,
    blinded_elements: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    proof: bytes,
) -> bool:
    """True if ``proof`` shows ``evaluated[i] = k * blinded[i]`` for the k behind ``public_key``.

    False (never an exception) for any malformed input, so callers have one failure path.
    """
    try:
        _check_batch(blinded_elements, evaluated_elements)
        b = _deserialize_element(public_key)
        cs = [_deserialize_element(e) for e in blinded_elements]
        ds = [_deserialize_element(e) for e in evaluated_elements]
        if len(proof) != PROOF_BYTES:
            return False
        c = _deserialize_scalar(proof[:SCALAR_BYTES], "proof c")
        s = _deserialize_scalar(proof[SCALAR_BYTES:], "proof s")
    except TokenError:
        return False
    weights = _composite_weights(public_key, blinded_elements, evaluated_elements)
    m = _sum([group.mul(w, ci) for w, ci in zip(weights, cs, strict=True)])
    z = _sum([group.mul(w, di) for w, di in zip(weights, ds, strict=True)])
    t2 = group.add(group.mul_base(s), group.mul(c, b))
    t3 = group.add(group.mul(s, m), group.mul(c, z))
    return hmac.compare_digest(_challenge(public_key, m, z, t2, t3), c)


# --- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerKey:
    """The relay's VOPRF key pair. ``public_key`` is published; the secret never leaves the relay.

    Serialise with :meth:`to_bytes` (the 32-byte secret scalar) and :meth:`from_bytes`; the
    public key is recomputed, so a stored key cannot disagree with its public half.
    """

    _secret: bytes = field(repr=False)
    public_key: bytes

    @classmethod
    def from_bytes(cls, secret: bytes) -> "IssuerKey":
        scalar = _deserialize_scalar(secret, "the issuer secret")
        if not any(scalar):
            raise InvalidScalar("the issuer secret must not be zero")
        return cls(scalar, group.mul_base(scalar))

    @classmethod
    def generate(cls) -> "IssuerKey":
        """A fresh random key (RFC 9497 GenerateKeyPair)."""
        return cls.from_bytes(_random_scalar())

    @classmethod
    def derive(cls, master_secret: bytes, label: str | bytes) -> "IssuerKey":
        """RFC 9497 DeriveKeyPair(seed=master_secret, info=label), e.g. one key per campaign.

        ``master_secret`` is 32 secret random bytes; ``label`` is public. The same pair always
        gives the same key, so the relay need only keep the master secret.
        """
        if len(master_secret) != SCALAR_BYTES:
            raise ValueError(f"the master secret must be {SCALAR_BYTES} bytes")
        info = label.encode() if isinstance(label, str) else label
        if len(info) > MAX_INPUT_BYTES:
            raise ValueError("label too long")
        derive_input = master_secret + _framed(info)
        for counter in range(256):
            scalar = _hash_to_scalar(derive_input + bytes([counter]), _DST_DERIVE_KEY_PAIR)
            if any(scalar):
                return cls.from_bytes(scalar)
        raise ValueError("DeriveKeyPairError")  # pragma: no cover - probability ~2**-64000

    def to_bytes(self) -> bytes:
        return self._secret


# --- the protocol ------------------------------------------------------------------------------


def new_token_input() -> bytes:
    """A fresh token input: 32 random bytes that only this client knows until redemption."""
    return secrets.token_bytes(TOKEN_INPUT_BYTES)


def _input_element(input: bytes) -> bytes:
    if len(input) > MAX_INPUT_BYTES:
        raise InvalidInput(f"inputs are at most {MAX_INPUT_BYTES} bytes")
    element = _hash_to_group(input)
    if element == _IDENTITY_BYTES:
        raise InvalidInput("input hashes to the identity")  # pragma: no cover - negligible
    return element


def blind(input: bytes, *, blind_scalar: bytes | None = None) -> tuple[bytes, bytes]:
    """Client, step 1: ``(blind_scalar, blinded_element)``; send only the blinded element.

    ``blind_scalar`` is for fixed test vectors; leave it out to draw a fresh random blind.
    """
    if blind_scalar is None:
        blind_scalar = _random_scalar()
    else:
        _deserialize_scalar(blind_scalar, "the blind")
        if not any(blind_scalar):
            raise InvalidScalar("the blind must not be zero")
    return blind_scalar, group.mul(blind_scalar, _input_element(input))


def evaluate(
    key: IssuerKey, blinded_elements: Sequence[bytes], *, proof_scalar: bytes | None = None
) -> tuple[list[bytes], bytes]:
    """Issuer: evaluate each blinded element with the key, plus one batched DLEQ proof.

    Raises ``InvalidElement`` for a malformed or identity element (refuse the whole request).
    ``proof_scalar`` is the proof nonce, for fixed test vectors only.
    """
    _check_batch(blinded_elements)
    cs = [_deserialize_element(e) for e in blinded_elements]
    secret = key.to_bytes()
    evaluated = [group.mul(secret, ci) for ci in cs]
    weights = _composite_weights(key.public_key, blinded_elements, evaluated)
    m = _sum([group.mul(w, ci) for w, ci in zip(weights, cs, strict=True)])
    z = group.mul(secret, m)
    if proof_scalar is None:
        r = _random_scalar()
    else:
        r = _deserialize_scalar(proof_scalar, "the proof scalar")
    c = _challenge(key.public_key, m, z, group.mul_base(r), group.mul(r, m))
    s = sodium.crypto_core_ed25519_scalar_sub(r, sodium.crypto_core_ed25519_scalar_mul(c, secret))
    return evaluated, c + s


def _output(input: bytes, element: bytes) -> bytes:
    return hashlib.sha512(_framed(input, element) + b"Finalize").digest()


def finalize_batch(
    inputs: Sequence[bytes],
    blind_scalars: Sequence[bytes],
    blinded_elements: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    proof: bytes,
    public_key: bytes,
) -> list[bytes]:
    """Client, step 2, for a batch: verify the proof, unblind, and hash. Raises ``InvalidProof``."""
    _check_batch(inputs, blind_scalars, blinded_elements, evaluated_elements)
    if not verify_proof(public_key, blinded_elements, evaluated_elements, proof):
        raise InvalidProof("the issuer's proof does not verify against its public key")
    outputs = []
    for input, blind_scalar, evaluated in zip(
        inputs, blind_scalars, evaluated_elements, strict=True
    ):
        if not any(_deserialize_scalar(blind_scalar, "the blind")):
            raise InvalidScalar("the blind must not be zero")
        inverse = sodium.crypto_core_ed25519_scalar_invert(blind_scalar)
        unblinded = group.mul(inverse, _deserialize_element(evaluated))
        outputs.append(_output(input, unblinded))
    return outputs


def finalize(
    input: bytes,
    blind_scalar: bytes,
    blinded_element: bytes,
    evaluated_element: bytes,
    proof: bytes,
    public_key: bytes,
) -> bytes:
    """Client, step 2: the token output for ``input`` (RFC 9497 VOPRF Finalize)."""
    return finalize_batch(
        [input], [blind_scalar], [blinded_element], [evaluated_element], proof, public_key
    )[0]


def evaluate_unblinded(key: IssuerKey, input: bytes) -> bytes:
    """Issuer: the output for a revealed input, computed directly (RFC 9497 Evaluate)."""
    element = group.mul(key.to_bytes(), _input_element(input))
    return _output(input, element)


def verify_token(key: IssuerKey, input: bytes, output: bytes) -> bool:
    """True if ``output`` is the OPRF output of ``input`` under ``key``.

    Deterministic: the same token always verifies, so refusing a second redemption is the
    relay's spent set, not this function.
    """
    if len(input) > MAX_INPUT_BYTES or len(output) != OUTPUT_BYTES:
        return False
    return hmac.compare_digest(evaluate_unblinded(key, input), output)
