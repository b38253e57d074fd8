"""Safety numbers: what two people compare to know that each holds the other's real keys.

Keys are pinned on first use, which stops a relay from swapping them later but not from handing
out the wrong keys before the first message. Two people who read the same 60 digits on their two
devices (side by side, or over a channel they trust) know that neither key was swapped.

Computed as Signal's numeric fingerprints are (version 0 here):

    key      = ed25519_public (32 bytes) || x25519_public (32 bytes)
    h_0      = SHA-512(uint16_be(version) || key || utf8(handle))
    h_i      = SHA-512(h_{i-1} || key)                     for i = 1 .. 5200
    half     = the first 30 bytes of h_5200, as six 5-byte big-endian numbers, each mod 100000,
               written as five digits                      (30 digits per person)
    number   = the two halves, the smaller first            (60 digits)

Both signing and box keys are covered: swapping either one changes the number. The halves are
sorted, so both devices show the same digits whoever computes them. The iterations make finding
a key pair whose half matches a given one (a second preimage of 100 bits) slower by that factor.
The key is fixed-length, so ``key || handle`` cannot be read two ways.
"""

import hashlib
from dataclasses import dataclass

from shared.encoding import b64decode

VERSION = 0
ITERATIONS = 5200  # as Signal's
KEY_BYTES = 32
CHUNK_BYTES = 5  # each chunk gives five digits (40 bits mod 100000)
CHUNKS = 6  # 30 digits per person, 60 per safety number
GROUP_DIGITS = 5
GROUPS_PER_LINE = 4  # 12 groups as three lines of four, as Signal shows them


@dataclass(frozen=True)
class Identity:
    """One person's side: a handle and its two public keys (standard base64, as published)."""

    handle: str
    sign_key: str
    box_key: str

    def key_bytes(self) -> bytes:
        sign, box = b64decode(self.sign_key), b64decode(self.box_key)
        if len(sign) != KEY_BYTES or len(box) != KEY_BYTES:
            raise ValueError(f"@{self.handle}'s keys are not two 32-byte public keys")
        return sign + box


def fingerprint(identity: Identity, iterations: int = ITERATIONS) -> str:
    """One person's 30 digits (half of a safety number)."""
    key = identity.key_bytes()
    digest = hashlib.sha512(
        VERSION.to_bytes(2, "big") + key + identity.handle.encode("utf-8")
    ).digest()
    for _ in range(iterations):
        digest = hashlib.sha512(digest + key).digest()
    return "".join(
        f"{int.from_bytes(digest[i : i + CHUNK_BYTES], 'big') % 100_000:05d}"
        for i in range(0, CHUNK_BYTES * CHUNKS, CHUNK_BYTES)
    )


def safety_number(one: Identity, other: Identity, iterations: int = ITERATIONS) -> str:
    """The 60 digits ``one`` and ``other`` both see, in whichever order they are given."""
    return "".join(sorted((fingerprint(one, iterations), fingerprint(other, iterations))))


def groups(number: str) -> list[str]:
    """The number in groups of five digits (twelve for a safety number)."""
    return [number[i : i + GROUP_DIGITS] for i in range(0, len(number), GROUP_DIGITS)]


def format_safety_number(number: str, per_line: int = GROUPS_PER_LINE) -> str:
    """Groups of five, ``per_line`` to a line: easy to read out and compare."""
    parts = groups(number)
    return "\n".join(" ".join(parts[i : i + per_line]) for i in range(0, len(parts), per_line))
