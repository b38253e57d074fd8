"""Forwarding: take what is held, shuffle it, send it to the relay signed, then forget it.

Nothing is deleted before the relay has answered 200 for the batch holding it, so a crash at
any moment loses no report. Resending is harmless: the relay's spent-token set answers
``token_spent`` for a report it already counted, so it is never counted twice.
"""

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

import httpx
from nacl.signing import SigningKey

from shared.shuffled import MAX_SHUFFLED, SHUFFLED_PATH, ShuffledBatch, sign_batch
from shared.signals import InvalidReport, decode_report
from shuffler import tls
from shuffler.store import ReportStore


class ForwardError(Exception):
    """The relay could not be reached or refused a batch; its reports stay held."""


@dataclass
class Forwarded:
    """What one call to :meth:`Forwarder.forward_ready` sent."""

    batches: list[int] = field(default_factory=list)  # reports per batch
    counted: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # reason -> reports
    smallest_campaign: int = 0  # fewest reports of one campaign in a batch sent


@dataclass
class Totals:
    """Since the process started (shown in /v1/status)."""

    batches: int = 0
    reports: int = 0
    counted: int = 0
    refused: int = 0
    last_batch: int = 0
    last_smallest_campaign: int = 0
    last_error: str | None = None


def batch_sizes(held: int, minimum: int, maximum: int = MAX_SHUFFLED) -> list[int]:
    """How to cut ``held`` reports into batches of ``minimum`` to ``maximum``: all of them
    when there are at least ``minimum``, none otherwise."""
    sizes: list[int] = []
    left = held
    while left >= minimum:
        size = min(left, maximum)
        if 0 < left - size < minimum:  # never leave a remainder too small to go later
            size = left - minimum
        sizes.append(size)
        left -= size
    return sizes


class Forwarder:
    def __init__(
        self,
        store: ReportStore,
        key: SigningKey,
        relay_url: str,
        minimum: int,
        timeout_s: float = 30.0,
    ) -> None:
        self.store = store
        self.key = key
        self.relay_url = relay_url.rstrip("/")
        self.minimum = minimum
        self.timeout_s = timeout_s
        self.totals = Totals()
        self._rng = random.SystemRandom()  # the order the relay sees: unpredictable to it
        self._lock = threading.Lock()  # one forward at a time

    def forward_ready(self, *, minimum: int | None = None) -> Forwarded:
        """Forward everything held, in shuffled batches, if at least ``minimum`` (default B)
        reports are held; else nothing. Raises :class:`ForwardError` if the relay fails;
        batches it accepted before that are forgotten, the rest stay held."""
        floor = self.minimum if minimum is None else minimum
        done = Forwarded()
        with self._lock:
            for size in batch_sizes(self.store.count(), max(floor, 1)):
                rows = self.store.take(size)
                if len(rows) < floor:
                    break
                self._rng.shuffle(rows)
                self._send(rows, done)
        return done

    def _send(self, rows: list[tuple[bytes, str]], done: Forwarded) -> None:
        reports = [report for _, report in rows]
        body = ShuffledBatch(reports=reports).model_dump_json().encode()
        headers = {"Content-Type": "application/json", **sign_batch(self.key, body)}
        try:
            with httpx.Client(timeout=self.timeout_s, verify=tls.relay_channel()) as http:
                answer = http.post(self.relay_url + SHUFFLED_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.totals.last_error = f"relay unreachable: {exc}"
            raise ForwardError(self.totals.last_error) from exc
        if answer.status_code != 200:
            self.totals.last_error = f"relay answered {answer.status_code}: {answer.text[:200]}"
            raise ForwardError(self.totals.last_error)
        result = answer.json()
        refused = Counter(str(why) for why in result.get("refused", {}).values())
        # Counted or refused for good (spent, bad token): either way the relay has decided.
        self.store.remove([key for key, _ in rows])
        smallest = min(Counter(_campaign(r) for r in reports).values())
        done.batches.append(len(rows))
        done.counted += int(result.get("counted", 0))
        done.refused.update(refused)
        done.smallest_campaign = min(done.smallest_campaign or smallest, smallest)
        t = self.totals
        t.batches += 1
        t.reports += len(rows)
        t.counted += int(result.get("counted", 0))
        t.refused += sum(refused.values())
        t.last_batch, t.last_smallest_campaign, t.last_error = len(rows), smallest, None


def _campaign(report: str) -> str:
    try:
        return decode_report(report.encode()).campaign_id
    except InvalidReport:  # held reports were decoded on arrival; never expected
        return "?"
