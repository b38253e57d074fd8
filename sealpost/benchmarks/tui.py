"""The terminal client at size: first paint and chat switch with 50 chats and 10,000 messages.

The store is written directly (no relay is needed to read it); the profile points at a closed
loopback port, so the app runs in its "offline, retrying" state, which is not on the measured
path. The app runs headless through ``App.run_test``, exactly as the pilot tests run it.

Floors, measured in the same run: first paint of the same app on an empty store, and a no-op
refresh of the main screen (what any switch costs at least).
"""

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from client.profile import ProfileInfo, create_profile
from client.store import Conversation, LocalStore, StoredMessage
from sealpost.relay_process import free_port
from shared.keys import AccountKeys
from shared.templates import RenderedButton, RenderedTemplate

FIRST_PAINT_TARGET_S = 0.5
CHAT_SWITCH_TARGET_S = 0.05
SIZE = (120, 36)
T0 = 1_767_261_600_000

OFFER = RenderedTemplate(
    header=None,
    body="Hi, your code BENCH20 takes 20% off until Sunday.",
    footer="Bench Shop",
    buttons=[
        RenderedButton(type="url", text="Shop now", url="https://shop.example/"),
        RenderedButton(type="copy_code", text="Copy code", copy_value="BENCH20"),
        RenderedButton(type="quick_reply", text="Stop promotions"),
    ],
)


def _profile(home: Path, name: str) -> None:
    info = ProfileInfo(
        name=name,
        handle=name,
        relay_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: offline on purpose
        display_name=name,
    )
    create_profile(home, info, AccountKeys.generate())


def seed_store(path: Path, me: str, chats: int, messages: int) -> None:
    """``chats`` conversations holding ``messages`` in all; the newest chat holds about half.

    Every tenth chat is a business whose messages alternate chat and marketing (with buttons).
    """
    big = messages - (messages // 2 // max(chats - 1, 1)) * (chats - 1) if chats > 1 else messages
    rest = (messages - big) // max(chats - 1, 1)
    store = LocalStore(path)
    rendered = OFFER.model_dump_json()
    with store.session() as s:
        for c in range(chats):
            peer = f"peer{c:03d}"
            count = big if c == 0 else rest
            business = c % 10 == 5
            s.merge(
                Conversation(
                    peer=peer,
                    display_name=f"{'Shop' if business else 'Peer'} {c}",
                    kind="business" if business else "person",
                    verified=business,
                    unread=c % 3,
                    last_at=T0 + 10 * count - c,
                    accepted=True,  # a person's own chats, not message requests
                )
            )
            for n in range(count):
                marketing = business and n % 2 == 1
                out = not business and n % 4 == 3
                s.add(
                    StoredMessage(
                        msg_id=f"{peer}-{n:06d}",
                        peer=peer,
                        direction="out" if out else "in",
                        sender=me if out else peer,
                        recipient=peer if out else me,
                        kind="template" if marketing else "chat",
                        category="marketing" if marketing else "service",
                        text=OFFER.body
                        if marketing
                        else f"message {n} in chat {c} " + "lorem " * (n % 9),
                        label="Marketing" if marketing else None,
                        rendered_json=rendered if marketing else None,
                        sent_at=T0 + 10 * n,
                        received_at=T0 + 10 * n,
                        status="sent" if out else "verified",
                    )
                )
        s.commit()
    store.close()


async def _first_paint(home: Path, profile: str, chats: int) -> float:
    from client.tui.app import SealpostApp
    from client.tui.screens.main import MainScreen
    from client.tui.widgets.chat_list import ChatList

    start = time.perf_counter()
    app = SealpostApp(home, profile, cursor_blink=False)
    async with app.run_test(headless=True, size=SIZE) as pilot:
        while not (
            isinstance(app.screen, MainScreen)
            and app.screen.is_mounted
            and len(app.screen.query_one(ChatList).rows) == chats
        ):
            await pilot.pause(0)
        await _drawn(pilot)
        return time.perf_counter() - start


async def _drawn(pilot: Any) -> None:
    """Every message the screen's widgets had queued is handled, then one frame is drawn.

    ``pilot.pause()`` would do the same but then waits for the CPU to look idle, which adds a
    sleep of its own to every sample; these are the two steps it takes around that wait.
    """
    await pilot._wait_for_screen()
    pilot.app.screen._on_timer_update()


async def _switches(home: Path, profile: str, chats: int, rounds: int) -> dict[str, float]:
    from client.tui.app import SealpostApp

    app = SealpostApp(home, profile, cursor_blink=False)
    async with app.run_test(headless=True, size=SIZE) as pilot:
        await pilot.pause()
        main = app.main
        # Alternate the big chat with small ones, people and businesses.
        order = [f"peer{(n % (chats - 1)) + 1:03d}" if n % 2 else "peer000" for n in range(rounds)]
        await pilot.pause()
        switch, floor = [], []
        for peer in order:
            start = time.perf_counter()
            main.open_conversation(peer)
            await _drawn(pilot)
            switch.append(time.perf_counter() - start)
            await pilot.pause()  # settle before the floor sample
            start = time.perf_counter()
            main.refresh()
            await _drawn(pilot)
            floor.append(time.perf_counter() - start)
            await pilot.pause()
    return {"switch_s": statistics.median(switch), "floor_s": statistics.median(floor)}


def tui_bench(chats: int = 50, messages: int = 10_000, repeat: int = 3) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="sealpost-bench-tui-") as tmp:
        home = Path(tmp)
        _profile(home, "full")
        _profile(home, "empty")
        seed_store(home / "profiles" / "full" / "store.db", "full", chats, messages)

        async def go() -> dict[str, float]:
            await _first_paint(home, "empty", 0)  # warm-up: imports, CSS parsing
            paint = [await _first_paint(home, "full", chats) for _ in range(repeat)]
            empty = [await _first_paint(home, "empty", 0) for _ in range(repeat)]
            switching = await _switches(home, "full", chats, rounds=11)
            return {
                "paint_s": statistics.median(paint),
                "paint_floor_s": statistics.median(empty),
                **switching,
            }

        t = asyncio.run(go())
    store = f"{chats} chats, {messages} messages"
    return [
        {
            "name": "tui_first_paint",
            "what": f"app start to the main screen drawn with its chat list ({store})",
            "floor": "first paint of the same app on an empty store",
            "wall_s": round(t["paint_s"], 4),
            "floor_s": round(t["paint_floor_s"], 4),
            "ratio": round(t["paint_s"] / t["paint_floor_s"], 3),
            "target": f"wall_s <= {FIRST_PAINT_TARGET_S} s",
            "target_s": FIRST_PAINT_TARGET_S,
            "ok": t["paint_s"] <= FIRST_PAINT_TARGET_S,
        },
        {
            "name": "tui_chat_switch",
            "what": f"open another chat and draw it, median of 11 switches ({store})",
            "floor": "a refresh of the main screen with nothing changed, drawn; median of 11",
            "wall_s": round(t["switch_s"], 4),
            "floor_s": round(t["floor_s"], 4),
            "ratio": round(t["switch_s"] / t["floor_s"], 3),
            "target": f"wall_s <= {CHAT_SWITCH_TARGET_S} s",
            "target_s": CHAT_SWITCH_TARGET_S,
            "ok": t["switch_s"] <= CHAT_SWITCH_TARGET_S,
        },
    ]
