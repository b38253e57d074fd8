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
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("w")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "sealpost", "relay", "--db", db_url, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **{f"SEALPOST_RELAY_{k.upper()}": v for k, v in env.items()}},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"relay process did not start; see {log}")
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
