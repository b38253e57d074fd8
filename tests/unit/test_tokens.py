"""The VOPRF behind one-time anonymous tokens: RFC vectors, failing vectors, and unlinkability."""

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import ristretto255 as group
from shared import tokens
from shared.tokens import (
    CONTEXT_STRING,
    ELEMENT_BYTES,
    MAX_BATCH,
    MAX_INPUT_BYTES,
    OUTPUT_BYTES,
    PROOF_BYTES,
    InvalidElement,
    InvalidInput,
    InvalidProof,
    InvalidScalar,
    IssuerKey,
    TokenError,
    blind,
    evaluate,
    evaluate_unblinded,
    finalize,
    finalize_batch,
    hash_to_group,
    new_token_input,
    verify_proof,
    verify_token,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "tokens.json").read_text())
KEY = IssuerKey.derive(bytes(32), "campaign:test")
OTHER_KEY = IssuerKey.derive(bytes(32), "campaign:other")


def h(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def issue(key: IssuerKey, token_input: bytes) -> bytes:
    """The whole issuance, as client and relay run it."""
    blind_scalar, blinded = blind(token_input)
    evaluated, proof = evaluate(key, [blinded])
    return finalize(token_input, blind_scalar, blinded, evaluated[0], proof, key.public_key)


# --- ristretto255 (RFC 9496) --------------------------------------------------------------------


def test_rfc9496_small_multiples_of_the_generator():
    for i, expected in enumerate(VECTORS["ristretto255"]["small_multiples"]):
        assert group.mul_base(i.to_bytes(32, "little")).hex() == expected
        if i:
            assert tokens._deserialize_element(bytes.fromhex(expected)).hex() == expected
    with pytest.raises(InvalidElement):  # the identity is refused on the wire
        tokens._deserialize_element(bytes(32))


@pytest.mark.parametrize("encoding", VECTORS["ristretto255"]["bad_encodings"])
def test_rfc9496_invalid_encodings_are_refused(encoding):
    with pytest.raises(InvalidElement):
        tokens._deserialize_element(bytes.fromhex(encoding))


def test_rfc9496_one_way_map():
    for case in VECTORS["ristretto255"]["one_way_map"]:
        uniform = hashlib.sha512(case["label"].encode()).digest()
        assert group.from_uniform(uniform).hex() == case["element"]


def test_scalar_multiplication_agrees_with_repeated_addition():
    point = tokens._hash_to_group(b"repeated addition")
    total = group.IDENTITY
    for k in range(12):
        assert group.mul(k.to_bytes(32, "little"), point) == total
        total = group.add(total, point)
    generator = group.mul_base((1).to_bytes(32, "little"))
    assert group.mul_base((11).to_bytes(32, "little")) == group.mul(
        (11).to_bytes(32, "little"), generator
    )


def test_wrong_lengths_are_refused_before_libsodium_sees_them():
    for data in (b"", bytes(31), bytes(33)):
        with pytest.raises(InvalidElement):
            tokens._deserialize_element(data)


def test_loading_the_group_leaves_no_file_in_the_temporary_directory():
    # rbcl writes its bundled libsodium to a temporary file on import; we remove it.
    import subprocess
    import sys

    code = "import shared.ristretto255, rbcl.rbcl as r; print(r._sodium._name)"
    path = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert path and not Path(path).exists()


# --- RFC 9497 and Sealpost vectors --------------------------------------------------------------


def test_the_context_string_is_rfc9497s():
    assert CONTEXT_STRING == b"OPRFV1-\x01-ristretto255-SHA512"
    assert CONTEXT_STRING.hex() == VECTORS["context_string"]


def _check_vector_set(key: IssuerKey, vector: dict) -> None:
    inputs, blinds = h(vector["inputs"]), h(vector["blinds"])
    blinded = [blind(x, blind_scalar=b)[1] for x, b in zip(inputs, blinds, strict=True)]
    assert blinded == h(vector["blinded_elements"])
    nonce = bytes.fromhex(vector["proof_random_scalar"])
    evaluated, proof = evaluate(key, blinded, proof_scalar=nonce)
    assert evaluated == h(vector["evaluated_elements"])
    assert proof.hex() == vector["proof"]
    outputs = finalize_batch(inputs, blinds, blinded, evaluated, proof, key.public_key)
    assert outputs == h(vector["outputs"])
    for x, out in zip(inputs, outputs, strict=True):
        assert evaluate_unblinded(key, x) == out
        assert verify_token(key, x, out)


@pytest.mark.parametrize("index", range(3))
def test_rfc9497_voprf_vectors(index):
    suite = VECTORS["rfc9497_voprf"]
    key = IssuerKey.derive(bytes.fromhex(suite["seed"]), bytes.fromhex(suite["key_info"]))
    assert key.to_bytes().hex() == suite["sk"]
    assert key.public_key.hex() == suite["pk"]
    _check_vector_set(key, suite["vectors"][index])


@pytest.mark.parametrize("index", range(2))
def test_sealpost_vectors(index):
    suite = VECTORS["sealpost"]
    key = IssuerKey.derive(bytes.fromhex(suite["master_secret"]), suite["label"])
    assert key.to_bytes().hex() == suite["sk"]
    assert key.public_key.hex() == suite["pk"]
    _check_vector_set(key, suite["vectors"][index])


def test_the_vectors_file_is_what_the_generator_writes():
    from tests.vectors.make_token_vectors import build

    assert json.loads(json.dumps(build())) == VECTORS


@pytest.mark.parametrize("case", VECTORS["failing"], ids=lambda c: c["name"])
def test_failing_vectors_are_rejected(case):
    if case["check"] == "proof":
        public_key = bytes.fromhex(case["public_key"])
        blinded, evaluated = h(case["blinded_elements"]), h(case["evaluated_elements"])
        proof = bytes.fromhex(case["proof"])
        assert not verify_proof(public_key, blinded, evaluated, proof)
        n, any_blind = len(blinded), b"\x01" + bytes(31)
        with pytest.raises(TokenError):
            finalize_batch([b"x"] * n, [any_blind] * n, blinded, evaluated, proof, public_key)
    elif case["check"] == "token":
        key = IssuerKey.from_bytes(bytes.fromhex(case["sk"]))
        assert not verify_token(key, bytes.fromhex(case["input"]), bytes.fromhex(case["output"]))
    elif case["check"] == "evaluate":
        key = IssuerKey.from_bytes(bytes.fromhex(case["sk"]))
        with pytest.raises(InvalidElement):
            evaluate(key, h(case["blinded_elements"]))
    elif case["check"] == "key":
        with pytest.raises(InvalidScalar):
            IssuerKey.from_bytes(bytes.fromhex(case["sk"]))
    else:  # pragma: no cover
        pytest.fail(f"unknown check {case['check']}")


def test_the_failing_vectors_start_from_a_genuine_token():
    # So that each failure is due to its one change, not to a broken baseline.
    sealpost = VECTORS["sealpost"]
    key = IssuerKey.from_bytes(bytes.fromhex(sealpost["sk"]))
    single = sealpost["vectors"][0]
    assert verify_proof(
        key.public_key,
        h(single["blinded_elements"]),
        h(single["evaluated_elements"]),
        bytes.fromhex(single["proof"]),
    )
    assert verify_token(key, *h([single["inputs"][0], single["outputs"][0]]))


# --- the protocol -------------------------------------------------------------------------------


def test_a_token_round_trips():
    token_input = new_token_input()
    output = issue(KEY, token_input)
    assert len(output) == OUTPUT_BYTES
    assert verify_token(KEY, token_input, output)
    assert output == evaluate_unblinded(KEY, token_input)


def test_a_batch_round_trips_with_one_proof():
    inputs = [new_token_input() for _ in range(5)]
    blinds, blinded = zip(*(blind(x) for x in inputs), strict=True)
    evaluated, proof = evaluate(KEY, blinded)
    assert len(proof) == PROOF_BYTES
    outputs = finalize_batch(inputs, blinds, blinded, evaluated, proof, KEY.public_key)
    assert all(verify_token(KEY, x, o) for x, o in zip(inputs, outputs, strict=True))


def test_a_forged_token_is_rejected():
    token_input = new_token_input()
    assert not verify_token(KEY, token_input, bytes(OUTPUT_BYTES))
    assert not verify_token(KEY, token_input, hashlib.sha512(token_input).digest())
    # A genuine token from another key (say, another campaign's) is a forgery here.
    assert not verify_token(KEY, token_input, issue(OTHER_KEY, token_input))
    assert not verify_token(KEY, token_input, b"")
    assert not verify_token(KEY, b"x" * (MAX_INPUT_BYTES + 1), bytes(OUTPUT_BYTES))


def test_verification_is_deterministic_so_reuse_is_caught_by_the_spent_set():
    token_input = new_token_input()
    output = issue(KEY, token_input)
    # The same token verifies every time: only the relay's spent set stops a second use.
    assert verify_token(KEY, token_input, output) and verify_token(KEY, token_input, output)
    spent: set[bytes] = set()
    accepted = 0
    for _ in range(3):  # a replayed report
        if verify_token(KEY, token_input, output) and token_input not in spent:
            spent.add(token_input)
            accepted += 1
    assert accepted == 1


def test_a_token_is_bound_to_the_campaign_key():
    master = bytes(range(32))
    spring = IssuerKey.derive(master, "campaign:spring")
    autumn = IssuerKey.derive(master, "campaign:autumn")
    assert spring.public_key != autumn.public_key
    assert IssuerKey.derive(master, "campaign:spring") == spring
    token_input = new_token_input()
    output = issue(spring, token_input)
    assert verify_token(spring, token_input, output)
    assert not verify_token(autumn, token_input, output)


def test_a_proof_against_another_public_key_fails():
    token_input = new_token_input()
    blind_scalar, blinded = blind(token_input)
    evaluated, proof = evaluate(KEY, [blinded])
    with pytest.raises(InvalidProof):
        finalize(token_input, blind_scalar, blinded, evaluated[0], proof, OTHER_KEY.public_key)


def test_a_per_person_key_is_caught_even_with_an_honest_proof_for_it():
    # The tagging attack: the relay evaluates one person under a key of their own.
    token_input = new_token_input()
    blind_scalar, blinded = blind(token_input)
    evaluated, proof = evaluate(OTHER_KEY, [blinded])
    assert verify_proof(OTHER_KEY.public_key, [blinded], evaluated, proof)
    with pytest.raises(InvalidProof):
        finalize(token_input, blind_scalar, blinded, evaluated[0], proof, KEY.public_key)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=PROOF_BYTES * 8 - 1))
def test_any_single_bit_flip_in_a_proof_is_rejected(bit):
    token_input = b"fixed input"
    blind_scalar, blinded = blind(token_input, blind_scalar=b"\x07" + bytes(31))
    evaluated, proof = evaluate(KEY, [blinded], proof_scalar=b"\x09" + bytes(31))
    tampered = bytearray(proof)
    tampered[bit // 8] ^= 1 << (bit % 8)
    assert not verify_proof(KEY.public_key, [blinded], evaluated, bytes(tampered))
    with pytest.raises(InvalidProof):
        finalize(token_input, blind_scalar, blinded, evaluated[0], bytes(tampered), KEY.public_key)


def test_a_tampered_evaluated_element_is_rejected():
    token_input = new_token_input()
    blind_scalar, blinded = blind(token_input)
    evaluated, proof = evaluate(KEY, [blinded])
    for replacement in (hash_to_group(b"other"), blinded, evaluate(KEY, [blinded])[0][0][::-1]):
        if replacement == evaluated[0]:  # pragma: no cover - the reversal could be identical
            continue
        with pytest.raises(TokenError):
            finalize(token_input, blind_scalar, blinded, replacement, proof, KEY.public_key)


def test_malformed_requests_are_refused():
    with pytest.raises(TokenError):
        evaluate(KEY, [])
    with pytest.raises(TokenError):
        evaluate(KEY, [hash_to_group(b"x")] * (MAX_BATCH + 1))
    with pytest.raises(InvalidElement):
        evaluate(KEY, [b"\x00" * 31])
    with pytest.raises(InvalidInput):
        blind(b"x" * (MAX_INPUT_BYTES + 1))
    with pytest.raises(InvalidScalar):
        blind(b"x", blind_scalar=bytes(32))
    assert not verify_proof(KEY.public_key, [hash_to_group(b"a")], [], bytes(PROOF_BYTES))
    with pytest.raises(ValueError):
        IssuerKey.derive(b"short", "label")


def test_keys_serialise_and_hide_their_secret():
    key = IssuerKey.generate()
    again = IssuerKey.from_bytes(key.to_bytes())
    assert again == key and again.public_key == key.public_key
    assert len(key.public_key) == ELEMENT_BYTES
    assert key.to_bytes().hex() not in repr(key)
    assert IssuerKey.generate() != key


# --- unlinkability ------------------------------------------------------------------------------


def test_the_issuer_never_sees_the_redeemed_input_or_anything_derived_from_it():
    """What the issuer sees at issuance cannot be matched with what it sees at redemption.

    Blinding multiplies the input's group element by a uniformly random non-zero scalar. The
    group has prime order, so every non-identity element is a multiple of every other: a
    blinded element is uniformly distributed and equally consistent with any input, whatever
    the issuer computes. The checks below show the concrete consequences.
    """
    token_input = new_token_input()
    issuer_view = []  # everything the issuer receives or sends at issuance
    outputs = []
    for _ in range(2):
        blind_scalar, blinded = blind(token_input)
        evaluated, proof = evaluate(KEY, [blinded])
        issuer_view += [blinded, evaluated[0], proof]
        outputs.append(
            finalize(token_input, blind_scalar, blinded, evaluated[0], proof, KEY.public_key)
        )
    # Two issuances of the same input look unrelated, yet finalize to the same output.
    assert issuer_view[0] != issuer_view[3] and issuer_view[1] != issuer_view[4]
    assert outputs[0] == outputs[1]
    # At redemption the issuer learns the input and output; what it can compute from them
    # (the hashed input, its evaluation) never appears in the issuance transcript.
    hashed = hash_to_group(token_input)
    evaluated_directly = group.mul(KEY.to_bytes(), tokens._hash_to_group(token_input))
    for seen in issuer_view:
        assert token_input not in seen and outputs[0] not in seen
        assert hashed != seen and evaluated_directly != seen


def test_blinded_elements_look_uniform():
    token_input = b"the same input every time"
    blinded = [blind(token_input)[1] for _ in range(300)]
    assert len(set(blinded)) == len(blinded)
    # Bit 0 (sign) and bit 255 of an encoding are always 0; every other bit is a fair coin.
    # Each rate is a mean of 300 draws (sd ~0.029); 0.2 is ~7 sd, so no bit fails by chance.
    for bit in range(1, 254):
        rate = sum(b[bit // 8] >> (bit % 8) & 1 for b in blinded) / len(blinded)
        assert 0.3 < rate < 0.7, bit
    ones = sum(bin(int.from_bytes(b, "little")).count("1") for b in blinded)
    assert ones / (len(blinded) * 253) == pytest.approx(0.5, abs=0.01)
