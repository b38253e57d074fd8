"""Handles that belong to the platform, and how its operator registers them.

Reports to the moderation desk are sealed to whoever holds its handle, so nobody may register
that handle, or one a person could take for it, through the public endpoint: anyone who held
``@moderation`` (or ``@m0deration``) would read who reported whom. The operator registers the
desk directly in the relay's database (``sealpost desk create``), and each client pins the
desk's key fingerprint (``SEALPOST_MODERATION_KEY_FINGERPRINT``) before sealing a report.
"""

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from server.models import Account
from shared.keys import key_fingerprint

RESERVED = ("moderation", "admin", "support", "system", "security", "relay", "sealpost")
# Words a squatter adds to a reserved one to look official: "moderation_team", "official.admin".
_AFFIXES = (
    "",
    "team",
    "desk",
    "official",
    "help",
    "helpdesk",
    "staff",
    "bot",
    "hq",
    "center",
    "centre",
    "app",
    "service",
    "services",
    "the",
    "real",
    "platform",
)
# Digits and letters that read alike in a handle ([a-z0-9_.-] only, so no Unicode here).
_LOOKS_LIKE = str.maketrans(
    {"0": "o", "1": "l", "i": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
)


class ReservedHandleError(Exception):
    """The operator's registration of a reserved handle could not be done (the message says
    why)."""


def _skeleton(handle: str) -> str:
    return "".join(c for c in handle.lower().translate(_LOOKS_LIKE) if c.isalpha())


def _one_edit_apart(a: str, b: str) -> bool:
    """True if one substitution, insertion, deletion or swap of neighbours turns a into b."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        i = diffs[0]
        return len(diffs) == 2 and diffs[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def reserved_word(handle: str) -> str | None:
    """The platform handle ``handle`` could pass for, or None.

    A handle is reserved when, read as it looks (0 as o, 1 as l, separators and other digits
    dropped), it is a platform word, one typo away from one (words of six letters or more),
    or a platform word with an official-sounding word before or after it.
    """
    skeleton = _skeleton(handle)
    for word in RESERVED:
        target = _skeleton(word)
        for affix in map(_skeleton, _AFFIXES):
            if skeleton in (target + affix, affix + target):
                return word
        if len(target) >= 6 and _one_edit_apart(skeleton, target):
            return word
    return None


def register(
    engine: Engine, handle: str, display_name: str, sign_key: str, box_key: str, now_ms: int = 0
) -> str:
    """Register a platform account (the moderation desk) straight into the relay's database,
    as its operator; returns the key fingerprint clients must pin."""
    if reserved_word(handle) is None:
        raise ReservedHandleError(f"'{handle}' is not a reserved handle; register it normally.")
    account = Account(
        handle=handle,
        kind="business",
        display_name=display_name,
        country=None,
        sign_key=sign_key,
        box_key=box_key,
        verified=True,
        created_at=now_ms,
    )
    with Session(engine) as session:
        session.add(account)
        try:
            session.commit()
        except IntegrityError as exc:
            raise ReservedHandleError(f"'{handle}' is already registered on this relay.") from exc
    return key_fingerprint(sign_key, box_key)
