"""Account key pairs: an Ed25519 signing key and an X25519 key for sealed boxes."""

import hashlib
from dataclasses import dataclass

from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from shared.encoding import b64decode, b64encode


@dataclass(frozen=True)
class AccountKeys:
    """The private half of an account; never leaves the device."""

    signing: SigningKey
    box: PrivateKey

    @classmethod
    def generate(cls) -> "AccountKeys":
        return cls(signing=SigningKey.generate(), box=PrivateKey.generate())

    @property
    def public(self) -> "PublicKeys":
        return PublicKeys(sign=self.signing.verify_key, box=self.box.public_key)

    def to_json(self) -> dict[str, str]:
        return {
            "sign_seed": b64encode(bytes(self.signing)),
            "box_secret": b64encode(bytes(self.box)),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> "AccountKeys":
        return cls(
            signing=SigningKey(b64decode(data["sign_seed"])),
            box=PrivateKey(b64decode(data["box_secret"])),
        )


@dataclass(frozen=True)
class PublicKeys:
    """What the key directory publishes for a handle."""

    sign: VerifyKey
    box: PublicKey

    @property
    def sign_b64(self) -> str:
        return b64encode(bytes(self.sign))

    @property
    def box_b64(self) -> str:
        return b64encode(bytes(self.box))

    @classmethod
    def from_b64(cls, sign: str, box: str) -> "PublicKeys":
        return cls(sign=VerifyKey(b64decode(sign)), box=PublicKey(b64decode(box)))


def key_fingerprint(sign_key_b64: str, box_key_b64: str) -> str:
    """SHA-256 of an account's Ed25519 and X25519 public keys, in that order, hex: what a
    client pins for the moderation desk. Both keys: a report is sealed to the box key, so a
    relay that kept the desk's signing key but swapped its box key would otherwise read it."""
    return hashlib.sha256(b64decode(sign_key_b64) + b64decode(box_key_b64)).hexdigest()
