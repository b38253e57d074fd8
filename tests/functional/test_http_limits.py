"""What a hostile client can hold of a relay before any signature is checked, tried against
``sealpost relay`` in its own process (#17 item 3): request heads of any size, requests sent
half and never finished, connections and streams without end, large bodies with a garbage
signature, anonymous endpoints hammered from one address, integers past 64 bits.

Timeouts are set short here and waited for as the end of the connection (EOF); the socket
timeouts are only a guard against a hang."""

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from sealpost.relay_process import RelayProcess

HANG_GUARD_S = 60
HEAD_LIMIT = 16 * 1024  # the shipped default


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """A relay whose slow-client timeouts are short, with the other limits as shipped."""
    tmp = tmp_path_factory.mktemp("quick")
    with RelayProcess(
        f"sqlite:///{tmp}/relay.db",
        tmp / "relay.log",
        auto_migrate="true",
        header_timeout_s="1.5",
        body_timeout_s="1.5",
    ) as relay:
        yield relay


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """A relay with small caps on connections, streams and anonymous requests (and timeouts
    long enough that nothing here depends on them)."""
    tmp = tmp_path_factory.mktemp("capped")
    with RelayProcess(
        f"sqlite:///{tmp}/relay.db",
        tmp / "relay.log",
        auto_migrate="true",
        max_connections="12",
        max_streams_per_account="2",
        anonymous_per_s="0.001",
        anonymous_burst="6",
        header_timeout_s="600",
        body_timeout_s="600",
    ) as relay:
        yield relay


def _connect(relay: RelayProcess) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", relay.port), timeout=HANG_GUARD_S)
    return connection


def _until_eof(connection: socket.socket) -> bytes:
    """Everything the relay sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else {}


# --- request heads ------------------------------------------------------------------------


def test_a_header_flood_is_refused_with_431_before_it_is_read(quick: RelayProcess) -> None:
    """The finding: a 64 MiB header from nobody was read whole and answered 200."""
    connection = _connect(quick)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Flood: ")
    sent = 0
    chunk = b"a" * 65536
    try:
        while sent < 64 * 1024 * 1024:
            connection.sendall(chunk)
            sent += len(chunk)
        connection.sendall(b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the relay stopped reading: what this test wants
    try:
        answer = _until_eof(connection)
    except ConnectionResetError:
        pytest.fail("the relay reset the connection instead of answering 431")
    finally:
        connection.close()
    status, body = _status_and_body(answer)
    assert status == 431, answer[:200]
    assert body["error"]["code"] == "headers_too_large"
    # Stopped long before the flood ended (kernel buffers let some megabytes through).
    assert sent < 64 * 1024 * 1024


def test_many_small_headers_count_too(quick: RelayProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: relay\r\n"
    head += b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 20) for n in range(1000))
    connection = _connect(quick)
    connection.sendall(head + b"\r\n")
    status, body = _status_and_body(_until_eof(connection))
    connection.close()
    assert status == 431
    assert body["error"]["code"] == "headers_too_large"


def test_headers_within_the_limit_are_served(quick: RelayProcess) -> None:
    answer = httpx.get(
        quick.url + "/healthz", headers={"X-Big": "b" * (HEAD_LIMIT - 1024)}, timeout=10
    )
    assert answer.status_code == 200


# --- slow clients -------------------------------------------------------------------------


def test_half_sent_heads_are_answered_408_and_closed(quick: RelayProcess) -> None:
    """The finding: 400 of 400 half-sent requests were still held after 30 s."""
    connections = [_connect(quick) for _ in range(50)]
    for connection in connections:
        connection.sendall(b"POST /v1/signals HTTP/1.1\r\nHost: relay\r\nContent-Le")
    answers = [_until_eof(c) for c in connections]  # each ends: the relay closed it
    for connection in connections:
        connection.close()
    for answer in answers:
        status, body = _status_and_body(answer)
        assert status == 408
        assert body["error"]["code"] == "request_timeout"


def test_a_connection_that_never_speaks_is_closed(quick: RelayProcess) -> None:
    connection = _connect(quick)
    assert _until_eof(connection) == b""
    connection.close()


def test_a_body_sent_in_part_is_answered_408_and_closed(quick: RelayProcess) -> None:
    connection = _connect(quick)
    connection.sendall(
        b"POST /v1/messages HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n" + b'{"envelopes": ['
    )
    status, body = _status_and_body(_until_eof(connection))
    connection.close()
    assert status == 408
    assert body["error"]["code"] == "request_timeout"


# --- connections, streams -----------------------------------------------------------------


def test_connections_beyond_the_cap_get_503(capped: RelayProcess) -> None:
    held = [_connect(capped) for _ in range(12)]
    try:
        # Every held connection is known to the relay once it answered one request on it.
        for connection in held:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
            assert connection.recv(65536).startswith(b"HTTP/1.1 200")
        extra = _connect(capped)
        status, body = _status_and_body(_until_eof(extra))
        extra.close()
        assert status == 503
        assert body["error"]["code"] == "server_busy"
    finally:
        for connection in held:
            connection.close()
    # Room again once they are gone (the relay notices the closes on its own time).
    deadline = time.monotonic() + HANG_GUARD_S
    while httpx.get(capped.url + "/healthz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline
