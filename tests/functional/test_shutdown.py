"""SIGTERM to `sealpost relay` (a deploy, a rolling restart): its delivery streams end cleanly
at once, so clients reconnect (to another relay, or to this one when it is back) instead of
being cut off mid-response after the grace period, and the process stops."""

import asyncio
import signal
from pathlib import Path

import httpx

from client.messenger import Messenger
from sealpost.relay_process import RelayProcess


async def test_sigterm_ends_streams_cleanly_and_exits(tmp_path: Path) -> None:
    relay = RelayProcess(
        f"sqlite:///{tmp_path / 'relay.db'}", tmp_path / "relay.log", auto_migrate="true"
    )
    try:
        bob = await Messenger.create_account(
            tmp_path / "home", "bob", "bob", relay.url, country="+39"
        )
        path = "/v1/mailboxes/bob/stream"
        async with httpx.AsyncClient(base_url=relay.url, timeout=30) as http:
            async with http.stream("GET", path, headers=bob.api._signed("GET", path, b"")) as resp:
                assert resp.status_code == 200
                lines = resp.aiter_lines()
                assert await anext(lines) == "retry: 2000"  # the stream is open
                relay._proc.send_signal(signal.SIGTERM)
                # The rest of the stream, to its clean end: a cut-off connection raises here.
                rest = [line async for line in lines]
        assert "event: ready" in rest  # what had been sent, then the end of the response
        code = await asyncio.to_thread(relay._proc.wait, 30)
        # uvicorn re-raises the signal once it has shut down: "terminated by SIGTERM", which
        # service managers (systemd) count as a clean stop.
        assert code in (0, -signal.SIGTERM)
        await bob.aclose()
    finally:
        if relay._proc.poll() is None:
            relay.kill()
