"""Lean HTTP/1.1 for load generators: a signed request and an SSE reader on raw asyncio streams.

A benchmark of the relay must not be limited by its own clients. With a thousand connected
clients, httpx spent more CPU parsing streamed lines than the relay spent producing them, so
the delivery benchmark speaks the protocol directly: one keep-alive connection per client for
its requests, one for its stream. The real client (client/relay_api.py) keeps using httpx;
its own costs are measured by the catch-up benchmark.
"""

import asyncio
from collections.abc import AsyncIterator

from shared.auth import sign_request
from shared.keys import AccountKeys


class Connection:
    """One keep-alive HTTP/1.1 connection to the relay, signing as ``handle``."""

    def __init__(self, host: str, port: int, handle: str, keys: AccountKeys) -> None:
        self.host, self.port = host, port
        self.handle, self.keys = handle, keys
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._busy = asyncio.Lock()  # one request at a time on the keep-alive connection

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    def _head(self, method: str, path: str, body: bytes) -> bytes:
        headers = sign_request(self.keys.signing, self.handle, method, path, body)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send a signed request and read its (Content-Length framed) answer."""
        async with self._busy:
            reader, writer = await self._open()
            writer.write(self._head(method, path, body) + body)
            status, headers = await _read_head(reader)
            length = int(headers.get("content-length", "0"))
            return status, await reader.readexactly(length)

    async def events(self, path: str) -> AsyncIterator[bytes]:
        """Open a server-sent event stream; yields each event's raw text (chunked framing)."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(self._head("GET", path, b""))
            status, _ = await _read_head(reader)
            if status != 200:
                raise RuntimeError(f"stream {path} answered {status}")
            pending = b""
            while True:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                pending += await reader.readexactly(size)
                await reader.readexactly(2)  # the CRLF after each chunk
                *complete, pending = pending.split(b"\n\n")
                for event in complete:
                    yield event
        finally:
            writer.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers
