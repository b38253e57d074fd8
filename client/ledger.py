"""The privacy ledger: every request this client sends to the relay, appended as JSON lines."""

import json
import threading
import time
from pathlib import Path
from typing import Any


class PrivacyLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        """Append one request exactly as it left the device (body decoded when it is JSON)."""
        decoded: Any
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = {"raw_bytes": len(body)}
        entry = {
            "at": int(time.time() * 1000),
            "method": method,
            "url": url,
            "headers": headers,
            "body": decoded,
        }
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
