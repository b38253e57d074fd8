"""The token key log: every campaign's token issuer key, in one signed, append-only list.

Why: a token's DLEQ proof (shared/tokens.py) shows only that the relay evaluated it with the
key it named *in the same answer*. A relay that names one person a key of her own passes that
check and can then tell her report from everyone else's. So the relay also publishes every
key it issues with in this log, the same for everyone, and a device uses a token only if the
key it was proven against is the one the log lists for that campaign (and the log it fetched,
through the shuffler, extends the one it saw before). This follows Privacy Pass's key
consistency work (draft-ietf-privacypass-key-consistency, "shared proxy with key check", and
draft-group-privacypass-consistency-mirror): clients fetch the key through a party that
serves everyone the same copy, and compare.

The log, as ``GET /v1/signals/key-log`` serves it (:class:`KeyLog`)::

    entries[i] = {index: i, campaign_id, public_key (base64, 32 bytes), valid_from (unix ms),
                  prev: hash of entries[i-1] (GENESIS for the first)}
    hash(entry) = SHA-256("SEALPOST-KEYLOG-ENTRY-V1\\n" || canonical JSON of the entry), hex
    head = {size: len(entries), hash: hash of the last entry (GENESIS when empty),
            log_key: the relay's Ed25519 log-signing key (base64),
            signature: Ed25519 over "SEALPOST-KEYLOG-HEAD-V1\\n<size>\\n<hash>" (base64)}

One entry per campaign, for the campaign's whole life: a second entry for a campaign is a
rewrite, not a rotation, and a device refuses the log. The head is a hash chain, not a Merkle
tree: checking that a log extends one seen before means fetching it whole (fine at the
simulator's scale; a Certificate Transparency-style tree would make both proofs logarithmic).

The signature does not stop the relay from forking its log (it holds the key); it makes a fork
*evidence*: two signed heads that cannot both be true, which the device keeps and can show.
Pinning the log key's fingerprint (``SEALPOST_TOKEN_LOG_KEY_FINGERPRINT``) stops anyone else
(a shuffler, a network attacker) from standing in for the relay's log.
"""

import hashlib
from typing import Literal

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from pydantic import BaseModel, ConfigDict, Field

from shared.encoding import b64decode, b64encode, canonical_json

KEY_LOG_PATH = "/v1/signals/key-log"  # on the relay
SHUFFLER_KEY_LOG_PATH = "/v1/key-log"  # on the shuffler: the relay's log, passed through
GENESIS = "0" * 64
_ENTRY_DOMAIN = b"SEALPOST-KEYLOG-ENTRY-V1\n"
_HEAD_DOMAIN = "SEALPOST-KEYLOG-HEAD-V1"
_HEX64 = r"^[0-9a-f]{64}$"


class KeyLogEntry(BaseModel):
    """One campaign's issuer public key, chained to the entry before it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    index: int = Field(ge=0)
    campaign_id: str = Field(min_length=1, max_length=64)
    public_key: str = Field(max_length=64, description="base64, 32 bytes (ristretto255)")
    valid_from: int = Field(ge=0, description="unix ms: when the relay published the key")
    prev: str = Field(pattern=_HEX64, description="hash of the previous entry, or GENESIS")


class KeyLogHead(BaseModel):
    """The log's size and last hash, signed with the relay's log key."""

    model_config = ConfigDict(extra="forbid", strict=True)

    size: int = Field(ge=0)
    hash: str = Field(pattern=_HEX64)
    log_key: str = Field(max_length=64, description="base64 Ed25519 public key")
    signature: str = Field(max_length=128, description="base64 Ed25519 signature")


class KeyLog(BaseModel):
    """``GET /v1/signals/key-log``: the signed head and every entry, in order."""

    model_config = ConfigDict(extra="forbid", strict=True)

    head: KeyLogHead
    entries: list[KeyLogEntry]


# --- building it (the relay) -----------------------------------------------------------------


def entry_hash(entry: KeyLogEntry) -> str:
    return hashlib.sha256(_ENTRY_DOMAIN + canonical_json(entry.model_dump())).hexdigest()


def head_signing_string(size: int, head_hash: str) -> bytes:
    return f"{_HEAD_DOMAIN}\n{size}\n{head_hash}".encode()


def sign_head(key: SigningKey, size: int, head_hash: str) -> KeyLogHead:
    """The head of a log of ``size`` entries whose last hash is ``head_hash``. Ed25519 is
    deterministic: the same log always gets the same signature."""
    signature = key.sign(head_signing_string(size, head_hash)).signature
    return KeyLogHead(
        size=size,
        hash=head_hash,
        log_key=b64encode(bytes(key.verify_key)),
        signature=b64encode(signature),
    )


def log_key_fingerprint(log_key_b64: str) -> str:
    """SHA-256 of the log key's 32 bytes, hex: what an operator publishes and clients pin."""
    return hashlib.sha256(b64decode(log_key_b64)).hexdigest()


# --- checking it (the device) ----------------------------------------------------------------

Problem = Literal[
    "bad_chain",  # an entry out of place, or not chained to the one before
    "bad_signature",  # the head's signature does not verify, or names another log
    "log_key_not_pinned",  # signed by a key whose fingerprint is not the pinned one
    "log_key_changed",  # signed by another key than the log this device saw before
    "duplicate_campaign",  # two keys for one campaign
    "fork",  # does not extend the log this device saw before
]


class KeyLogError(ValueError):
    """The log cannot be used as it is."""


class KeyLogInvalid(KeyLogError):
    """A log that no honest relay serves: ``reason`` is one of :data:`Problem`."""

    def __init__(self, reason: Problem, detail: str) -> None:
        super().__init__(f"{detail} ({reason})")
        self.reason: Problem = reason
        self.detail = detail


class KeyLogBehind(KeyLogError):
    """Shorter than the log this device saw before: an older copy (a cache), not a fork as
    far as the device can tell (it keeps only the head). Try again later."""


class KeyLogView(BaseModel):
    """A verified log: its head and each campaign's key."""

    head: KeyLogHead
    keys: dict[str, str]


def verify_log(
    log: KeyLog, *, seen: KeyLogHead | None = None, pinned_fingerprint: str | None = None
) -> KeyLogView:
    """Check ``log`` whole: the chain, the head and its signature, the log key (pinned, or
    the one ``seen`` was signed with), and that it extends ``seen`` (the head this device
    verified last). Raises :class:`KeyLogInvalid` or :class:`KeyLogBehind`."""
    keys: dict[str, str] = {}
    hashes: list[str] = []
    prev = GENESIS
    for position, entry in enumerate(log.entries):
        if entry.index != position or entry.prev != prev:
            raise KeyLogInvalid(
                "bad_chain", f"entry {position} is not chained to the entry before it"
            )
        if entry.campaign_id in keys:
            raise KeyLogInvalid(
                "duplicate_campaign",
                f"the log lists two keys for campaign {entry.campaign_id}",
            )
        keys[entry.campaign_id] = entry.public_key
        prev = entry_hash(entry)
        hashes.append(prev)
    head = log.head
    if head.size != len(log.entries) or head.hash != prev:
        raise KeyLogInvalid("bad_chain", "the head does not name the log's last entry")
    try:
        VerifyKey(b64decode(head.log_key)).verify(
            head_signing_string(head.size, head.hash), b64decode(head.signature)
        )
    except (ValueError, BadSignatureError):
        raise KeyLogInvalid("bad_signature", "the head's signature does not verify") from None
    if pinned_fingerprint is not None:
        if log_key_fingerprint(head.log_key) != pinned_fingerprint.strip().lower():
            raise KeyLogInvalid(
                "log_key_not_pinned",
                "the log is signed by a key whose fingerprint is not the pinned one "
                "(SEALPOST_TOKEN_LOG_KEY_FINGERPRINT)",
            )
    elif seen is not None and head.log_key != seen.log_key:
        raise KeyLogInvalid(
            "log_key_changed", "the log is signed by another key than the log seen before"
        )
    if seen is not None and seen.size > 0:
        if head.size < seen.size:
            raise KeyLogBehind(
                f"the log has {head.size} entries; this device saw {seen.size} before"
            )
        if hashes[seen.size - 1] != seen.hash:
            raise KeyLogInvalid(
                "fork",
                f"the log's first {seen.size} entries are not the ones this device saw "
                "before: the relay rewrote them",
            )
    return KeyLogView(head=head, keys=keys)
