"""How the simulator spreads thousands of devices' requests: a slice keeps a bounded number
in flight to the relay, each taking its turn before it is signed (a request signed and then
kept waiting would reach the relay stale), and bounded gathers start the next as soon as one
ends."""

import asyncio

from client.relay_api import RelayAPI
from sealpost.audit.fleet import gather_bounded
from sealpost.sim.persons import gate_requests
from shared.keys import AccountKeys


def test_gather_bounded_keeps_order_and_the_bound():
    running = 0
    most = 0

    async def job(i: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (i % 3))
        running -= 1
        return i

    results = asyncio.run(gather_bounded([job(i) for i in range(50)], 7))
    assert results == list(range(50))
    assert most == 7


def test_gated_devices_sign_only_when_their_turn_comes():
    keys = AccountKeys.generate()

    async def play() -> tuple[int, list[float]]:
        turns = asyncio.Semaphore(3)
        in_flight = 0
        most = 0
        waited: list[float] = []
        apis = [RelayAPI("http://relay.invalid", f"p{i}", keys) for i in range(12)]

        def fake_send(api: RelayAPI):
            async def send(method: str, path: str, body: object = None) -> str:
                nonlocal in_flight, most
                # Signing is the first thing _send does: the turn was taken before it.
                started = asyncio.get_running_loop().time()
                in_flight += 1
                most = max(most, in_flight)
                await asyncio.sleep(0.01)
                in_flight -= 1
                waited.append(asyncio.get_running_loop().time() - started)
                return path

            return send

        for api in apis:
            api._send = fake_send(api)  # type: ignore[method-assign]
            gate_requests(api, turns)
        answers = await asyncio.gather(
            *(api._send("POST", f"/x/{i}") for i, api in enumerate(apis))
        )
        assert answers == [f"/x/{i}" for i in range(12)]
        for api in apis:
            await api.aclose()
        return most, waited

    most, waited = asyncio.run(play())
    assert most == 3
    # Each request, once signed, is answered at once: none waited behind the others.
    assert max(waited) < 0.05
