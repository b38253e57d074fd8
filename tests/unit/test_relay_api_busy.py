"""A relay that is busy (503 with Retry-After, server/request_guard.py) is asked again, as a
rate-limited one is; a 503 without it is an answer."""

import httpx

from client.relay_api import RelayAPI
from shared.keys import AccountKeys


async def _answers(*responses: httpx.Response) -> tuple[int, int]:
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Sealpost-Nonce"])
        return responses[min(len(sent), len(responses)) - 1]

    api = RelayAPI("http://relay.test", "alice", AccountKeys.generate())
    api._http = httpx.AsyncClient(base_url=api.base_url, transport=httpx.MockTransport(handler))
    try:
        answer = await api._send("GET", "/v1/prefs")
    finally:
        await api.aclose()
    assert len(set(sent)) == len(sent)  # every try signed afresh
    return answer.status_code, len(sent)


async def test_a_busy_relay_is_asked_again_after_retry_after() -> None:
    busy = httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {}})
    fine = httpx.Response(200, json={})
    assert await _answers(busy, fine) == (200, 2)


async def test_a_503_without_retry_after_is_returned() -> None:
    down = httpx.Response(503, json={"error": {}})
    assert await _answers(down, httpx.Response(200, json={})) == (503, 1)
