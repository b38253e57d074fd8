"""The shuffle-model bound (Feldman, McMillan, Talwar 2021, Theorem 3.1) against values worked
out by hand from the formula

    ε ≤ log(1 + (e^ε0 - 1)/(e^ε0 + 1) · (8 √(e^ε0 log(4/δ)) / √n + 8 e^ε0 / n)),
    valid for ε0 ≤ log(n / (16 log(2/δ))).
"""

import math

import pytest

from shared.shuffle_bound import (
    DEFAULT_DELTA,
    amplify,
    max_local_epsilon,
    min_reports,
    shuffled_epsilon,
)


def test_ln3_over_ten_thousand_reports():
    # ε0 = ln 3, n = 10,000, δ = 1e-6, step by step:
    #   e^ε0 = 3;  (3 - 1)/(3 + 1) = 0.5
    #   log(4/δ) = ln 4,000,000 = 15.2018049
    #   8 √(3 · 15.2018049) / √10,000 = 8 · 6.7531781 / 100 = 0.5402542
    #   8 · 3 / 10,000 = 0.0024
    #   0.5 · (0.5402542 + 0.0024) = 0.2713271;  ln 1.2713271 = 0.2400613
    # Applies: ln(10,000 / (16 ln 2,000,000)) = ln(10,000 / 232.13852) = 3.7630 ≥ ln 3.
    assert shuffled_epsilon(math.log(3), 10_000, 1e-6) == pytest.approx(0.2400613, abs=1e-7)
    assert max_local_epsilon(10_000, 1e-6) == pytest.approx(3.763006, abs=1e-6)


def test_epsilon_one_over_a_thousand_reports():
    # ε0 = 1, n = 1,000, δ = 1e-6:
    #   e = 2.7182818;  (e - 1)/(e + 1) = 1.7182818 / 3.7182818 = 0.4621172
    #   8 √(2.7182818 · 15.2018049) / √1,000 = 8 · 6.4282805 / 31.6227766 = 1.6262406
    #   8 · 2.7182818 / 1,000 = 0.0217463
    #   0.4621172 · 1.6479869 = 0.7615630;  ln 1.7615630 = 0.5662015
    # Applies: ln(1,000 / 232.13852) = 1.4604 ≥ 1.
    assert shuffled_epsilon(1.0, 1_000, 1e-6) == pytest.approx(0.5662015, abs=1e-7)


def test_outside_its_range_the_theorem_says_nothing():
    # B = 20 reports at ε0 = ln 3: ln(20 / 232.13852) < 0, far below ln 3.
    assert max_local_epsilon(20, 1e-6) == pytest.approx(math.log(20 / 232.1385238), abs=1e-6)
    assert shuffled_epsilon(math.log(3), 20, 1e-6) is None
    # From ⌈16 ln(2/δ) e^ε0⌉ = ⌈232.13852 · 3⌉ = ⌈696.4156⌉ = 697 reports it applies.
    assert min_reports(math.log(3), 1e-6) == 697
    assert shuffled_epsilon(math.log(3), 696, 1e-6) is None
    assert shuffled_epsilon(math.log(3), 697, 1e-6) is not None
    # Today's report, seven bits at ln 3 (7.69): ⌈232.13852 · 2187⌉ = 507,687 reports.
    assert min_reports(7 * math.log(3), 1e-6) == 507_687


def test_what_is_stated_never_exceeds_the_local_epsilon():
    small = amplify(math.log(3), 20)
    assert not small.amplified and small.central_epsilon == math.log(3)
    big = amplify(math.log(3), 10_000)
    assert big.amplified and big.central_epsilon == pytest.approx(0.2400613, abs=1e-7)
    assert big.delta == DEFAULT_DELTA and big.min_reports == 697
    assert big.to_json()["central_epsilon"] == pytest.approx(0.240061, abs=1e-6)
    # Where the formula gives more than ε0 (tiny ε0 at the edge of its range), ε0 stands:
    # shuffling is post-processing and never makes a report less private.
    edge = min_reports(0.01, 1e-6)
    assert shuffled_epsilon(0.01, edge, 1e-6) > 0.01
    assert amplify(0.01, edge).central_epsilon == 0.01


def test_more_reports_hide_each_one_better():
    values = [shuffled_epsilon(math.log(3), n) for n in (1_000, 10_000, 100_000, 1_000_000)]
    assert all(v is not None for v in values)
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    "args", [(-0.1, 100, 1e-6), (math.inf, 100, 1e-6), (1.0, 0, 1e-6), (1.0, 100, 0.0)]
)
def test_nonsense_is_refused(args):
    with pytest.raises(ValueError):
        shuffled_epsilon(*args)
