"""The signals benchmark: estimates as the relay publishes them (k-ary randomized response,
no_signal from spent budgets, the relay's central noise), their error against epsilon, and
the coverage of their 95% intervals, which sets its verdict. A quick run: few campaigns."""

import math

from sealpost.benchmarks.signals import BUDGET_SPENT_SHARE, TARGET_COVERAGE, estimation_error
from shared.signals import OUTCOMES


def test_the_benchmark_reports_errors_against_epsilon_and_coverage():
    result = estimation_error(recipients=2_000, coverage_seeds=25)
    assert result["name"] == "signals_estimation"
    assert {"floor", "target", "ok", "worst_error_pct", "ci_half_width_pct"} <= set(result)
    assert set(result["outcomes"]) == set(OUTCOMES)
    # The budget-spent share sends no_signal, counted apart from the outcomes.
    assert result["with_signal"] + result["no_signal"] == 2_000
    assert 0.5 * BUDGET_SPENT_SHARE < result["no_signal"] / 2_000 < 1.5 * BUDGET_SPENT_SHARE
    assert result["published"]["central_epsilon"] > 0
    # More epsilon, less error: ln 3 is among the epsilons, and its p is 1/2.
    rows = result["by_epsilon"]
    assert any(r["epsilon_per_report"] == round(math.log(3), 4) for r in rows)
    assert [r["ci_half_width_pct"] for r in rows] == sorted(
        (r["ci_half_width_pct"] for r in rows), reverse=True
    )
    assert next(r for r in rows if r["truth_probability"] == 0.5)
    coverage = result["coverage"]
    assert coverage["seeds"] >= 20 and coverage["intervals"] == 4 * coverage["campaigns"]
    low, high = TARGET_COVERAGE
    assert result["ok"] == (low <= coverage["covered"] <= high)
    # 300 intervals: well within 0.85-1 unless the estimator or its interval is broken.
    assert 0.85 <= coverage["covered"] <= 1
