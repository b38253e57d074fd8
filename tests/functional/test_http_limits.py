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
from shared.auth import sign_request
from shared.keys import AccountKeys
from tests.helpers import assert_error

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
        max_requests_in_flight="3",
        max_requests_in_flight_per_address="2",
        max_streams_per_account="2",
        anonymous_per_s="0.001",
        anonymous_burst="12",  # the registrations of the tests here, and room to spare
        header_timeout_s="600",
        body_timeout_s="600",
    ) as relay:
        yield relay


def _connect(relay: RelayProcess, source: str = "127.0.0.1") -> socket.socket:
    """A connection from ``source``: any 127.x.y.z is a client address of its own."""
    return socket.create_connection(
        ("127.0.0.1", relay.port), timeout=HANG_GUARD_S, source_address=(source, 0)
    )


def _health_from(relay: RelayProcess, source: str) -> tuple[int, dict]:
    connection = _connect(relay, source)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
    answer = _until_eof(connection)
    connection.close()
    return _status_and_body(answer)


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


@pytest.mark.parametrize("signed", [True, False])
def test_a_body_sent_in_part_is_answered_408_and_closed(quick: RelayProcess, signed: bool) -> None:
    """Signed (headers that pass every check made before the body) or anonymous."""
    if signed:
        keys = _register(quick, "slowpoke")
        path = "/v1/messages/batch"
        headers = _signed_headers(keys, "slowpoke", "POST", path, b"never all of it")
    else:
        path, headers = "/v1/signals", {"Content-Type": "application/json"}
    head = [f"POST {path} HTTP/1.1", "Host: relay", "Content-Length: 1000"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    connection = _connect(quick)
    connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b'{"envelopes": [')
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


def _register(relay: RelayProcess, handle: str, business: bool = False) -> AccountKeys:
    keys = AccountKeys.generate()
    kind = {"kind": "business"} if business else {"country": "+39"}
    body = json.dumps(
        {
            "handle": handle,
            "display_name": handle,
            "sign_key": keys.public.sign_b64,
            "box_key": keys.public.box_b64,
            **kind,
        }
    ).encode()
    headers = sign_request(keys.signing, handle, "POST", "/v1/accounts", body)
    answer = httpx.post(
        relay.url + "/v1/accounts",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return keys


def _signed_headers(
    keys: AccountKeys, handle: str, method: str, path: str, body: bytes = b"", **kw: int
) -> dict[str, str]:
    return {
        **sign_request(keys.signing, handle, method, path, body, **kw),
        "Content-Type": "application/json",
    }


def test_an_account_holds_a_few_streams_not_hundreds(capped: RelayProcess) -> None:
    """The finding: one account held 571 live streams."""
    keys = _register(capped, "streamer")
    path = "/v1/mailboxes/streamer/stream"
    with httpx.Client(base_url=capped.url, timeout=10) as http:
        first = http.stream("GET", path, headers=_signed_headers(keys, "streamer", "GET", path))
        second = http.stream("GET", path, headers=_signed_headers(keys, "streamer", "GET", path))
        with first as one, second as two:
            assert one.status_code == two.status_code == 200
            third = http.get(path, headers=_signed_headers(keys, "streamer", "GET", path))
            assert_error(third, 429, "too_many_streams", "2")
        # Closed: a new one is served once the relay noticed (on its own time).
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            again = http.stream("GET", path, headers=_signed_headers(keys, "streamer", "GET", path))
            with again as stream:
                if stream.status_code == 200:
                    break
            assert time.monotonic() < deadline


def _hold(relay: RelayProcess, keys: AccountKeys, handle: str, source: str) -> socket.socket:
    """A signed batch whose body never comes: a request in flight until the connection ends."""
    path = "/v1/messages/batch"
    headers = _signed_headers(keys, handle, "POST", path, b"the whole body")
    head = [f"POST {path} HTTP/1.1", "Host: relay", "Content-Length: 1000"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    connection = _connect(relay, source)
    connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"{")
    return connection


def _until_served(relay: RelayProcess, source: str) -> None:
    """Until a request from ``source`` is served again (the relay notices closed
    connections on its own time)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while _health_from(relay, source)[0] != 200:
        assert time.monotonic() < deadline


def test_requests_in_flight_beyond_the_cap_get_503(capped: RelayProcess) -> None:
    """Three requests whose bodies are still coming, from two addresses, hold the three
    places; a request from a third address is refused at once, and served again once they
    are gone."""
    keys = _register(capped, "holder")
    held = [_hold(capped, keys, "holder", "127.0.0.2") for _ in range(2)]
    held.append(_hold(capped, keys, "holder", "127.0.0.3"))
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while (busy := _health_from(capped, "127.0.0.1"))[0] == 200:  # until all are in
            assert time.monotonic() < deadline
        assert busy[0] == 503
        assert busy[1]["error"]["code"] == "server_busy"
    finally:
        for connection in held:
            connection.close()
    _until_served(capped, "127.0.0.1")


def test_one_address_cannot_take_every_place(capped: RelayProcess) -> None:
    keys = _register(capped, "greedy")
    held = [_hold(capped, keys, "greedy", "127.0.0.4") for _ in range(2)]
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while (crowded := _health_from(capped, "127.0.0.4"))[0] == 200:  # until both are in
            assert time.monotonic() < deadline
        assert crowded[0] == 429
        assert crowded[1]["error"]["code"] == "rate_limited"
        assert "in flight" in crowded[1]["error"]["message"]
        assert _health_from(capped, "127.0.0.1")[0] == 200  # everyone else is served
    finally:
        for connection in held:
            connection.close()
    _until_served(capped, "127.0.0.4")


# --- signatures before bodies -------------------------------------------------------------


def test_a_garbage_signature_is_refused_before_the_body_is_parsed(capped: RelayProcess) -> None:
    """The finding: a 14 MiB batch with a garbage signature was parsed and base64-checked
    first. Now the signature is checked first: a body that is not even JSON is refused for
    its signature (401), not for its JSON (400)."""
    keys = _register(capped, "batcher")
    body = b'{"envelopes": [' + b"x" * (14 * 1024 * 1024)
    headers = _signed_headers(keys, "batcher", "POST", "/v1/messages/batch", b"other bytes")
    answer = httpx.post(
        capped.url + "/v1/messages/batch", content=body, headers=headers, timeout=HANG_GUARD_S
    )
    assert_error(answer, 401, "bad_signature")
    # Signed properly, the same bytes are refused for what they are.
    headers = _signed_headers(keys, "batcher", "POST", "/v1/messages/batch", body)
    answer = httpx.post(
        capped.url + "/v1/messages/batch", content=body, headers=headers, timeout=HANG_GUARD_S
    )
    assert_error(answer, 400, "malformed_json")


def test_a_stale_request_is_refused_before_its_body_is_sent(capped: RelayProcess) -> None:
    """Everything that can be checked without the body is: the relay answers a stale
    request while its 14 MiB body has not even been sent (it is never sent here)."""
    keys = _register(capped, "stale")
    stale_ms = int(time.time() * 1000) - 3_600_000
    for handle in ("stale", "nobody"):  # known or not, the same answer, the same moment
        headers = _signed_headers(
            keys, handle, "POST", "/v1/messages/batch", b"", timestamp_ms=stale_ms
        )
        head = ["POST /v1/messages/batch HTTP/1.1", "Host: relay", "Content-Length: 14680064"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        connection = _connect(capped)
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        answer = _until_eof(connection)
        connection.close()
        status, body = _status_and_body(answer)
        assert status == 401, answer[:300]
        assert body["error"]["code"] == "stale_request"


def test_an_unknown_handle_fails_as_a_wrong_key_does(capped: RelayProcess) -> None:
    keys = _register(capped, "known")
    body = json.dumps({"ids": ["0" * 32]}).encode()
    answers = []
    for handle in ("known", "unknown"):
        path = f"/v1/mailboxes/{handle}/ack"
        wrong = AccountKeys.generate()
        headers = _signed_headers(wrong, handle, "POST", path, body)
        answers.append(httpx.post(capped.url + path, content=body, headers=headers, timeout=10))
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()
    assert keys  # registered, so "known" is


# --- anonymous endpoints ------------------------------------------------------------------


def test_anonymous_endpoints_are_limited_per_address(capped: RelayProcess) -> None:
    """The finding: anonymous POST /v1/signals (and the other unsigned endpoints) had no
    limit. From one address, a burst is served, then 429 with Retry-After."""
    answers = []
    with httpx.Client(base_url=capped.url, timeout=10) as http:
        for _ in range(8):
            answers.append(http.post("/v1/signals", json={"reports": ["x"]}))
            answers.append(http.get("/v1/signals/key-log"))
        limited = [a for a in answers if a.status_code == 429]
        assert limited, [a.status_code for a in answers]
        assert len(answers) - len(limited) <= 12
        assert_error(limited[0], 429, "rate_limited", "address")
        assert int(limited[0].headers["Retry-After"]) >= 1
        # Liveness stays open to balancers.
        assert http.get("/healthz").status_code == 200


def test_an_anonymous_body_is_small(quick: RelayProcess) -> None:
    answer = httpx.post(
        quick.url + "/v1/signals",
        content=b'{"reports": ["' + b"r" * 200_000 + b'"]}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error(answer, 413, "payload_too_large")


# --- integers -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30])
def test_huge_integers_are_refused_422_never_500(quick: RelayProcess, value: int) -> None:
    """The finding: send_at 2^63-1 gave a 500."""
    handle = f"biz{abs(hash(value)) % 10**8}"
    keys = _register(quick, handle, business=True)
    beyond = not -(2**63) <= value <= 2**63 - 1
    cases = [
        ("POST", "/v1/campaigns", {"template_id": "t", "budget": value, "audience_size": 1}),
        (
            "POST",
            "/v1/campaigns",
            {"template_id": "t", "budget": 1, "audience_size": 1, "send_at": value},
        ),
        ("POST", "/v1/budget/top-up", {"amount": value}),
        ("PUT", "/v1/prefs/level", {"level": "weekly", "weekly_limit": value}),
        ("GET", f"/v1/mailboxes/{handle}?after={value}", None),
        ("GET", f"/v1/mailboxes/{handle}?limit={value}", None),
    ]
    for method, path, payload in cases:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = _signed_headers(keys, handle, method, path, body)
        answer = httpx.request(method, quick.url + path, content=body, headers=headers, timeout=10)
        assert answer.status_code < 500, (method, path, value, answer.text)
        if beyond:
            assert_error(answer, 422, "invalid_request")
