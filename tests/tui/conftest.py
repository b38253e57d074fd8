"""Helpers for pilot tests of the TUI against a real relay on loopback."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot

from client.tui.app import SealpostApp
from client.tui.widgets.chat_list import ChatList
from client.tui.widgets.conversation import ConversationView

SIZE = (120, 36)


def utc_time(ms: int) -> str:
    """A clock format that does not depend on the machine's time zone or today's date."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def make_app(home: Path, profile: str) -> SealpostApp:
    return SealpostApp(home, profile, time_format=utc_time, cursor_blink=False)


async def wait_for(pilot: Pilot, predicate: Callable[[], object], within: float = 30.0) -> None:
    """Let the app run until ``predicate()`` is truthy; fail with a clear message otherwise.

    The deadline only bounds a hang: a passing wait returns as soon as the predicate holds,
    and on a loaded machine (the suite beside CPU-bound work) 10 s was seen to run out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.05)


def conversation(app: SealpostApp) -> ConversationView:
    return app.main.query_one(ConversationView)


def conversation_text(app: SealpostApp) -> str:
    return "\n".join(conversation(app).line_texts())


def chat_list(app: SealpostApp) -> ChatList:
    return app.main.query_one(ChatList)


def toasts(app: SealpostApp) -> list[str]:
    """Title and text of every notification raised so far."""
    return [f"{n.title}: {n.message}" for n in app._notifications]
