"""The privacy ledger: every request this client sends to the relay, appended as JSON lines."""

import json
import threading
import time
from pathlib import Path
from typing import Any

# Enough for the last few hundred entries; a signed request is rarely further back than that.
_TAIL_BYTES = 256 * 1024
_SIGNED_MARK = '"Sealpost-Signature":'


class PrivacyLedger:
    """Appends to ``path``; with ``path=None`` it holds entries in memory until :meth:`attach`
    (registration happens before the profile directory exists, and must be recorded too)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._held: list[str] = []
        self._lock = threading.Lock()

    def attach(self, path: Path) -> None:
        """Start writing to ``path``, first flushing whatever was held in memory."""
        with self._lock:
            self.path = path
            held, self._held = self._held, []
            with path.open("a", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in held)

    def record(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        is_json: bool = False,
    ) -> None:
        """Append one request exactly as it left the device (body decoded when it is JSON).

        ``is_json``: the caller serialised ``body`` as JSON itself, so it is written into the
        line as it is; decoding a 1.6 MB campaign batch only to encode it again cost the
        console a tenth of its CPU.
        """
        entry = {
            "at": int(time.time() * 1000),
            "method": method,
            "url": url,
            "headers": headers,
        }
        head = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)[:-1]
        if is_json and body and b"\n" not in body:  # one line per entry
            line = f'{head},"body":{body.decode()}}}'
        else:
            decoded: Any
            try:
                decoded = json.loads(body) if body else None
            except ValueError:
                decoded = {"raw_bytes": len(body)}
            text = json.dumps(decoded, separators=(",", ":"), ensure_ascii=False)
            line = f'{head},"body":{text}}}'
        with self._lock:
            if self.path is None:
                self._held.append(line)
                return
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")

    def last_signed_at(self) -> float | None:
        """When the newest signed request in the ledger left (unix seconds), or None.

        Reads only the file's tail: a later process (``sealpost inbox``) learns when an
        earlier one last spoke to the relay as the account without parsing the whole ledger.
        """
        lines = list(self._held)
        if self.path is not None and self.path.exists():
            with self.path.open("rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - _TAIL_BYTES))
                lines = f.read().decode("utf-8", "replace").splitlines()
        for line in reversed(lines):
            if _SIGNED_MARK not in line:
                continue
            try:
                return int(json.loads(line)["at"]) / 1000
            except (ValueError, KeyError, TypeError):
                continue  # the first line of the tail may be cut
        return None

    def entries(self) -> list[dict[str, Any]]:
        if self.path is None:
            return [json.loads(line) for line in self._held]
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
