"""``sealpost requests`` against a real relay: list a stranger's request, accept it."""

import asyncio
import json
from typing import Any

from server.embedded import EmbeddedRelay
from tests.conftest import relay_settings
from tests.helpers import run_cli


async def cli(home: Any, *args: str, check: bool = True) -> Any:
    """The CLI in a thread: it runs its own event loop."""
    return await asyncio.to_thread(run_cli, home, *args, check=check)


async def test_requests_are_listed_and_answered_from_the_cli(sqlite_url, make_account, home):
    with EmbeddedRelay(relay_settings(sqlite_url, request_hold=2)) as relay:
        mallory = await make_account("mallory", relay, display_name="Mallory")
        carol = await make_account("carol", relay)
        for n in range(3):
            await mallory.send_text("carol", f"hi {n}")
        await carol.sync()
        await carol.aclose()
        listed = json.loads((await cli(home, "requests", "--profile", "carol", "--json")).stdout)
        assert [(r["handle"], r["unread"]) for r in listed["requests"]] == [("mallory", 2)]
        text = (await cli(home, "requests", "--profile", "carol")).stdout
        assert "@mallory (Mallory, person): 2 unread" in text and "requests accept" in text
        accepted = (await cli(home, "requests", "accept", "--profile", "carol", "mallory")).stdout
        assert "accepted @mallory" in accepted
        assert (await cli(home, "requests", "--profile", "carol")).stdout.strip() == (
            "no message requests"
        )
        assert (await mallory.send_text("carol", "thanks")).status == "sent"
        missing = await cli(home, "requests", check=False)
        assert missing.returncode != 0 and "--profile is required" in missing.stderr
