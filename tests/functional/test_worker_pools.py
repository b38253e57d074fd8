"""The client's worker processes (opening a catch-up, sealing a campaign) never outlive the
process that started them: killed with -9, it leaves nothing running behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")

# A process that starts a real pool, makes sure its workers run, prints their pids and waits.
POOLS = {
    "opening": """
        from client.opening import Opener
        from shared.keys import AccountKeys
        opener = Opener(AccountKeys.generate(), 2)
        async def main():
            await asyncio.gather(*(opener.elsewhere([], {}) for _ in range(8)))
        asyncio.run(main())
        pool = opener._pool
    """,
    "sealing": """
        from client.business.sealing import PROCESS_POOL_MIN_COPIES, Sealer
        from shared.api import TemplateInfo
        from shared.keys import AccountKeys
        from shared.templates import TemplateDraft, finalize
        draft, _ = finalize(TemplateDraft(name="offer", category="marketing",
                                          body="Hi {{name}}", examples={"name": "Ana"}))
        info = TemplateInfo(id="tpl_0123456789abcdef", business="acme", hash="0" * 64,
                            category="marketing", requested_category="marketing",
                            reclassified_reason=None, template=draft, created_at=0)
        from client.business.audience import AudienceRow
        ann = AccountKeys.generate().public.box
        sealer = Sealer(AccountKeys.generate(), "acme", info, "cmp_0123456789abcdef",
                        {"ann": ann}, copies=PROCESS_POOL_MIN_COPIES, workers=2)
        rows = [AudienceRow(line=2, handle="ann", variables={"name": "Ann"})] * 2
        async def main():
            await asyncio.gather(*(sealer.seal(rows) for _ in range(8)))
        asyncio.run(main())
        pool = sealer._pool
    """,
}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its entry waits for a reaper


@pytest.mark.parametrize("pool", sorted(POOLS))
def test_workers_exit_when_their_parent_is_killed(pool: str) -> None:
    script = (
        "import asyncio, sys, time\n"
        + textwrap.dedent(POOLS[pool])
        + textwrap.dedent("""
        print(" ".join(str(p) for p in pool._processes), flush=True)
        time.sleep(600)
    """)
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    workers: list[int] = []
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        workers = [int(p) for p in line.split()]
        assert len(workers) == 2, f"no workers reported: {line!r}"
        assert all(_alive(w) for w in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        # Bounded: workers that notice their parent is gone exit at once; ones that do not
        # would be here for good.
        deadline = time.monotonic() + 20
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [w for w in workers if _alive(w)] == [], "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for worker in workers:  # never leave them behind, whatever the outcome
            if _alive(worker):
                os.kill(worker, signal.SIGKILL)
