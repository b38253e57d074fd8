"""The real app in a real terminal (tmux), and the TUI benchmark's report."""

import asyncio
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sealpost.benchmarks.tui import tui_bench
from sealpost.commands.bench import _line
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory
from tests.tui.test_business_messages import send_offer

ROOT = Path(__file__).resolve().parents[2]


def tmux(*args: str) -> str:
    done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)
    return done.stdout


async def screen_shows(session: str, text: str, within: float = 20.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        screen = tmux("capture-pane", "-p", "-t", session)
        if text in screen:
            return screen
        if loop.time() > deadline:
            raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")
        await asyncio.sleep(0.2)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
async def test_real_app_in_tmux_shows_the_marketing_label(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path, tmp_path: Path
) -> None:
    shop = await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    alice = await make_account("alice", sqlite_relay)
    bob = await make_account("bob", sqlite_relay)
    await send_offer(shop, "bob", tmp_path)
    await alice.send_text("bob", "newest chat: opens first")
    await bob.sync()

    session = f"sealpost-test-{uuid.uuid4().hex[:8]}"
    # Textual draws on stderr: leave it on the terminal.
    command = (
        f"env TERM=xterm-256color PYTHONPATH={ROOT} {sys.executable} -m sealpost "
        f"--home {home} chat --profile bob"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", command)
    try:
        screen = await screen_shows(session, "● online")
        # The chat list's preview: tmux may draw the pane at 80 columns whatever -x says,
        # where the narrow layout's list cuts the preview with an ellipsis.
        assert "newest chat: opens" in screen and "ACME Shoes" in screen
        # Open the business chat: filter the list, Enter opens the best match. Keys sent while
        # the app still probes the terminal are lost (more likely on a busy machine): send
        # them again while nothing has landed anywhere (both inputs still show placeholders).
        for attempt in range(5):
            await asyncio.sleep(0.5)
            tmux("send-keys", "-t", session, "C-f")
            tmux("send-keys", "-t", session, "-l", "acme")
            try:
                await screen_shows(session, " acme ", within=3)  # typed into the filter
                break
            except AssertionError:
                screen = tmux("capture-pane", "-p", "-t", session)
                untouched = "Filter chats…" in screen and "Write a message…" in screen
                if attempt == 4 or not untouched:
                    raise
        tmux("send-keys", "-t", session, "Enter")
        await screen_shows(session, "Message request from ACME Shoes")  # its own bar
        tmux("send-keys", "-t", session, "C-y")  # accept
        await screen_shows(session, "Accepted @acme")
        screen = await screen_shows(session, "[ Shop now ↗ ]")
        # The label in the chat (the list's starts its line); tmux drops trailing spaces.
        assert " Marketing" in screen
        assert "Hi Bob, your code BOB20 takes 20% off" in screen
        tmux("send-keys", "-t", session, "C-q")  # quits cleanly: the session ends with it
        for _ in range(50):
            if not _alive(session):
                break
            await asyncio.sleep(0.1)
        assert not _alive(session)
    finally:
        if _alive(session):
            tmux("kill-session", "-t", session)


def _alive(session: str) -> bool:
    done = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True, timeout=10)
    return done.returncode == 0


def _pane_shows(target: str, *texts: str, within: float = 20.0) -> str:
    deadline = time.monotonic() + within
    while True:
        screen = tmux("capture-pane", "-p", "-t", target)
        if all(text in screen for text in texts):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"{texts!r} never all appeared in {target}; it showed:\n{screen}")
        time.sleep(0.2)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(
    shutil.which("tmux") is None or not (ROOT / ".venv/bin/sealpost").exists(),
    reason="needs tmux and the project's .venv",
)
def test_tmux_clients_script_opens_apps_side_by_side_and_stops_the_relay() -> None:
    session = f"sealpost-test-{uuid.uuid4().hex[:8]}"
    script = [str(ROOT / "scripts/tmux-clients"), "-n", "2", "--session", session]
    done = subprocess.run(
        [*script, "--detach", "--no-install"], capture_output=True, text=True, timeout=90
    )
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        relay_pid = int(re.search(r"\(pid (\d+)\)", done.stdout).group(1))  # type: ignore[union-attr]
        temp = Path(re.search(r"Profiles: (\S+)/home", done.stdout).group(1))  # type: ignore[union-attr]
        assert f"tmux attach -t {session}" in done.stdout
        assert f"tmux kill-session -t {session}" in done.stdout
        panes = tmux("list-panes", "-t", f"{session}:clients", "-F", "#{pane_index}").split()
        assert panes == ["0", "1"]
        for pane, me, peer in ((0, "alice", "bob"), (1, "bob", "alice")):
            # The chat list: the other person's chat and the business's campaign.
            _pane_shows(
                f"{session}:clients.{pane}",
                f"@{me} · online",
                "ACME Shoes",
                f"hi {me}, it's {peer}",
            )
        assert _running(relay_pid)
    finally:
        tmux("kill-session", "-t", session)
    for _ in range(100):
        if not _running(relay_pid) and not temp.exists():
            break
        time.sleep(0.1)
    assert not _running(relay_pid), "the relay outlived its session"
    assert not temp.exists(), "the session's temporary directory was left behind"
    assert not _alive(session)


def test_tui_bench_reports_targets_and_floors() -> None:
    results = tui_bench(chats=3, messages=60, repeat=1)
    assert [r["name"] for r in results] == ["tui_first_paint", "tui_chat_switch"]
    for r in results:
        assert {"name", "wall_s", "floor_s", "ratio", "target", "target_s", "ok"} <= set(r)
        assert r["wall_s"] > 0 and r["floor_s"] > 0
        assert r["ok"] == (r["wall_s"] <= r["target_s"])
        assert r["name"] in _line(r) and "target wall_s <=" in _line(r)
    assert [r["target_s"] for r in results] == [0.5, 0.05]
