"""Interaction signals: the report schema, randomized response, epsilon accounting, aggregation.

A signal report is the only thing a client sends about what a person did with a campaign
message. It holds a campaign id, a day, a bitmask over the closed event list :data:`EVENTS`
(after randomized response) and a one-time anonymous token (see :mod:`shared.tokens`):
exactly :data:`REPORT_FIELDS`, nothing else. Each recipient sends one report per campaign
whatever they did, so the existence of a report says nothing.

Public API:

- ``EVENTS``, ``Event``, ``event_bit(event)``, ``bits_of(events)``, ``events_of(bits)``:
  bit i of a mask stands for ``EVENTS[i]``.
- ``SignalReport``, ``REPORT_FIELDS``, ``encode_report(campaign_id, day, noisy_bits, token)
  -> bytes`` (canonical JSON), ``decode_report(data) -> SignalReport`` (strict; raises
  ``InvalidReport``).
- Randomized response: ``keep_probability(epsilon)``, ``epsilon_of(p)``,
  ``randomize(true_bits, epsilon_per_bit, rng=None) -> int``, ``uniform_bits(rng=None)``,
  ``report_epsilon(epsilon_per_bit)``.
- ``EpsilonLedger`` (``can_spend``, ``spend``, ``remaining``, ``to_json``/``from_json``) and
  ``BudgetExhausted``.
- Aggregation (the relay): ``debias(count_ones, n, p)``, ``variance(n, p)``,
  ``estimate(count_ones, n, p, confidence) -> Estimate``, ``check_k(k)``,
  ``publishable(n, k)``, ``publish(count_ones, n, p, k, confidence) -> Estimate | None``,
  ``tally(bits_iterable) -> (n, counts per event)``.

Randomized response. Each of the seven event bits is kept with probability
``p = e^eps / (1 + e^eps)`` and flipped otherwise, independently (symmetric randomized response,
Warner 1965). One bit is then eps-locally differentially private: whatever the truth, either
reported value is at most ``e^eps`` times likelier under one truth than under the other. A report
randomizes ``len(EVENTS)`` bits, and two truths may differ in all of them, so by basic
composition a report costs ``len(EVENTS) * eps`` (this bound is tight for independent bits).

Defaults, and why:

- ``DEFAULT_EPSILON_PER_BIT = ln 3`` (p = 0.75): each reported bit is wrong one time in four,
  so no single bit incriminates anyone (3:1 odds at most), yet at 10,000 recipients the 95%
  interval of a debiased count is about +/-170 (+/-1.7 points of the audience). A report costs
  ``7 ln 3 ~= 7.7``.
- ``DEFAULT_DAILY_CAP = 4 reports`` (~30.8): a person rarely gets more than a few campaigns a
  day; past the cap the client must not spend more.
- ``DEFAULT_WINDOW_CAP = 30 reports over any 30 days`` (~230.7): the daily cap alone renews every
  midnight, so over a month it would allow 120 reports (the criticism levelled at deployed
  local-DP systems whose budget silently resets each day). The rolling cap holds any 30
  consecutive days to 30 reports, one a day on average, bursts of up to four allowed.
- ``lifetime_cap`` is off by default: with it set, signals stop for good once it is spent, which
  is a product decision, not a library one. The ledger always keeps ``lifetime_spent`` (it never
  resets), so the total is shown rather than silently renewed.

The trade-off: a lower epsilon hides each person better but widens every interval (the standard
error grows like ``1 / (2p - 1)``); higher caps let more campaigns be measured per person but
let the relay learn more about that person across campaigns.

When the budget cannot cover a report, the client should still send one, with
``uniform_bits()`` (p = 1/2, epsilon 0), so that the report's existence stays uninformative.
Such reports are indistinguishable to the relay and pull the estimate toward n/2; with caps
above typical campaign volume they are rare.

Suppression. ``DEFAULT_K = 50``: a figure is published only with at least 50 contributing
reports. Below that the interval is so wide (at p = 0.75 and n = 50 it is about +/-12, a quarter
of the audience) that the figure tells a business little about the campaign and mostly narrows
down individuals; a campaign aimed at a handful of people is exactly the targeting this layer
exists to blunt. Real products use 5 to 100. ``MIN_K = 5``: anything smaller is refused as a
configuration. The threshold does not stop a business that pads a campaign with accounts it
controls; randomized response still protects each real recipient's bits.
"""

import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any, Literal, Protocol, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.encoding import b64decode, b64encode, canonical_json
from shared.identifiers import ShortId
from shared.tokens import OUTPUT_BYTES, TOKEN_INPUT_BYTES, Token
from shared.version import PROTOCOL_VERSION

Event = Literal[
    "delivered", "read", "clicked", "dismissed", "stopped_promotions", "blocked", "reported"
]
# Order is part of the wire format: bit i of a report stands for EVENTS[i].
EVENTS: tuple[Event, ...] = get_args(Event)
ALL_BITS = (1 << len(EVENTS)) - 1

REPORT_FIELDS = ("v", "campaign_id", "day", "bits", "token_input", "token_output")
# Generous bound on an encoded report (the longest valid one is under 300 bytes).
MAX_REPORT_BYTES = 512

DEFAULT_EPSILON_PER_BIT = math.log(3)
DEFAULT_K = 50
MIN_K = 5

_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def event_bit(event: Event) -> int:
    """The mask bit of one event."""
    return 1 << EVENTS.index(event)


def bits_of(events: Iterable[Event]) -> int:
    """The mask of a set of events."""
    bits = 0
    for event in events:
        bits |= event_bit(event)
    return bits


def events_of(bits: int) -> tuple[Event, ...]:
    """The events set in a mask, in :data:`EVENTS` order."""
    _check_bits(bits)
    return tuple(e for i, e in enumerate(EVENTS) if bits >> i & 1)


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= ALL_BITS:
        raise ValueError(f"bits must be an int in [0, {ALL_BITS}]")


def _check_day(day: str) -> str:
    if not _DAY_RE.fullmatch(day):
        raise ValueError("day must be an ISO date, YYYY-MM-DD")
    date.fromisoformat(day)  # rejects 2025-02-30 and the like
    return day


def _check_b64(value: str, size: int) -> str:
    raw = b64decode(value)
    if len(raw) != size:
        raise ValueError(f"must be base64 of {size} bytes, not {len(raw)}")
    # base64 has spare bits; one spelling per value keeps the encoding canonical.
    if b64encode(raw) != value:
        raise ValueError("not canonical base64")
    return value


# --- the report ---------------------------------------------------------------------------------


class SignalReport(BaseModel):
    """One interaction report, exactly as it crosses to the relay."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    v: Literal[1] = PROTOCOL_VERSION
    campaign_id: ShortId
    day: str = Field(description="UTC day of the event, YYYY-MM-DD; nothing finer")
    bits: int = Field(ge=0, le=ALL_BITS, description="event mask after randomized response")
    token_input: str = Field(max_length=64, description=f"base64, {TOKEN_INPUT_BYTES} bytes")
    token_output: str = Field(max_length=128, description=f"base64, {OUTPUT_BYTES} bytes")

    @field_validator("day")
    @classmethod
    def _valid_day(cls, value: str) -> str:
        return _check_day(value)

    @field_validator("token_input")
    @classmethod
    def _valid_input(cls, value: str) -> str:
        return _check_b64(value, TOKEN_INPUT_BYTES)

    @field_validator("token_output")
    @classmethod
    def _valid_output(cls, value: str) -> str:
        return _check_b64(value, OUTPUT_BYTES)

    @property
    def token(self) -> Token:
        return Token(b64decode(self.token_input), b64decode(self.token_output))


class InvalidReport(ValueError):
    """Bytes that are not exactly one canonical signal report."""


def encode_report(campaign_id: str, day: date | str, noisy_bits: int, token: Token) -> bytes:
    """The canonical JSON of a report: the only way a client builds signal bytes.

    ``noisy_bits`` must already have gone through :func:`randomize`. The parameters are the
    whole report; there is no way to add anything to it.
    """
    _check_bits(noisy_bits)
    report = SignalReport(
        campaign_id=campaign_id,
        day=day.isoformat() if isinstance(day, date) else day,
        bits=noisy_bits,
        token_input=b64encode(token.input),
        token_output=b64encode(token.output),
    )
    return canonical_json(report.model_dump())


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise InvalidReport("duplicate field")
    return dict(pairs)


def decode_report(data: bytes) -> SignalReport:
    """Parse a report, refusing anything but the exact bytes :func:`encode_report` makes.

    Unknown or missing fields, duplicate keys, other whitespace or key order, floats, escapes,
    and trailing data are all refused with ``InvalidReport``.
    """
    if not isinstance(data, bytes):
        raise InvalidReport("a report is bytes")
    if len(data) > MAX_REPORT_BYTES:
        raise InvalidReport(f"a report is at most {MAX_REPORT_BYTES} bytes")
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidReport(f"not a JSON object: {exc}") from exc
    if not isinstance(value, dict) or set(value) != set(REPORT_FIELDS):
        raise InvalidReport(f"a report has exactly the fields {', '.join(REPORT_FIELDS)}")
    try:
        report = SignalReport.model_validate(value)
    except ValidationError as exc:
        raise InvalidReport(str(exc)) from exc
    if canonical_json(report.model_dump()) != data:
        raise InvalidReport("not the canonical encoding")
    return report


# --- randomized response ------------------------------------------------------------------------


class RandomSource(Protocol):
    def random(self) -> float: ...


def keep_probability(epsilon: float) -> float:
    """The probability of reporting a bit truthfully for a per-bit budget ``epsilon`` > 0."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError("epsilon must be a positive finite number")
    return 1 / (1 + math.exp(-epsilon))


def epsilon_of(p: float) -> float:
    """The per-bit epsilon that keep-probability ``p`` costs: ln(p / (1 - p))."""
    if not 0.5 < p < 1:
        raise ValueError("p must be in (0.5, 1)")
    return math.log(p / (1 - p))


def report_epsilon(epsilon_per_bit: float = DEFAULT_EPSILON_PER_BIT) -> float:
    """What one report costs: every event bit is randomized, so the budgets add up."""
    keep_probability(epsilon_per_bit)  # validates
    return len(EVENTS) * epsilon_per_bit


def randomize(
    true_bits: int,
    epsilon_per_bit: float = DEFAULT_EPSILON_PER_BIT,
    rng: RandomSource | None = None,
) -> int:
    """Randomized response on each event bit: keep it with p = e^eps/(1+e^eps), else flip it."""
    _check_bits(true_bits)
    p = keep_probability(epsilon_per_bit)
    if rng is None:
        rng = secrets.SystemRandom()
    noisy = true_bits
    for i in range(len(EVENTS)):
        if rng.random() >= p:
            noisy ^= 1 << i
    return noisy


def uniform_bits(rng: RandomSource | None = None) -> int:
    """A mask of fair coin flips: the report to send when the budget is spent (epsilon 0)."""
    if rng is None:
        rng = secrets.SystemRandom()
    return sum(1 << i for i in range(len(EVENTS)) if rng.random() < 0.5)


# --- epsilon accounting -------------------------------------------------------------------------

DEFAULT_REPORT_EPSILON = report_epsilon(DEFAULT_EPSILON_PER_BIT)
DEFAULT_DAILY_CAP = 4 * DEFAULT_REPORT_EPSILON
WINDOW_DAYS = 30
DEFAULT_WINDOW_CAP = 30 * DEFAULT_REPORT_EPSILON
# Sums of floats drift; without slack the last report that exactly fills a cap is refused.
_SLACK = 1e-9


class BudgetExhausted(Exception):
    """Spending this epsilon would exceed a cap; send an epsilon-0 report instead."""


def _as_day(day: date | str) -> date:
    return day if isinstance(day, date) else date.fromisoformat(_check_day(day))


class EpsilonLedger(BaseModel):
    """One person's privacy budget: epsilon spent per day, under a daily and a rolling cap.

    Pure and serialisable (:meth:`to_json` / :meth:`from_json`); the client keeps one per
    person and calls :meth:`spend` before each report. No spend may make any day exceed
    ``daily_cap``, any ``window_days`` consecutive days exceed ``window_cap``, or the total ever
    spent exceed ``lifetime_cap`` (if set). Spends for days before the newest day minus
    ``window_days - 1`` are refused: the ledger no longer holds what it needs to check them.
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    daily_cap: float = Field(default=DEFAULT_DAILY_CAP, gt=0, allow_inf_nan=False)
    window_days: int = Field(default=WINDOW_DAYS, ge=1, le=366)
    window_cap: float = Field(default=DEFAULT_WINDOW_CAP, gt=0, allow_inf_nan=False)
    lifetime_cap: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    lifetime_spent: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    spent: dict[str, float] = Field(default_factory=dict, description="ISO day -> epsilon")

    @field_validator("spent")
    @classmethod
    def _valid_spent(cls, value: dict[str, float]) -> dict[str, float]:
        for day, eps in value.items():
            _check_day(day)
            if not (eps >= 0 and math.isfinite(eps)):
                raise ValueError("spent epsilon must be finite and non-negative")
        return value

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)

    def _spent_between(self, first: date, last: date) -> float:
        return sum(eps for d, eps in self.spent.items() if first <= date.fromisoformat(d) <= last)

    def _newest(self) -> date | None:
        return max((date.fromisoformat(d) for d in self.spent), default=None)

    def spent_on(self, day: date | str) -> float:
        return self.spent.get(_as_day(day).isoformat(), 0.0)

    def spent_in_window(self, day: date | str) -> float:
        """Epsilon spent in the ``window_days`` days ending with ``day``."""
        d = _as_day(day)
        return self._spent_between(d - timedelta(days=self.window_days - 1), d)

    def remaining(self, day: date | str) -> float:
        """The most that could be spent on ``day`` now (0 when nothing may be)."""
        d = _as_day(day)
        newest = self._newest()
        if newest is not None and d < newest - timedelta(days=self.window_days - 1):
            return 0.0
        room = self.daily_cap - self.spent_on(d)
        # Every window that contains d: those starting window_days - 1 days earlier up to d.
        for offset in range(self.window_days):
            start = d - timedelta(days=offset)
            used = self._spent_between(start, start + timedelta(days=self.window_days - 1))
            room = min(room, self.window_cap - used)
        if self.lifetime_cap is not None:
            room = min(room, self.lifetime_cap - self.lifetime_spent)
        return max(room, 0.0)

    def can_spend(self, day: date | str, epsilon: float) -> bool:
        if not (epsilon >= 0 and math.isfinite(epsilon)):
            raise ValueError("epsilon must be finite and non-negative")
        return epsilon <= self.remaining(day) + _SLACK

    def spend(self, day: date | str, epsilon: float) -> None:
        """Record ``epsilon`` spent on ``day``, or raise ``BudgetExhausted`` and record nothing."""
        if not self.can_spend(day, epsilon):
            raise BudgetExhausted(
                f"spending {epsilon:.3f} on {_as_day(day)} would exceed the privacy budget"
            )
        d = _as_day(day)
        self.spent[d.isoformat()] = self.spent_on(d) + epsilon
        self.lifetime_spent += epsilon
        # Keep only what a later check can need: two windows back from the newest day.
        newest = self._newest()
        assert newest is not None
        horizon = newest - timedelta(days=2 * self.window_days)
        self.spent = {k: e for k, e in self.spent.items() if date.fromisoformat(k) > horizon}


# --- aggregation (the relay) --------------------------------------------------------------------


class Estimate(BaseModel):
    """A debiased count of one event with a confidence interval, all clipped to [0, n].

    ``value`` is clipped for display; sum :func:`debias` results, not values, across campaigns.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    low: float
    high: float
    n: int
    confidence: float


def _check_counts(count_ones: int, n: int, p: float) -> None:
    if n < 0 or not 0 <= count_ones <= n:
        raise ValueError("need 0 <= count_ones <= n")
    if not 0.5 < p <= 1:
        raise ValueError("p must be in (0.5, 1]")


def debias(count_ones: int, n: int, p: float) -> float:
    """Unbiased estimate of how many of ``n`` reporters truly had the bit set.

    E[ones] = t p + (n - t)(1 - p), so t = (ones - n (1 - p)) / (2p - 1). It can fall outside
    [0, n]; that is the price of being unbiased.
    """
    _check_counts(count_ones, n, p)
    return (count_ones - n * (1 - p)) / (2 * p - 1)


def variance(n: int, p: float) -> float:
    """Variance of :func:`debias`: n p (1 - p) / (2p - 1)^2 (binomial noise, scaled)."""
    _check_counts(0, n, p)
    return n * p * (1 - p) / (2 * p - 1) ** 2


def estimate(count_ones: int, n: int, p: float, confidence: float = 0.95) -> Estimate:
    """The debiased count with a normal-approximation interval, clipped to [0, n]."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    raw = debias(count_ones, n, p)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(variance(n, p))

    def clip(x: float) -> float:
        return min(max(x, 0.0), float(n))

    return Estimate(
        value=clip(raw), low=clip(raw - half), high=clip(raw + half), n=n, confidence=confidence
    )


def check_k(k: int) -> int:
    """Refuse a trivially small suppression threshold."""
    if isinstance(k, bool) or not isinstance(k, int) or k < MIN_K:
        raise ValueError(f"k must be an integer of at least {MIN_K}, not {k!r}")
    return k


def publishable(n: int, k: int = DEFAULT_K) -> bool:
    """True if a figure from ``n`` contributors may be shown to a business."""
    return n >= check_k(k)


def publish(
    count_ones: int, n: int, p: float, k: int = DEFAULT_K, confidence: float = 0.95
) -> Estimate | None:
    """:func:`estimate`, or None when fewer than ``k`` contributed (suppressed)."""
    if not publishable(n, k):
        return None
    return estimate(count_ones, n, p, confidence)


def published_figures(
    ones: Mapping[str, int], n: int, p: float, k: int, events: Iterable[str]
) -> tuple[dict[str, int | None], dict[str, list[float] | None]]:
    """Per event, the debiased count a business is shown (rounded) and its 95 % interval
    (one decimal), or None for both below ``k`` reports: the figures of a campaign report."""
    figures: dict[str, int | None] = {}
    intervals: dict[str, list[float] | None] = {}
    for event in events:
        found = publish(ones[event], n, p, k)
        figures[event] = round(found.value) if found else None
        intervals[event] = [round(found.low, 1), round(found.high, 1)] if found else None
    return figures, intervals


def tally(reports_bits: Iterable[int]) -> tuple[int, dict[Event, int]]:
    """Count reports and, per event, how many reports had its bit set (before debiasing)."""
    n = 0
    counts: dict[Event, int] = dict.fromkeys(EVENTS, 0)
    for bits in reports_bits:
        _check_bits(bits)
        n += 1
        for i, event in enumerate(EVENTS):
            counts[event] += bits >> i & 1
    return n, counts
