"""Interaction signals: the report schema, k-ary randomized response, epsilon accounting,
aggregation.

A signal report is the only thing a client sends about what a person did with a campaign
message. It holds a campaign id, a day, one **outcome** (after randomized response) and a
one-time anonymous token (see :mod:`shared.tokens`): exactly :data:`REPORT_FIELDS`, nothing
else. Each recipient sends one report per campaign whatever they did, so the existence of a
report says nothing.

Outcomes. What a person did with one copy is one of :data:`OUTCOMES`, mutually exclusive:
``clicked`` (a button or link) if they clicked, else ``dismissed`` if they dismissed it, else
``read`` if they opened it, else ``not_read`` (:func:`outcome_of`). Left out on purpose:
``delivered`` (every report's copy was delivered: a constant bit says nothing and costs
budget) and the explicit choices: stopping promotions and blocking reach the relay by name
anyway, as preferences it enforces, and reporting a business is a message sealed to the
moderation desk, which reads it. Repeating them in an anonymous report would spend budget to
tell the relay, or the business's figures, what is already said elsewhere.

Randomized response (k-ary, Warner 1965 generalised; Kairouz, Oh and Viswanath 2014). The
device reports its true outcome with probability ``p = e^eps / (e^eps + k - 1)`` and each of
the ``k - 1`` others with ``q = 1 / (e^eps + k - 1)``. Any reported value is at most ``p / q =
e^eps`` times likelier under one truth than under another, so **one report costs eps**,
whatever the person did. At the default ``eps = ln 3`` and ``k = 4``: p = 1/2, q = 1/6. (The
first version randomized seven independent bits at ln 3 each: 7.7 per report.) k-ary
response has a lower variance than optimised unary encoding whenever ``k < 3 e^eps + 2``
(Wang et al., USENIX Security 2017): here 4 < 11.

``no_signal``: the value of a report that carries nothing (signals switched off, or the
budget below spent). It is not randomized and costs nothing; the relay learns how many
reports carry no signal and nothing about their outcomes. Counting them apart is what keeps
the estimates unbiased whatever state devices are in: the first version sent coin flips the
relay could not tell from real answers, which pulled every estimate towards the middle.

Budget (:class:`EpsilonLedger`), per device, checked before each report:

- ``DEFAULT_DAILY_CAP`` = 4 reports (4 ln 3 ~ 4.4) a day;
- ``DEFAULT_WINDOW_CAP`` = 30 reports (~33.0) over any 30 consecutive days (the daily cap
  alone would renew every midnight);
- ``DEFAULT_BUSINESS_CAP`` = 20 reports (~22.0) about **one business's** campaigns over the
  device's whole life. Without it, a business sending one campaign a day buys a fresh
  report about the same person for ever (~300 over 40 days in the first version). Past it,
  that business's reports carry ``no_signal``;
- ``lifetime_cap`` (all businesses), off by default: a product decision, not a library one;
  the total is always kept (``lifetime_spent``).

Aggregation (the relay, :func:`estimate`): from the counts per reported value, the number
of people with outcome j among the ``m`` reports that carry a signal is ``t_j = (c_j - m q)
/ (p - q)``, unbiased, with variance ``t_j p (1-p) + (m - t_j) q (1-q)`` over ``(p-q)^2``
plus whatever central noise the relay added to the counts. Estimates are published as they
are, not clipped to [0, m]: clipping biases rare outcomes upwards.
"""

import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any, Final, Literal, Protocol, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.encoding import b64decode, b64encode, canonical_json
from shared.identifiers import ShortId
from shared.tokens import OUTPUT_BYTES, TOKEN_INPUT_BYTES, Token

Event = Literal["read", "clicked", "dismissed"]
# What the app notes on a pending report, in the order of the device's stored mask.
EVENTS: tuple[Event, ...] = get_args(Event)
Outcome = Literal["not_read", "read", "clicked", "dismissed"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
NO_SIGNAL: Final = "no_signal"
ReportValue = Literal["not_read", "read", "clicked", "dismissed", "no_signal"]
REPORT_VALUES: tuple[ReportValue, ...] = get_args(ReportValue)
K = len(OUTCOMES)

# The report format's own version (the first, with a bitmask over seven events, was 1).
REPORT_VERSION: Final = 2
REPORT_FIELDS = ("v", "campaign_id", "day", "outcome", "token_input", "token_output")
# Generous bound on an encoded report (the longest valid one is under 300 bytes).
MAX_REPORT_BYTES = 512

DEFAULT_REPORT_EPSILON = math.log(3)

_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def event_bit(event: Event) -> int:
    """The bit of one event in a device's stored mask."""
    return 1 << EVENTS.index(event)


def events_of(mask: int) -> tuple[Event, ...]:
    """The events set in a device's stored mask."""
    return tuple(e for i, e in enumerate(EVENTS) if mask >> i & 1)


def outcome_of(events: Iterable[Event]) -> Outcome:
    """The one outcome a set of events amounts to: clicked, else dismissed, else read."""
    found = set(events)
    for outcome in ("clicked", "dismissed", "read"):
        if outcome in found:
            return outcome
    return "not_read"


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

    v: Literal[2] = REPORT_VERSION
    campaign_id: ShortId
    day: str = Field(description="UTC day of the event, YYYY-MM-DD; nothing finer")
    outcome: ReportValue = Field(description="after k-ary randomized response, or no_signal")
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


def encode_report(
    campaign_id: str, day: date | str, noisy_outcome: ReportValue, token: Token
) -> bytes:
    """The canonical JSON of a report: the only way a client builds signal bytes.

    ``noisy_outcome`` must already have gone through :func:`randomize` (or be
    ``no_signal``). The parameters are the whole report; there is no way to add anything to it.
    """
    if noisy_outcome not in REPORT_VALUES:
        raise ValueError(f"outcome must be one of {', '.join(REPORT_VALUES)}")
    report = SignalReport(
        campaign_id=campaign_id,
        day=day.isoformat() if isinstance(day, date) else day,
        outcome=noisy_outcome,
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


def _check_epsilon(epsilon: float) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError("epsilon must be a positive finite number")


def truth_probability(epsilon: float = DEFAULT_REPORT_EPSILON) -> float:
    """p: the probability of reporting the true outcome, for a report budget ``epsilon`` > 0."""
    _check_epsilon(epsilon)
    return 1 / (1 + (K - 1) * math.exp(-epsilon))


def other_probability(epsilon: float = DEFAULT_REPORT_EPSILON) -> float:
    """q: the probability of reporting one given other outcome (there are k - 1 of them)."""
    return (1 - truth_probability(epsilon)) / (K - 1)


def epsilon_of(p: float) -> float:
    """The epsilon that truth-probability ``p`` costs: ln(p / q) with q = (1 - p) / (k - 1)."""
    if not 1 / K < p < 1:
        raise ValueError(f"p must be in (1/{K}, 1)")
    return math.log(p * (K - 1) / (1 - p))


def randomize(
    outcome: Outcome,
    epsilon: float = DEFAULT_REPORT_EPSILON,
    rng: RandomSource | None = None,
) -> Outcome:
    """k-ary randomized response: the true outcome with probability p, else one of the
    others, uniformly."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    p = truth_probability(epsilon)
    if rng is None:
        rng = secrets.SystemRandom()
    draw = rng.random()
    if draw < p:
        return outcome
    others = [o for o in OUTCOMES if o != outcome]
    return others[min(int((draw - p) / (1 - p) * len(others)), len(others) - 1)]


# --- epsilon accounting -------------------------------------------------------------------------

DEFAULT_DAILY_CAP = 4 * DEFAULT_REPORT_EPSILON
WINDOW_DAYS = 30
DEFAULT_WINDOW_CAP = 30 * DEFAULT_REPORT_EPSILON
DEFAULT_BUSINESS_CAP = 20 * DEFAULT_REPORT_EPSILON
# Sums of floats drift; without slack the last report that exactly fills a cap is refused.
_SLACK = 1e-9


class BudgetExhausted(Exception):
    """Spending this epsilon would exceed a cap; send an epsilon-0 report instead."""


def _as_day(day: date | str) -> date:
    return day if isinstance(day, date) else date.fromisoformat(_check_day(day))


class EpsilonLedger(BaseModel):
    """One person's privacy budget: epsilon spent per day and per business, under caps.

    Pure and serialisable (:meth:`to_json` / :meth:`from_json`); the client keeps one per
    person and calls :meth:`spend` before each report. No spend may make any day exceed
    ``daily_cap``, any ``window_days`` consecutive days exceed ``window_cap``, one business's
    reports ever exceed ``business_cap``, or the total ever spent exceed ``lifetime_cap`` (if
    set). Spends for days before the newest day minus ``window_days - 1`` are refused: the
    ledger no longer holds what it needs to check them.
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[2] = 2
    daily_cap: float = Field(default=DEFAULT_DAILY_CAP, gt=0, allow_inf_nan=False)
    window_days: int = Field(default=WINDOW_DAYS, ge=1, le=366)
    window_cap: float = Field(default=DEFAULT_WINDOW_CAP, gt=0, allow_inf_nan=False)
    business_cap: float | None = Field(default=DEFAULT_BUSINESS_CAP, gt=0, allow_inf_nan=False)
    lifetime_cap: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    lifetime_spent: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    spent: dict[str, float] = Field(default_factory=dict, description="ISO day -> epsilon")
    by_business: dict[str, float] = Field(
        default_factory=dict, description="business handle -> epsilon ever spent on its reports"
    )

    @field_validator("spent", "by_business")
    @classmethod
    def _valid_spent(cls, value: dict[str, float], info: Any) -> dict[str, float]:
        for key, eps in value.items():
            if info.field_name == "spent":
                _check_day(key)
            if not (eps >= 0 and math.isfinite(eps)):
                raise ValueError("spent epsilon must be finite and non-negative")
        return value

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """A stored ledger. One of the first version (v 1, caps sized for 7.7 per report)
        keeps what it spent and takes today's caps."""
        if data.get("v") == 1:
            data = {
                "spent": data.get("spent", {}),
                "lifetime_spent": data.get("lifetime_spent", 0.0),
                "lifetime_cap": data.get("lifetime_cap"),
            }
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

    def spent_on_business(self, business: str) -> float:
        """Epsilon ever spent on reports about ``business``'s campaigns."""
        return self.by_business.get(business, 0.0)

    def remaining(self, day: date | str, business: str | None = None) -> float:
        """The most that could be spent on ``day`` now, on a report about ``business``'s
        campaign if given (0 when nothing may be)."""
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
        if business is not None and self.business_cap is not None:
            room = min(room, self.business_cap - self.spent_on_business(business))
        return max(room, 0.0)

    def can_spend(self, day: date | str, epsilon: float, business: str | None = None) -> bool:
        if not (epsilon >= 0 and math.isfinite(epsilon)):
            raise ValueError("epsilon must be finite and non-negative")
        return epsilon <= self.remaining(day, business) + _SLACK

    def spend(self, day: date | str, epsilon: float, business: str | None = None) -> None:
        """Record ``epsilon`` spent on ``day`` (on ``business``'s report, if given), or raise
        ``BudgetExhausted`` and record nothing."""
        if not self.can_spend(day, epsilon, business):
            raise BudgetExhausted(
                f"spending {epsilon:.3f} on {_as_day(day)} would exceed the privacy budget"
            )
        d = _as_day(day)
        self.spent[d.isoformat()] = self.spent_on(d) + epsilon
        self.lifetime_spent += epsilon
        if business is not None:
            self.by_business[business] = self.spent_on_business(business) + epsilon
        # Keep only what a later check can need: two windows back from the newest day.
        newest = self._newest()
        assert newest is not None
        horizon = newest - timedelta(days=2 * self.window_days)
        self.spent = {k: e for k, e in self.spent.items() if date.fromisoformat(k) > horizon}


# --- aggregation (the relay) --------------------------------------------------------------------


class Estimate(BaseModel):
    """An unbiased estimate of how many of the ``n`` reports with a signal came from people
    with one outcome, with its confidence interval. Not clipped: it may fall below 0 or
    above ``n``, which is the price of being unbiased (sum values across campaigns freely)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    low: float
    high: float
    n: float
    confidence: float


def tally(values: Iterable[str]) -> dict[ReportValue, int]:
    """How many reports carried each value (outcomes after randomization, and no_signal)."""
    counts: dict[ReportValue, int] = dict.fromkeys(REPORT_VALUES, 0)
    for value in values:
        if value not in counts:
            raise ValueError(f"not a report value: {value!r}")
        counts[value] += 1
    return counts


def estimate(
    counts: Mapping[Any, float],
    epsilon: float = DEFAULT_REPORT_EPSILON,
    confidence: float = 0.95,
    central_variance: float = 0.0,
) -> dict[Outcome, Estimate]:
    """Per outcome, the unbiased count among the reports that carry a signal, from the counts
    per reported outcome (``no_signal`` is not needed and not used).

    E[c_j] = t_j p + (m - t_j) q over the m = sum of c reports with a signal, so t_j = (c_j -
    m q) / (p - q). Its variance is t_j p(1-p) + (m - t_j) q(1-q) (each report a Bernoulli
    draw), over (p - q)^2, with t_j taken in [0, m] for the variance alone. When the counts
    got independent central noise of variance ``central_variance`` each (the relay's), m
    carries it too, and the estimate's variance grows by ``central_variance`` ((1-q)^2 +
    (k-1) q^2) / (p-q)^2.
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if central_variance < 0:
        raise ValueError("central_variance must be non-negative")
    p = truth_probability(epsilon)
    q = other_probability(epsilon)
    m = float(sum(counts[o] for o in OUTCOMES))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    noise = central_variance * ((1 - q) ** 2 + (K - 1) * q**2)
    out: dict[Outcome, Estimate] = {}
    for outcome in OUTCOMES:
        value = (counts[outcome] - m * q) / (p - q)
        t = min(max(value, 0.0), max(m, 0.0))
        var = (t * p * (1 - p) + (max(m, 0.0) - t) * q * (1 - q) + noise) / (p - q) ** 2
        half = z * math.sqrt(var)
        out[outcome] = Estimate(
            value=value, low=value - half, high=value + half, n=m, confidence=confidence
        )
    return out
