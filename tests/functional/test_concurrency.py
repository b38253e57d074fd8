"""Many requests at once: more than the relay's worker threads, none left hanging."""

import asyncio

import httpx

from shared.auth import sign_request


async def test_more_concurrent_requests_than_worker_threads_all_complete(
    sqlite_relay, make_account
):
    alice = await make_account("alice", sqlite_relay)
    await make_account("bob", sqlite_relay)
    keys = alice.profile.keys
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=sqlite_relay.url, timeout=30, limits=limits) as http:

        async def one(i: int) -> int:
            path = "/v1/accounts/bob" if i % 3 else "/v1/accounts/nobody"
            headers = sign_request(keys.signing, "alice", "GET", path)
            return (await http.get(path, headers=headers)).status_code

        # 150 requests against a thread pool of 40: before transactions ended inside each
        # endpoint, the ones waiting for SQLite's writer lock starved the holder for good.
        async with asyncio.timeout(60):
            statuses = await asyncio.gather(*(one(i) for i in range(150)))
    assert statuses.count(200) == 100 and statuses.count(404) == 50
