"""When simulated people have the app open: a few times a day, at waking hours, for minutes.

The audit plays days of device behaviour in simulated time, so that timing attacks meet the
patterns they would meet in use (hours between app opens), without waiting for them. Each
person's opens are drawn once from the world's seed. While the app is open it syncs once, at
the start (a signed request the relay sees), and looks for a due report every minute
(``client/tui/app.py``, ``SIGNAL_FLUSH_S``); a report can only leave then.

Times here are seconds from the audit's start, when every campaign goes out; the audit's start
stands for 09:00 on the first simulated day, so people are awake from two hours before it to
fourteen hours after, each day.
"""

import math
import random
from collections.abc import Sequence

DAY_S = 86_400.0
# How often the open app looks for a due report: the TUI's SIGNAL_FLUSH_S (not imported here:
# the TUI pulls in Textual, which the audit's worker processes do not need).
TICK_S = 60.0
DAYS = 5  # long enough for every report: a report is due within a day of its delivery
OPENS_PER_DAY = (2, 3, 5, 8)  # each person opens the app this often, on average
WAKING_S = (-2 * 3600.0, 14 * 3600.0)  # 07:00 to 23:00, with the start at 09:00
MINUTES_OPEN = (1, 2, 3, 5, 8, 12)

Open = tuple[float, float]  # (start, end), seconds from the audit's start


def draw_opens(rng: random.Random, days: int = DAYS) -> list[Open]:
    """A person's app opens over ``days`` simulated days: a Poisson number a day (at least
    one, so that everyone receives their copies), uniform over waking hours, each lasting a
    few minutes. Sorted; an open never starts before the previous one ended."""
    rate = rng.choice(OPENS_PER_DAY)
    opens: list[Open] = []
    for day in range(days):
        count = max(1, _poisson(rng, rate))
        first, last = WAKING_S
        starts = sorted(day * DAY_S + rng.uniform(first, last) for _ in range(count))
        for start in starts:
            start = max(start, opens[-1][1] + TICK_S) if opens else start
            opens.append((start, start + TICK_S * rng.choice(MINUTES_OPEN)))
    return opens


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the handful of opens a day drawn here."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def first_open_from(opens: Sequence[Open], moment: float) -> int | None:
    """Index of the first open that starts at or after ``moment`` (None: none does)."""
    return next((i for i, (start, _) in enumerate(opens) if start >= moment), None)


def tick_at_or_after(start: float, ready: float) -> float:
    """The first flush tick of an open that began at ``start`` that is not before ``ready``:
    ticks come every TICK_S from the start, the first one TICK_S in (the start is the app's
    own signed sync, and a report keeps a minute away from it)."""
    k = max(1, math.ceil((ready - start) / TICK_S - 1e-9))
    return start + k * TICK_S
