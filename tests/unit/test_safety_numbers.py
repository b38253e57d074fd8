"""Safety numbers (shared/safety_numbers.py): the same digits on both devices, different digits
as soon as any key or handle differs, and a fixed vector so that a change to the computation
(which would make two versions of the app disagree) cannot go unnoticed."""

import hashlib

import pytest

from shared.encoding import b64encode
from shared.keys import AccountKeys
from shared.safety_numbers import (
    Identity,
    fingerprint,
    format_safety_number,
    groups,
    safety_number,
)

ALICE = Identity("alice", b64encode(bytes(range(32))), b64encode(bytes(range(32, 64))))
BOB = Identity("bob", b64encode(bytes(range(64, 96))), b64encode(bytes(range(96, 128))))
# Computed once with the algorithm in the module's docstring; never to be changed.
VECTOR = "385103290708955265764334055078711505328493303497324592029089"


def identity(handle: str, keys: AccountKeys | None = None) -> Identity:
    public = (keys or AccountKeys.generate()).public
    return Identity(handle, public.sign_b64, public.box_b64)


def test_a_fixed_vector():
    assert safety_number(ALICE, BOB) == VECTOR
    assert fingerprint(BOB) + fingerprint(ALICE) == VECTOR  # bob's half sorts first


def test_the_vector_follows_the_documented_computation():
    # Written out independently of the module, as a second implementation would.
    def half(handle: str, key: bytes) -> str:
        digest = hashlib.sha512(b"\x00\x00" + key + handle.encode()).digest()
        for _ in range(5200):
            digest = hashlib.sha512(digest + key).digest()
        return "".join(
            str(int.from_bytes(digest[i : i + 5], "big") % 100_000).zfill(5)
            for i in range(0, 30, 5)
        )

    alice = half("alice", bytes(range(64)))
    bob = half("bob", bytes(range(64, 128)))
    assert min(alice, bob) + max(alice, bob) == VECTOR


def test_both_devices_see_the_same_number():
    ana, ben = identity("ana"), identity("ben")
    number = safety_number(ana, ben)
    assert number == safety_number(ben, ana)
    assert len(number) == 60 and number.isdigit()
    assert len(groups(number)) == 12


def test_any_key_or_handle_changes_the_number():
    keys = AccountKeys.generate()
    ana, ben = identity("ana", keys), identity("ben")
    number = safety_number(ana, ben)
    other = AccountKeys.generate().public
    changed = [
        Identity("ana", other.sign_b64, keys.public.box_b64),  # a new signing key only
        Identity("ana", keys.public.sign_b64, other.box_b64),  # a new box key only
        Identity("anna", keys.public.sign_b64, keys.public.box_b64),  # the same keys, renamed
        Identity("ana", keys.public.box_b64, keys.public.sign_b64),  # the two keys swapped
    ]
    for ana_now in changed:
        assert safety_number(ana_now, ben) != number
        assert safety_number(ben, ana_now) != number


def test_it_is_shown_in_twelve_groups_of_five():
    assert format_safety_number(VECTOR) == (
        "38510 32907 08955 26576\n43340 55078 71150 53284\n93303 49732 45920 29089"
    )


@pytest.mark.parametrize("bad", ["", b64encode(bytes(31)), b64encode(bytes(33)), "***"])
def test_a_malformed_key_is_refused(bad):
    with pytest.raises(ValueError):
        safety_number(Identity("ana", bad, ALICE.box_key), BOB)
