"""A relay on loopback behind a recording ASGI layer: every request exactly as it arrived.

The relay app is built by ``server.app.create_app`` unchanged; :class:`Recorder` wraps it and
keeps, per HTTP exchange, the method, the raw path and query, every header, the full body (read
before the app sees it, so even a body the app ignores is kept), the client address, and the
answer. :class:`RecordingRelay` serves the wrapper with uvicorn in a thread, as
``server.embedded.EmbeddedRelay`` does with the bare app; :class:`RelayProcess` runs one in a
process of its own, optionally on a manual clock that the caller moves (the simulator).
"""

import gc
import multiprocessing
import resource
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.clock import Clock, ManualClock
from server.embedded import EmbeddedRelay
from server.settings import RelaySettings


@dataclass
class Exchange:
    """One HTTP request the relay received, and what it answered."""

    index: int
    method: str
    target: str  # path and ?query exactly as on the request line
    headers: list[tuple[str, str]]  # names lower-cased by the server, values as sent
    body: bytes
    client: str
    status: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response: bytes = b""
    at: float = 0.0  # wall time (unix s) the request reached the relay: what a curious one keeps

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def header_bytes(self) -> bytes:
        return "".join(f"{k}: {v}\r\n" for k, v in self.headers).encode("latin-1")

    @property
    def wire(self) -> bytes:
        """Everything the relay received for this request, as one blob."""
        line = f"{self.method} {self.target} HTTP/1.1\r\n".encode("latin-1")
        return line + self.header_bytes + b"\r\n" + self.body

    def label(self) -> str:
        return f"#{self.index} {self.method} {self.target}"


class Recorder:
    """ASGI middleware that records every HTTP exchange and passes it on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body arrived
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        client = scope.get("client") or ("?", 0)
        with self._lock:
            exchange = Exchange(
                index=len(self.exchanges),
                method=scope["method"],
                target=target,
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                body=b"".join(chunks),
                client=f"{client[0]}:{client[1]}",
                at=time.time(),
            )
            self.exchanges.append(exchange)
        buffered: Message = {"type": "http.request", "body": exchange.body, "more_body": False}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return buffered
            return await receive()

        response: list[bytes] = []

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]
                ]
            elif message["type"] == "http.response.body":
                response.append(message.get("body", b""))
                exchange.response = b"".join(response)
            await send(message)

        await self.app(scope, replay, record)


class RecordingRelay(EmbeddedRelay):
    """An embedded relay whose every request passes through a :class:`Recorder`."""

    def __init__(self, settings: RelaySettings, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock, wrap=Recorder)
        assert isinstance(self.served, Recorder)
        self.recorder = self.served

    @property
    def exchanges(self) -> list[Exchange]:
        return self.recorder.exchanges


def _serve(
    settings_json: str, conn: Connection, start_ms: int | None, plant: str | None = None
) -> None:
    """Child process: run a recording relay until told to stop, then hand back the record.
    ``plant``: a relay plant (sealpost/audit/plants.py) put in place before the app is
    built, for the audit's selftest."""
    from sealpost.audit.plants import planted

    with planted(plant, "relay"):
        _serve_relay(settings_json, conn, start_ms)


def _serve_relay(settings_json: str, conn: Connection, start_ms: int | None) -> None:
    settings = RelaySettings.model_validate_json(settings_json)
    # The record grows to tens of thousands of objects; full collections that rescan it
    # would make the relay slower the longer the audit runs.
    gc.set_threshold(50_000, 20, 100)
    clock = ManualClock(start_ms) if start_ms is not None else None
    with RecordingRelay(settings, clock) as relay:
        gc.freeze()
        conn.send(relay.url)
        while True:
            command, *args = conn.recv()
            if command == "stop":
                break
            if command == "count":
                conn.send(len(relay.exchanges))
            elif command == "streams":  # delivery streams opened so far
                conn.send(
                    sum(e.method == "GET" and e.path.endswith("/stream") for e in relay.exchanges)
                )
            elif command == "advance":  # move the manual clock, then release what is due
                (to_ms,) = args
                assert clock is not None, "advance needs a relay started with start_ms"
                clock.advance(max(0, to_ms - clock.now_ms()))
                began = time.time()
                changed = relay.app.state.dispatcher.run_once()
                conn.send((began, changed))
            elif command == "first":  # the first exchange with this method and path
                method, path = args
                conn.send(
                    next(
                        (e for e in relay.exchanges if e.method == method and e.path == path),
                        None,
                    )
                )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send((relay.exchanges, usage.ru_utime + usage.ru_stime))
    conn.close()


class RelayProcess:
    """A :class:`RecordingRelay` in a process of its own, so that the relay and the simulated
    clients each have a core (and an interpreter lock) to themselves.

    ``start()`` returns once it listens at ``url``; ``count()``, ``streams()`` and
    ``first(method, path)`` look at the record so far; ``stop()`` shuts it down and returns
    every exchange recorded. With ``start_ms`` the relay's clock (scheduling, caps, expiry)
    is a manual one starting there, moved only by ``advance_to``.
    """

    def __init__(
        self, settings: RelaySettings, start_ms: int | None = None, plant: str | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(settings.model_dump_json(), child, start_ms, plant),
            name="audit-relay",
            daemon=True,
        )
        self.url = ""
        self.cpu_s = 0.0  # the relay process's CPU time, known after stop()

    def start(self) -> "RelayProcess":
        self._process.start()
        try:
            if not self._conn.poll(60):
                raise EOFError
            self.url = self._conn.recv()
        except EOFError as exc:
            self.kill()
            raise RuntimeError("the audited relay did not start") from exc
        return self

    def count(self) -> int:
        self._conn.send(("count",))
        return int(self._conn.recv())

    def streams(self) -> int:
        """How many delivery streams (``GET /v1/mailboxes/{handle}/stream``) were opened."""
        self._conn.send(("streams",))
        return int(self._conn.recv())

    def advance_to(self, ms: int) -> tuple[float, int]:
        """Move the relay's manual clock forward to ``ms`` and run one dispatcher pass there,
        releasing (or refusing) every scheduled copy now due and expiring overdue ones.

        Returns the wall time (unix s) at which the pass began and how many rows it changed.
        """
        self._conn.send(("advance", ms))
        began, changed = self._conn.recv()
        return float(began), int(changed)

    def first(self, method: str, path: str) -> Exchange | None:
        self._conn.send(("first", method, path))
        found: Exchange | None = self._conn.recv()
        return found

    def stop(self) -> list[Exchange]:
        try:
            self._conn.send(("stop",))
            exchanges: list[Exchange]
            exchanges, self.cpu_s = self._conn.recv()
        finally:
            self._process.join(timeout=15)
            if self._process.is_alive():
                self._process.kill()
        return exchanges

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
