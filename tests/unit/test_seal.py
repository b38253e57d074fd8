"""Sign-then-seal and open-and-verify, as pure functions."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import SealedBox

from shared.encoding import b64encode, canonical_json
from shared.envelope import ChatContent, ChatPayload, Envelope, valid_ciphertext_length
from shared.identifiers import new_message_id
from shared.keys import AccountKeys
from shared.seal import (
    PayloadTooLarge,
    VerificationError,
    open_envelope,
    pad,
    padded_size,
    seal_envelope,
    unpad,
)
from shared.version import MAX_CHAT_TEXT_CHARS

ALICE, BOB = AccountKeys.generate(), AccountKeys.generate()


def chat(text: str, sender: str = "alice", recipient: str = "bob") -> ChatPayload:
    return ChatPayload(
        id=new_message_id(),
        sender=sender,
        recipient=recipient,
        sent_at=1_700_000_000_000,
        content=ChatContent(text=text),
    )


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=4000))
def test_any_text_round_trips_and_the_length_is_a_bucket(text):
    payload = chat(text)
    envelope = seal_envelope(payload, ALICE, BOB.public.box)
    assert valid_ciphertext_length(len(envelope.ciphertext_bytes()))
    assert open_envelope(envelope, BOB, ALICE.public) == payload


def test_lengths_leak_only_the_bucket():
    sizes = {
        len(seal_envelope(chat("x" * n), ALICE, BOB.public.box).ciphertext_bytes())
        for n in range(0, 100)
    }
    assert sizes <= {256, 512}
    assert len(seal_envelope(chat("x" * 3000), ALICE, BOB.public.box).ciphertext_bytes()) == 4096


def test_the_largest_text_fits_and_larger_payloads_are_refused():
    big = seal_envelope(chat("\u20ac" * MAX_CHAT_TEXT_CHARS), ALICE, BOB.public.box)
    assert len(big.ciphertext_bytes()) == 65536
    with pytest.raises(PayloadTooLarge):
        padded_size(70_000)


def test_padding_is_strict():
    framed = b"s" * 64 + b'{"x":1}'
    padded = pad(framed)
    assert unpad(padded) == framed
    tampered = padded[:-1] + b"\x01"
    with pytest.raises(VerificationError) as err:
        unpad(tampered)
    assert err.value.reason == "bad_padding"
    with pytest.raises(VerificationError):
        unpad((10**6).to_bytes(4, "big") + framed)


def test_wrong_recipient_key_cannot_decrypt():
    envelope = seal_envelope(chat("hi"), ALICE, BOB.public.box)
    with pytest.raises(VerificationError) as err:
        open_envelope(envelope, ALICE, ALICE.public)
    assert err.value.reason == "cannot_decrypt"


def test_signature_by_another_key_is_refused():
    mallory = AccountKeys.generate()
    envelope = seal_envelope(chat("I am alice"), mallory, BOB.public.box)
    with pytest.raises(VerificationError) as err:
        open_envelope(envelope, BOB, ALICE.public)
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("recipient", "carol", "recipient_mismatch"),
        ("sender", "mallory", "sender_mismatch"),
        ("id", "0" * 32, "id_mismatch"),
    ],
)
def test_envelope_must_match_the_signed_payload(field, value, reason):
    envelope = seal_envelope(chat("hi"), ALICE, BOB.public.box)
    moved = Envelope(**{**envelope.model_dump(), field: value})
    with pytest.raises(VerificationError) as err:
        open_envelope(moved, BOB, ALICE.public)
    assert err.value.reason == reason


def test_a_sealed_box_with_garbage_inside_is_bad_payload():
    junk = SealedBox(BOB.public.box).encrypt(pad(b"\0" * 64 + b"not json"))
    envelope = Envelope(
        id=new_message_id(), sender="alice", recipient="bob", ciphertext=b64encode(junk)
    )
    with pytest.raises(VerificationError) as err:
        open_envelope(envelope, BOB, ALICE.public)
    assert err.value.reason == "bad_signature"  # the signature is checked before parsing


def test_canonical_json_is_stable():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_envelope_refuses_unpadded_ciphertext():
    with pytest.raises(ValueError, match="padded to a power of two"):
        Envelope(
            id=new_message_id(), sender="alice", recipient="bob", ciphertext=b64encode(b"x" * 300)
        )
