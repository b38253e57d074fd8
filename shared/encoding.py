"""Byte encodings used on the wire: canonical JSON for signed data, base64 for binary fields."""

import base64
import binascii
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as the canonical JSON that signatures cover.

    Keys sorted, no insignificant whitespace, UTF-8 (non-ASCII kept as is). Two parties that hold
    the same data always produce the same bytes.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 section 4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict inverse of :func:`b64encode`; raises ``ValueError`` on anything else."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not valid base64") from exc
