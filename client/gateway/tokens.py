"""Bearer tokens the gateway issues (``sealpost gateway token``) and checks on every request.

Only each token's SHA-256 is kept (``<profile>/gateway-tokens.json``, 0600): the file can be
read without handing out a working token. A token is random, so a plain hash is enough.
"""

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs

from client.profile import Profile

log = logging.getLogger(__name__)
TOKENS_FILE = "gateway-tokens.json"
PREFIX = "SPGW"  # tells a Sealpost gateway token from a Meta one in a config file


def presented(headers: Mapping[str, str], query_string: str) -> str:
    """The token a request presents: ``Authorization: Bearer``, else ``?access_token=`` (both
    are the Graph API's); empty if neither."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        token = parse_qs(query_string).get("access_token", [""])[0]
    return token.strip()


def _path(profile: Profile) -> Path:
    return profile.dir / TOKENS_FILE


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _load(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return list(json.loads(path.read_text()))


def _write(path: Path, entries: list[dict[str, object]]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(entries, indent=2))
    os.replace(tmp, path)


def issue_token(profile: Profile, label: str = "") -> str:
    """A new token, valid until revoked; only its hash is written down."""
    token = PREFIX + secrets.token_urlsafe(32)
    path = _path(profile)
    entries = _load(path)
    entries.append({"sha256": _digest(token), "label": label, "issued_at": int(time.time())})
    _write(path, entries)
    return token


def issued_tokens(profile: Profile) -> list[dict[str, object]]:
    """Each token's label, when it was issued and the start of its hash (never the token)."""
    return [
        {"label": e.get("label", ""), "issued_at": e.get("issued_at"), "sha256": e["sha256"]}
        for e in _load(_path(profile))
    ]


def revoke_tokens(profile: Profile, which: str) -> int:
    """Revoke the token ``which`` (the token itself) or every token labelled ``which``; how
    many were revoked. A running gateway refuses them from its next request on."""
    path = _path(profile)
    entries = _load(path)
    digest = _digest(which.strip())
    kept = [e for e in entries if e["sha256"] != digest and e.get("label") != which]
    if len(kept) != len(entries):
        _write(path, kept)
    return len(entries) - len(kept)


class TokenBook:
    """The issued tokens' hashes, read again whenever the file changes: a token issued while
    the gateway runs works at once, without a restart."""

    def __init__(self, profile: Profile) -> None:
        self._path = _path(profile)
        self._digests: list[str] = []
        self._read_at: tuple[int, int, int] | None = None
        self.reload()

    def reload(self) -> None:
        try:
            found = self._path.stat()
        except FileNotFoundError:
            self._digests, self._read_at = [], None
            return
        # The file is replaced whole on every change (a new inode, usually a new size): its
        # modification time alone can stay the same when a token is revoked within the same
        # clock tick as it was issued, and a revoked token must not go on working.
        changed = (found.st_mtime_ns, found.st_ino, found.st_size)
        if changed != self._read_at:
            try:
                self._digests = [str(e["sha256"]) for e in _load(self._path)]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # Broken by hand: no token is known to be valid, so none is taken (190 to
                # every request, not a 500) until the file is fixed or a token is issued.
                log.warning("%s cannot be read (%s): every token is refused", self._path, exc)
                self._digests = []
            self._read_at = changed

    def __len__(self) -> int:
        return len(self._digests)

    def valid(self, token: str) -> bool:
        self.reload()
        digest = _digest(token)
        # Compared in constant time, each one: how long a refusal takes says nothing.
        return any([hmac.compare_digest(digest, known) for known in self._digests])
