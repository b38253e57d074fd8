"""Helpers for pilot tests of the TUI against a real relay on loopback."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot

from client.tui.app import SealpostApp
from client.tui.state import Connection, ConnectionPhase
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


async def until_connection(
    app: SealpostApp, phase: ConnectionPhase = "online", within: float = 30.0
) -> None:
    """Await the app's connection state (a reactive it sets from the stream) reaching
    ``phase``; nothing is polled: a watcher wakes the test when the state changes."""
    reached = asyncio.Event()

    def check(connection: Connection) -> None:
        if connection.phase == phase:
            reached.set()

    app.watch(app, "connection", check)  # called at once with the state as it is now
    try:
        await asyncio.wait_for(reached.wait(), within)
    except TimeoutError:
        raise AssertionError(f"still {app.connection} after {within} s, not {phase}") from None


async def until_online(app: SealpostApp) -> None:
    await until_connection(app, "online")
