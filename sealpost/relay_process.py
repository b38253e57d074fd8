"""A relay in its own OS process: for benchmarks (client and relay on separate cores) and for
tests of several relays sharing one PostgreSQL database. The database must be migrated."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RelayProcess:
    """``sealpost relay`` as a child process; ``env`` sets SEALPOST_RELAY_<NAME> options."""

    def __init__(self, db_url: str, log: Path, port: int | None = None, **env: str) -> None:
        environ = {**os.environ, **{f"SEALPOST_RELAY_{k.upper()}": v for k, v in env.items()}}
        # A free port can be taken by another process between choosing it and binding it
        # (tests run side by side): a port of our choosing is chosen again, a few times.
        for attempt in range(3):
            self.port = port or free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self._log = log.open("w" if attempt == 0 else "a")
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sealpost",
                    "relay",
                    "--db",
                    db_url,
                    "--port",
                    str(self.port),
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=environ,
            )
            if self._started():
                return
            self.stop()
            if port is not None or "address already in use" not in log.read_text():
                break
        raise RuntimeError(f"relay process did not start; see {log}")

    def _started(self) -> bool:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as in a crash."""
        self._proc.kill()
        self._proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._log.close()

    def __enter__(self) -> "RelayProcess":
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
