"""The shuffler's Ed25519 signing key: created once, kept 0600, its public half given to the
relay's operator (``SEALPOST_RELAY_SHUFFLER_KEYS``)."""

import os
from pathlib import Path

from nacl.signing import SigningKey

from shared.encoding import b64decode, b64encode


def load_or_create(path: Path) -> SigningKey:
    """The key stored at ``path`` (base64 seed), generated and written first if missing."""
    try:
        return SigningKey(b64decode(path.read_text().strip()))
    except FileNotFoundError:
        pass
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600 from creation: the seed is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(b64encode(bytes(key)) + "\n")
    return key
