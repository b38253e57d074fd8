"""Signal reports, k-ary randomized response, epsilon accounting and aggregation, as pure
functions."""

import json
import math
import random
import re
from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.encoding import canonical_json
from shared.signals import (
    DEFAULT_BUSINESS_CAP,
    DEFAULT_DAILY_CAP,
    DEFAULT_REPORT_EPSILON,
    DEFAULT_WINDOW_CAP,
    EVENTS,
    NO_SIGNAL,
    OUTCOMES,
    REPORT_FIELDS,
    REPORT_VALUES,
    BudgetExhausted,
    EpsilonLedger,
    InvalidReport,
    SignalReport,
    decode_report,
    encode_report,
    epsilon_of,
    estimate,
    event_bit,
    events_of,
    other_probability,
    outcome_of,
    randomize,
    tally,
    truth_probability,
)
from shared.tokens import OUTPUT_BYTES, TOKEN_INPUT_BYTES, Token

TOKEN = Token(bytes(range(TOKEN_INPUT_BYTES)), bytes(range(OUTPUT_BYTES)))
DAY = date(2025, 3, 1)


def good_report() -> bytes:
    return encode_report("spring-sale", "2025-03-01", "read", TOKEN)


def as_dict(data: bytes) -> dict:
    return json.loads(data)


# --- schema -------------------------------------------------------------------------------------


def test_outcomes_are_closed_exclusive_and_carry_no_identified_choice():
    assert OUTCOMES == ("not_read", "read", "clicked", "dismissed")
    assert REPORT_VALUES == (*OUTCOMES, NO_SIGNAL)
    # Choices the relay receives by name anyway are never repeated in a report, and a
    # constant "delivered" would say nothing.
    for gone in ("delivered", "stopped_promotions", "blocked", "reported"):
        assert gone not in REPORT_VALUES
    assert EVENTS == ("read", "clicked", "dismissed")
    assert events_of(event_bit("read") | event_bit("dismissed")) == ("read", "dismissed")
    assert outcome_of([]) == "not_read"
    assert outcome_of(["read"]) == "read"
    assert outcome_of(["read", "dismissed"]) == "dismissed"
    assert outcome_of(["dismissed", "clicked", "read"]) == "clicked"


def test_the_declared_fields_are_exactly_what_crosses():
    assert tuple(SignalReport.model_fields) == REPORT_FIELDS
    assert sorted(as_dict(good_report())) == sorted(REPORT_FIELDS)


def test_a_report_is_canonical_json_of_exactly_its_fields():
    data = good_report()
    assert data == canonical_json(as_dict(data))
    assert as_dict(data) == {
        "v": 2,
        "campaign_id": "spring-sale",
        "day": "2025-03-01",
        "outcome": "read",
        "token_input": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "token_output": as_dict(data)["token_output"],
    }
    report = decode_report(data)
    assert report.token == TOKEN
    assert encode_report("spring-sale", DAY, "read", TOKEN) == data  # a date works as well


campaign_ids = st.from_regex(re.compile(r"[A-Za-z0-9_.:-]{1,64}"), fullmatch=True)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2199, 12, 31))
values = st.sampled_from(REPORT_VALUES)
tokens = st.builds(
    Token,
    st.binary(min_size=TOKEN_INPUT_BYTES, max_size=TOKEN_INPUT_BYTES),
    st.binary(min_size=OUTPUT_BYTES, max_size=OUTPUT_BYTES),
)


@settings(max_examples=200, deadline=None)
@given(campaign_ids, days, values, tokens)
def test_any_report_round_trips(campaign_id, day, value, token):
    data = encode_report(campaign_id, day, value, token)
    report = decode_report(data)
    assert (report.campaign_id, report.day, report.outcome, report.token) == (
        campaign_id,
        day.isoformat(),
        value,
        token,
    )
    assert canonical_json(report.model_dump()) == data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda k: k not in REPORT_FIELDS), json_values)
def test_an_extra_field_is_refused(key, value):
    fields = as_dict(good_report())
    fields[key] = value
    with pytest.raises(InvalidReport):
        decode_report(canonical_json(fields))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_is_refused_with_invalid_report(data):
    with pytest.raises(InvalidReport):
        decode_report(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=20))
def test_trailing_data_is_refused(suffix):
    with pytest.raises(InvalidReport):
        decode_report(good_report() + suffix)


def _with(**changes) -> bytes:
    fields = as_dict(good_report())
    fields.update(changes)
    return canonical_json(fields)


def _first_version() -> bytes:
    fields = {k: v for k, v in as_dict(good_report()).items() if k != "outcome"}
    return canonical_json({**fields, "v": 1, "bits": 5})


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(as_dict(good_report()), indent=1, sort_keys=True).encode(),  # whitespace
        json.dumps(as_dict(good_report())).encode(),  # not sorted, spaces
        good_report().replace(b'"outcome":"read"', b'"outcome":1'),
        good_report().replace(b'"outcome":"read"', b'"outcome":"READ"'),
        good_report().replace(b'"outcome":"read"', b'"outcome":"delivered"'),
        good_report().replace(b'"outcome":"read"', b'"outcome":"blocked"'),
        good_report().replace(b'"outcome":"read"', b'"outcome":"read","outcome":"read"'),
        good_report().replace(b'"day":"2025-03-01"', b'"day":"2025-03-01T10:00"'),
        good_report().replace(b"spring-sale", b"spring\\u002dsale"),  # escape
        b"[" + good_report() + b"]",
        _first_version(),
        _with(v=1),
        _with(v=3),
        _with(day="2025-02-30"),
        _with(day="2025-3-1"),
        _with(day="20250301"),
        _with(day="2025-03-01\n"),
        _with(campaign_id="has space"),
        _with(campaign_id=""),
        _with(token_input="AAEC"),  # 3 bytes
        _with(token_output=as_dict(good_report())["token_input"]),  # 32 bytes, not 64
        _with(token_input="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9="),  # spare bits set
        _with(token_input="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),  # no padding
        canonical_json({k: v for k, v in as_dict(good_report()).items() if k != "day"}),
        canonical_json({**as_dict(good_report()), "message_id": "0" * 32}),
        canonical_json({**as_dict(good_report()), "handle": "alice"}),
        b"\xff" + good_report(),
        good_report() + b" " * 400,
    ],
)
def test_non_canonical_or_out_of_schema_reports_are_refused(data):
    with pytest.raises(InvalidReport):
        decode_report(data)


@pytest.mark.parametrize(
    ("campaign_id", "day", "value"),
    [
        ("spring-sale", "2025-03-01", "delivered"),
        ("spring-sale", "2025-03-01", 5),
        ("spring-sale", "2025-03-01", None),
        ("spring-sale", "2025-13-01", "read"),
        ("spring-sale", "yesterday", "read"),
        ("no spaces allowed", "2025-03-01", "read"),
    ],
)
def test_the_encoder_refuses_what_the_schema_refuses(campaign_id, day, value):
    with pytest.raises(ValueError):
        encode_report(campaign_id, day, value, TOKEN)


def test_the_encoder_refuses_tokens_of_the_wrong_size():
    with pytest.raises(ValueError):
        encode_report("spring-sale", DAY, "read", Token(b"short", TOKEN.output))
    with pytest.raises(ValueError):
        encode_report("spring-sale", DAY, "read", Token(TOKEN.input, TOKEN.output[:32]))


# --- randomized response ------------------------------------------------------------------------


def test_one_report_costs_ln_3_with_half_truth_and_a_sixth_for_each_other_outcome():
    assert DEFAULT_REPORT_EPSILON == pytest.approx(math.log(3))
    assert truth_probability() == pytest.approx(0.5)
    assert other_probability() == pytest.approx(1 / 6)
    # The ratio of any reported value's probability under two truths is at most e^eps.
    assert truth_probability() / other_probability() == pytest.approx(math.exp(math.log(3)))
    assert epsilon_of(0.5) == pytest.approx(math.log(3))


@given(st.floats(min_value=0.01, max_value=20))
def test_epsilon_and_truth_probability_are_inverse(eps):
    p = truth_probability(eps)
    assert 1 / len(OUTCOMES) < p < 1
    assert p + (len(OUTCOMES) - 1) * other_probability(eps) == pytest.approx(1)
    if p < 1 - 1e-9:
        assert epsilon_of(p) == pytest.approx(eps, rel=1e-6)


@pytest.mark.parametrize("eps", [0, -1, math.inf, math.nan])
def test_a_non_positive_or_infinite_epsilon_is_refused(eps):
    with pytest.raises(ValueError):
        truth_probability(eps)
    with pytest.raises(ValueError):
        randomize("read", eps, random.Random(0))


@pytest.mark.parametrize("p", [0.25, 0.2, 1.0, 1.5])
def test_epsilon_of_refuses_probabilities_without_a_finite_positive_cost(p):
    with pytest.raises(ValueError):
        epsilon_of(p)


def test_randomized_response_tells_the_truth_half_the_time_and_spreads_the_rest():
    rng = random.Random(1234)
    n = 24_000
    for truth in OUTCOMES:
        shares = Counter(randomize(truth, rng=rng) for _ in range(n))
        # Each share is a mean of 24,000 Bernoulli draws: standard deviation <= 0.0033.
        for value in OUTCOMES:
            want = 0.5 if value == truth else 1 / 6
            assert shares[value] / n == pytest.approx(want, abs=0.015)


def test_randomized_response_uses_the_given_rng_and_refuses_what_is_not_an_outcome():
    assert randomize("read", rng=random.Random(7)) == randomize("read", rng=random.Random(7))
    assert randomize("clicked") in OUTCOMES
    for bad in ("no_signal", "delivered", 5):
        with pytest.raises(ValueError):
            randomize(bad, rng=random.Random(0))  # type: ignore[arg-type]


# --- aggregation --------------------------------------------------------------------------------


def _population(rng: random.Random, n: int, spent: float) -> tuple[list[str], dict[str, int]]:
    """Reports of ``n`` devices, a share ``spent`` of them with no budget left (no_signal),
    and the true outcome counts among those that do report one."""
    weights = {"not_read": 0.45, "read": 0.35, "clicked": 0.05, "dismissed": 0.15}
    reports, truth = [], dict.fromkeys(OUTCOMES, 0)
    for _ in range(n):
        outcome = rng.choices(OUTCOMES, [weights[o] for o in OUTCOMES])[0]
        if rng.random() < spent:
            reports.append(NO_SIGNAL)
            continue
        truth[outcome] += 1
        reports.append(randomize(outcome, rng=rng))
    return reports, truth


def test_tally_counts_every_value_and_refuses_others():
    counts = tally(["read", "read", NO_SIGNAL, "clicked"])
    assert counts == {"not_read": 0, "read": 2, "clicked": 1, "dismissed": 0, NO_SIGNAL: 1}
    with pytest.raises(ValueError):
        tally(["delivered"])


def test_estimates_are_unbiased_and_cover_the_truth_with_spent_devices_among_them():
    # The first version's devices sent coin flips once their budget was spent, which the
    # relay could not tell apart: with 5 % of them, intervals covered the truth 82 % of the
    # time. Counted apart as no_signal, they bias nothing.
    rng = random.Random(2026)
    trials, covered, total, errors = 200, Counter(), 0, {o: [] for o in OUTCOMES}
    for _ in range(trials):
        reports, truth = _population(rng, 2_000, spent=0.1)
        found = estimate(tally(reports))
        for outcome in OUTCOMES:
            covered[outcome] += found[outcome].low <= truth[outcome] <= found[outcome].high
            errors[outcome].append(found[outcome].value - truth[outcome])
            total += 1
    # 800 intervals: binomial(800, 0.95) is within 0.93-0.97 with probability > 0.99.
    assert 0.93 <= sum(covered.values()) / total <= 0.97
    for outcome in OUTCOMES:
        sd = math.sqrt(sum(e * e for e in errors[outcome]) / trials)
        assert abs(sum(errors[outcome]) / trials) < 4 * sd / math.sqrt(trials)


def test_estimates_are_not_clipped_and_widen_with_central_noise():
    # Nobody clicked, and randomized response happened to report fewer clicks than chance.
    counts = {"not_read": 60, "read": 20, "clicked": 5, "dismissed": 15, NO_SIGNAL: 7}
    found = estimate(counts)
    assert found["clicked"].value < 0  # unbiased means sometimes below zero
    assert found["clicked"].n == 100  # among reports with a signal: no_signal is not one
    assert sum(e.value for e in found.values()) == pytest.approx(100)
    noisy = estimate(counts, central_variance=50.0)
    for outcome in OUTCOMES:
        assert noisy[outcome].value == found[outcome].value
        assert noisy[outcome].high - noisy[outcome].low > found[outcome].high - found[outcome].low
    wide = estimate(counts, confidence=0.99)["read"]
    narrow = estimate(counts, confidence=0.5)["read"]
    assert wide.low < narrow.low < narrow.high < wide.high
    with pytest.raises(ValueError):
        estimate(counts, confidence=1.0)


# --- epsilon accounting -------------------------------------------------------------------------


def test_the_daily_cap_refuses_the_fifth_report_and_records_nothing():
    ledger = EpsilonLedger()
    assert DEFAULT_DAILY_CAP == pytest.approx(4 * DEFAULT_REPORT_EPSILON)
    for _ in range(4):
        ledger.spend(DAY, DEFAULT_REPORT_EPSILON)
    before = ledger.to_json()
    assert not ledger.can_spend(DAY, DEFAULT_REPORT_EPSILON)
    with pytest.raises(BudgetExhausted):
        ledger.spend(DAY, DEFAULT_REPORT_EPSILON)
    assert ledger.to_json() == before
    assert ledger.can_spend(DAY + timedelta(days=1), DEFAULT_REPORT_EPSILON)
    # An epsilon-0 report (uniform bits) is always possible, so a report can always be sent.
    assert ledger.can_spend(DAY, 0.0)


def _accepted_per_day(ledger: EpsilonLedger, days: int, per_day: int) -> list[int]:
    accepted = []
    for offset in range(days):
        count = 0
        for _ in range(per_day):
            try:
                ledger.spend(DAY + timedelta(days=offset), DEFAULT_REPORT_EPSILON)
                count += 1
            except BudgetExhausted:
                pass
        accepted.append(count)
    return accepted


def test_the_budget_does_not_renew_every_day():
    accepted = _accepted_per_day(EpsilonLedger(), days=90, per_day=4)
    # A daily cap alone would have allowed 4 a day, 360 in all.
    assert accepted[:8] == [4, 4, 4, 4, 4, 4, 4, 2]
    assert accepted[8:30] == [0] * 22  # spent out until the first days leave the window
    assert accepted[30] == 4
    for start in range(90 - 29):
        assert sum(accepted[start : start + 30]) <= 30
    assert sum(accepted) == 90
    assert DEFAULT_WINDOW_CAP == pytest.approx(30 * DEFAULT_REPORT_EPSILON)


def test_the_lifetime_total_is_kept_and_an_optional_lifetime_cap_is_final():
    ledger = EpsilonLedger(lifetime_cap=10 * DEFAULT_REPORT_EPSILON)
    accepted = _accepted_per_day(ledger, days=400, per_day=1)
    assert sum(accepted) == 10
    assert ledger.lifetime_spent == pytest.approx(10 * DEFAULT_REPORT_EPSILON)
    unlimited = EpsilonLedger()
    assert sum(_accepted_per_day(unlimited, days=400, per_day=1)) == 400
    # Old days are pruned from the per-day map, but the lifetime total never resets.
    assert len(unlimited.spent) <= 2 * unlimited.window_days
    assert unlimited.lifetime_spent == pytest.approx(400 * DEFAULT_REPORT_EPSILON)


def test_one_business_buys_at_most_its_lifetime_cap_about_a_person():
    ledger = EpsilonLedger()
    assert DEFAULT_BUSINESS_CAP == pytest.approx(20 * DEFAULT_REPORT_EPSILON)
    bought = 0
    for offset in range(400):  # a campaign a day, for more than a year
        try:
            ledger.spend(DAY + timedelta(days=offset), DEFAULT_REPORT_EPSILON, business="acme")
            bought += 1
        except BudgetExhausted:
            pass
    assert bought == 20
    assert ledger.spent_on_business("acme") == pytest.approx(DEFAULT_BUSINESS_CAP)
    assert ledger.remaining(DAY + timedelta(days=401), "acme") == 0
    # Another business's reports still carry a signal: the cap is per business.
    assert ledger.can_spend(DAY + timedelta(days=401), DEFAULT_REPORT_EPSILON, "shop")
    again = EpsilonLedger.from_json(json.loads(json.dumps(ledger.to_json())))
    assert not again.can_spend(DAY + timedelta(days=402), DEFAULT_REPORT_EPSILON, "acme")


def test_a_first_version_ledger_keeps_what_it_spent_under_todays_caps():
    old = {
        "v": 1,
        "daily_cap": 30.76,
        "window_days": 30,
        "window_cap": 230.7,
        "lifetime_cap": None,
        "lifetime_spent": 15.38,
        "spent": {"2025-03-01": 15.38},
    }
    ledger = EpsilonLedger.from_json(old)
    assert ledger.v == 2 and ledger.daily_cap == DEFAULT_DAILY_CAP
    assert ledger.lifetime_spent == pytest.approx(15.38)
    assert not ledger.can_spend(DAY, DEFAULT_REPORT_EPSILON)  # that day is well spent


def test_windows_are_checked_on_both_sides_of_an_earlier_day():
    ledger = EpsilonLedger()
    for offset in range(20, 28):  # 8 days, 30 reports
        for _ in range(4 if offset < 27 else 2):
            ledger.spend(DAY + timedelta(days=offset), DEFAULT_REPORT_EPSILON)
    # Day 15 is before them, but any 30 days holding day 15 and days 20-27 would exceed the cap.
    assert not ledger.can_spend(DAY + timedelta(days=15), DEFAULT_REPORT_EPSILON)
    # A day far behind the newest cannot be checked any more, so it is refused.
    assert ledger.remaining(DAY - timedelta(days=30)) == 0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=80), st.integers(min_value=1, max_value=6)),
        max_size=40,
    )
)
def test_no_sequence_of_spends_breaks_a_cap(attempts):
    ledger = EpsilonLedger()
    spent: dict[int, float] = {}
    for offset, count in attempts:
        for _ in range(count):
            day = DAY + timedelta(days=offset)
            if ledger.can_spend(day, DEFAULT_REPORT_EPSILON):
                ledger.spend(day, DEFAULT_REPORT_EPSILON)
                spent[offset] = spent.get(offset, 0.0) + DEFAULT_REPORT_EPSILON
            else:
                with pytest.raises(BudgetExhausted):
                    ledger.spend(day, DEFAULT_REPORT_EPSILON)
    slack = 1e-6
    for eps in spent.values():
        assert eps <= ledger.daily_cap + slack
    for start in range(-30, 81):
        window = sum(e for d, e in spent.items() if start <= d < start + 30)
        assert window <= ledger.window_cap + slack
    assert ledger.lifetime_spent == pytest.approx(sum(spent.values()))


def test_the_ledger_round_trips_through_json():
    ledger = EpsilonLedger(lifetime_cap=500.0)
    ledger.spend(DAY, 1.5)
    ledger.spend("2025-03-02", 2.25)
    data = json.loads(json.dumps(ledger.to_json()))
    again = EpsilonLedger.from_json(data)
    assert again == ledger
    assert again.spent_on("2025-03-02") == 2.25
    assert again.spent_in_window(date(2025, 3, 2)) == pytest.approx(3.75)


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"spent": {"2025-02-30": 1.0}},
        {"spent": {"2025-03-01": -1.0}},
        {"daily_cap": 0},
        {"lifetime_spent": -1},
        {"window_cap": "lots"},
    ],
)
def test_a_corrupt_ledger_is_refused(change):
    data = {**EpsilonLedger().to_json(), **change}
    with pytest.raises(ValueError):
        EpsilonLedger.from_json(data)


@pytest.mark.parametrize("eps", [-0.1, math.nan, math.inf])
def test_spending_a_meaningless_epsilon_is_refused(eps):
    with pytest.raises(ValueError):
        EpsilonLedger().spend(DAY, eps)
