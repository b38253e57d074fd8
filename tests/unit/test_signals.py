"""Signal reports, randomized response, epsilon accounting and aggregation, as pure functions."""

import json
import math
import random
import re
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.encoding import canonical_json
from shared.signals import (
    ALL_BITS,
    DEFAULT_DAILY_CAP,
    DEFAULT_EPSILON_PER_BIT,
    DEFAULT_K,
    DEFAULT_REPORT_EPSILON,
    DEFAULT_WINDOW_CAP,
    EVENTS,
    MIN_K,
    REPORT_FIELDS,
    BudgetExhausted,
    EpsilonLedger,
    InvalidReport,
    SignalReport,
    bits_of,
    check_k,
    debias,
    decode_report,
    encode_report,
    epsilon_of,
    estimate,
    event_bit,
    events_of,
    keep_probability,
    publish,
    publishable,
    randomize,
    report_epsilon,
    tally,
    uniform_bits,
    variance,
)
from shared.tokens import OUTPUT_BYTES, TOKEN_INPUT_BYTES, Token

TOKEN = Token(bytes(range(TOKEN_INPUT_BYTES)), bytes(range(OUTPUT_BYTES)))
DAY = date(2025, 3, 1)


def good_report() -> bytes:
    return encode_report("spring-sale", "2025-03-01", 5, TOKEN)


def as_dict(data: bytes) -> dict:
    return json.loads(data)


# --- schema -------------------------------------------------------------------------------------


def test_the_event_list_is_closed_and_ordered():
    assert EVENTS == (
        "delivered",
        "read",
        "clicked",
        "dismissed",
        "stopped_promotions",
        "blocked",
        "reported",
    )
    assert ALL_BITS == 2 ** len(EVENTS) - 1
    assert event_bit("delivered") == 1 and event_bit("reported") == 64
    assert bits_of(["read", "clicked"]) == 0b110
    assert events_of(0b110) == ("read", "clicked")
    for bad in (-1, ALL_BITS + 1, True, 1.0):
        with pytest.raises(ValueError):
            events_of(bad)


def test_the_declared_fields_are_exactly_what_crosses():
    assert tuple(SignalReport.model_fields) == REPORT_FIELDS
    assert sorted(as_dict(good_report())) == sorted(REPORT_FIELDS)


def test_a_report_is_canonical_json_of_exactly_its_fields():
    data = good_report()
    assert data == canonical_json(as_dict(data))
    assert as_dict(data) == {
        "v": 1,
        "campaign_id": "spring-sale",
        "day": "2025-03-01",
        "bits": 5,
        "token_input": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "token_output": as_dict(data)["token_output"],
    }
    report = decode_report(data)
    assert report.token == TOKEN
    assert encode_report("spring-sale", DAY, 5, TOKEN) == data  # a date works as well


campaign_ids = st.from_regex(re.compile(r"[A-Za-z0-9_.:-]{1,64}"), fullmatch=True)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2199, 12, 31))
masks = st.integers(min_value=0, max_value=ALL_BITS)
tokens = st.builds(
    Token,
    st.binary(min_size=TOKEN_INPUT_BYTES, max_size=TOKEN_INPUT_BYTES),
    st.binary(min_size=OUTPUT_BYTES, max_size=OUTPUT_BYTES),
)


@settings(max_examples=200, deadline=None)
@given(campaign_ids, days, masks, tokens)
def test_any_report_round_trips(campaign_id, day, bits, token):
    data = encode_report(campaign_id, day, bits, token)
    report = decode_report(data)
    assert (report.campaign_id, report.day, report.bits, report.token) == (
        campaign_id,
        day.isoformat(),
        bits,
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


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(as_dict(good_report()), indent=1, sort_keys=True).encode(),  # whitespace
        json.dumps(as_dict(good_report())).encode(),  # not sorted, spaces
        good_report().replace(b'"bits":5', b'"bits":5.0'),
        good_report().replace(b'"bits":5', b'"bits":true'),
        good_report().replace(b'"bits":5', b'"bits":"5"'),
        good_report().replace(b'"bits":5', b'"bits":5,"bits":5'),  # duplicate key
        good_report().replace(b'"day":"2025-03-01"', b'"day":"2025-03-01T10:00"'),
        good_report().replace(b"spring-sale", b"spring\\u002dsale"),  # escape
        b"[" + good_report() + b"]",
        _with(bits=ALL_BITS + 1),
        _with(bits=-1),
        _with(day="2025-02-30"),
        _with(day="2025-3-1"),
        _with(day="20250301"),
        _with(day="2025-03-01\n"),
        _with(v=2),
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
    ("campaign_id", "day", "bits"),
    [
        ("spring-sale", "2025-03-01", ALL_BITS + 1),
        ("spring-sale", "2025-03-01", -1),
        ("spring-sale", "2025-03-01", True),
        ("spring-sale", "2025-13-01", 0),
        ("spring-sale", "yesterday", 0),
        ("no spaces allowed", "2025-03-01", 0),
    ],
)
def test_the_encoder_refuses_what_the_schema_refuses(campaign_id, day, bits):
    with pytest.raises(ValueError):
        encode_report(campaign_id, day, bits, TOKEN)


def test_the_encoder_refuses_tokens_of_the_wrong_size():
    with pytest.raises(ValueError):
        encode_report("spring-sale", DAY, 0, Token(b"short", TOKEN.output))
    with pytest.raises(ValueError):
        encode_report("spring-sale", DAY, 0, Token(TOKEN.input, TOKEN.output[:32]))


# --- randomized response ------------------------------------------------------------------------


def test_keep_probability_three_quarters_costs_ln_3():
    assert keep_probability(math.log(3)) == pytest.approx(0.75)
    assert epsilon_of(0.75) == pytest.approx(math.log(3))
    assert DEFAULT_EPSILON_PER_BIT == pytest.approx(math.log(3))
    # Basic composition: every bit of a report is randomized, so their epsilons add up.
    assert report_epsilon(math.log(3)) == pytest.approx(7 * math.log(3))
    assert DEFAULT_REPORT_EPSILON == pytest.approx(len(EVENTS) * math.log(3))


@given(st.floats(min_value=0.01, max_value=20))
def test_epsilon_and_keep_probability_are_inverse(eps):
    p = keep_probability(eps)
    assert 0.5 < p < 1
    if p < 1 - 1e-9:
        assert epsilon_of(p) == pytest.approx(eps, rel=1e-6)


@pytest.mark.parametrize("eps", [0, -1, math.inf, math.nan])
def test_a_non_positive_or_infinite_epsilon_is_refused(eps):
    with pytest.raises(ValueError):
        keep_probability(eps)
    with pytest.raises(ValueError):
        randomize(0, eps, random.Random(0))


@pytest.mark.parametrize("p", [0.5, 0.2, 1.0, 1.5])
def test_epsilon_of_refuses_probabilities_without_a_finite_positive_cost(p):
    with pytest.raises(ValueError):
        epsilon_of(p)


def _bit_rates(masks: list[int]) -> list[float]:
    return [sum(m >> i & 1 for m in masks) / len(masks) for i in range(len(EVENTS))]


def test_randomized_response_keeps_each_bit_three_times_in_four():
    rng = random.Random(1234)
    n = 20_000
    zeros = [randomize(0, math.log(3), rng) for _ in range(n)]
    ones = [randomize(ALL_BITS, math.log(3), rng) for _ in range(n)]
    # Each rate is a mean of 20,000 Bernoulli draws: standard deviation ~0.003.
    for rate in _bit_rates(zeros):
        assert rate == pytest.approx(0.25, abs=0.015)
    for rate in _bit_rates(ones):
        assert rate == pytest.approx(0.75, abs=0.015)


def test_randomized_response_uses_the_given_rng_and_defaults_to_system_randomness():
    assert randomize(0b1010101, rng=random.Random(7)) == randomize(0b1010101, rng=random.Random(7))
    assert 0 <= randomize(0b1010101) <= ALL_BITS


def test_uniform_bits_are_fair_coins():
    rng = random.Random(99)
    masks = [uniform_bits(rng) for _ in range(20_000)]
    for rate in _bit_rates(masks):
        assert rate == pytest.approx(0.5, abs=0.015)


# --- aggregation --------------------------------------------------------------------------------


def _simulated_count(truth: int, n: int, p: float, rng: random.Random) -> int:
    """Ones among n randomized reports of one bit, ``truth`` of which are really 1."""
    kept_ones = sum(rng.random() < p for _ in range(truth))
    flipped_zeros = sum(rng.random() >= p for _ in range(n - truth))
    return kept_ones + flipped_zeros


def test_debiasing_is_unbiased_and_the_interval_covers_the_truth():
    p, n, truth, trials = 0.75, 2_000, 600, 120
    rng = random.Random(2024)
    raws, covered = [], 0
    for _ in range(trials):
        ones = _simulated_count(truth, n, p, rng)
        raws.append(debias(ones, n, p))
        est = estimate(ones, n, p)
        covered += est.low <= truth <= est.high
    sd = math.sqrt(variance(n, p))
    mean = sum(raws) / trials
    # The mean of 120 unbiased estimates is within 4 standard errors of the truth.
    assert abs(mean - truth) < 4 * sd / math.sqrt(trials)
    # A 95% interval: binomial(120, 0.95) falls below 0.88 with probability ~1e-3.
    assert covered / trials >= 0.88
    empirical_var = sum((r - mean) ** 2 for r in raws) / (trials - 1)
    assert empirical_var == pytest.approx(variance(n, p), rel=0.3)


def test_ten_thousand_full_reports_estimate_every_event():
    rng = random.Random(10_000)
    rates = dict(zip(EVENTS, [0.98, 0.6, 0.2, 0.3, 0.05, 0.02, 0.01], strict=True))
    true_masks = [bits_of([e for e in EVENTS if rng.random() < rates[e]]) for _ in range(10_000)]
    n, true_counts = tally(true_masks)
    n_noisy, counts = tally(randomize(m, DEFAULT_EPSILON_PER_BIT, rng) for m in true_masks)
    assert n == n_noisy == 10_000
    p = keep_probability(DEFAULT_EPSILON_PER_BIT)
    sd = math.sqrt(variance(n, p))
    assert 2 * sd * 1.96 == pytest.approx(340, abs=10)  # the "+/-170 at 10,000" in the docs
    for event in EVENTS:
        est = publish(counts[event], n, p)
        assert est is not None and est.n == n
        assert abs(debias(counts[event], n, p) - true_counts[event]) < 4.5 * sd
        if 0 < est.low and est.high < n:  # unclipped: the normal interval, +/-1.96 sd
            assert est.high - est.low == pytest.approx(2 * 1.96 * sd, rel=0.01)


def test_debias_formula_and_variance():
    # With p = 0.75: ones = 0.75 t + 0.25 (n - t), so t = (ones - n/4) / 0.5.
    assert debias(400, 1000, 0.75) == pytest.approx(300)
    assert debias(250, 1000, 0.75) == pytest.approx(0)
    assert variance(1000, 0.75) == pytest.approx(1000 * 0.75 * 0.25 / 0.25)
    assert debias(37, 100, 1.0) == 37 and variance(100, 1.0) == 0  # no noise, no correction


def test_estimates_are_clipped_to_the_possible_range():
    low = estimate(20, 100, 0.75)
    assert debias(20, 100, 0.75) == pytest.approx(-10)
    assert low.value == 0 and low.low == 0 and 0 < low.high < 100
    high = estimate(100, 100, 0.75)
    assert high.value == 100 and high.high == 100
    wide = estimate(50, 100, 0.75, confidence=0.99)
    narrow = estimate(50, 100, 0.75, confidence=0.5)
    assert wide.low < narrow.low < narrow.high < wide.high


@pytest.mark.parametrize(
    ("ones", "n", "p"), [(-1, 10, 0.75), (11, 10, 0.75), (5, 10, 0.5), (5, 10, 1.2)]
)
def test_impossible_counts_are_refused(ones, n, p):
    with pytest.raises(ValueError):
        debias(ones, n, p)


def test_figures_below_k_contributors_are_suppressed():
    assert DEFAULT_K == 50 and MIN_K == 5
    assert not publishable(DEFAULT_K - 1)
    assert publishable(DEFAULT_K)
    assert publish(30, DEFAULT_K - 1, 0.75) is None
    assert publish(30, DEFAULT_K, 0.75) is not None
    assert publishable(5, k=5) and not publishable(4, k=5)


@pytest.mark.parametrize("k", [0, 1, 2, MIN_K - 1, -10, True, 5.0])
def test_a_trivially_small_k_is_refused(k):
    with pytest.raises(ValueError):
        check_k(k)
    with pytest.raises(ValueError):
        publishable(1000, k)
    with pytest.raises(ValueError):
        publish(10, 1000, 0.75, k=k)


def test_tally_counts_reports_and_bits():
    n, counts = tally([0b1, 0b11, 0b111, 0])
    assert n == 4
    assert counts["delivered"] == 3 and counts["read"] == 2 and counts["clicked"] == 1
    assert counts["reported"] == 0
    with pytest.raises(ValueError):
        tally([ALL_BITS + 1])


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
