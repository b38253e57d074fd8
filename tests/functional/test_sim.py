"""The simulator on a real relay with real clients, small: nothing lost or duplicated, a clean
privacy audit of its own traffic, every campaign's noisy figures published and set against
the truth, refusals that follow the population's choices, the same counts for the same seed;
the sweep writes its CSV (and PNG when matplotlib is there); and an existing relay (--relay)
works with the audit reported as not run. The large runs are `sealpost sim --persons 1000`,
not unit tests."""

import csv
import importlib.util
import json
import math

import pytest

from sealpost.cli import main
from sealpost.sim.config import SimOptions
from sealpost.sim.estimator import DEFAULT_CENTRAL_EPSILON
from sealpost.sim.population import plan
from sealpost.sim.runner import run_sim
from sealpost.sim.summary import render, summarize
from sealpost.sim.sweep import BATCH_COLUMNS, COLUMNS, SweepOptions, run_sweep
from shared.signals import NO_SIGNAL, OUTCOMES

CHECKS = {
    "canaries_absent",
    "signal_requests",
    "token_unlinkability",
    "declared_schemas",
    "reports_counted_once",
    "business_view_noisy",
    "estimates_vs_truth",
}


@pytest.fixture(scope="module")
def small_run():
    run = run_sim(SimOptions(persons=50, campaigns=5, days=3, seed=11))
    return run, summarize(run)


def test_nothing_lost_or_duplicated_and_the_audit_passes(small_run):
    _, data = small_run
    copies = data["messages"]["campaign_copies"]
    assert data["passed"], data["failures"]
    assert data["messages"]["lost"] == 0
    assert data["messages"]["duplicated"] == 0
    assert copies["misdelivered"] == 0
    assert data["messages"]["chats"]["delivered"] == data["messages"]["chats"]["sent"] > 0
    # Every accepted copy is accounted for, and the clients stored every released one.
    assert copies["accepted"] == copies["planned"]
    assert copies["released"] + copies["refused"] + copies["expired"] == copies["accepted"]
    assert copies["delivered"] == copies["released"] > 0
    audit = data["privacy_audit"]
    assert audit["run"] and audit["passed"]
    assert {c["name"] for c in audit["checks"]} == CHECKS
    # Analytics: every delivered copy reported once; every campaign's figures published once
    # (the clock moved past them), each estimate with its interval.
    analytics = data["analytics"]
    assert analytics["reports_sent"] == copies["delivered"]
    assert analytics["published"] == analytics["figures"] > 0
    assert analytics["unpublished"] == 0
    assert all(r["low"] < r["estimate"] < r["high"] for r in analytics["estimates"])
    assert {r["outcome"] for r in analytics["estimates"]} == set(OUTCOMES)
    # One value per report: an outcome (each person's truth) or no_signal.
    no_signal = analytics["no_signal"]
    assert sum(analytics["true_outcomes"].values()) + no_signal["true"] == copies["delivered"]
    assert no_signal["published"] is not None
    # Each report is epsilon ln 3 on its own, and the shuffler's batches of 20 are too small
    # for the shuffling bound (it needs about 700 reports of one campaign in a batch).
    shuffling = analytics["shuffling"]
    assert shuffling["local_epsilon_per_report"] == round(math.log(3), 6)
    assert shuffling["batch"] == 20 and not shuffling["amplified_at_batch"]
    assert shuffling["central_epsilon_at_batch"] == round(math.log(3), 4)
    assert 600 < shuffling["min_batch_for_bound"] < 800
    assert data["virtual_time"]["figures_published"] is not None
    # Each business paid for its campaigns' figures out of a budget that held them all.
    per_campaign = data["relay"]["epsilon_per_campaign"]
    for business in data["privacy_budget"].values():
        assert business["published"] == business["campaigns"] > 0
        assert business["withheld"] == 0
        spent = business["epsilon_spent"]
        assert math.isclose(spent, per_campaign * business["campaigns"])
        assert spent <= business["epsilon_30d"] == data["relay"]["business_epsilon_30d"]
    # Money: charged at release, part given back as rebates once the figures were out.
    spend = data["spend"]
    assert spend["total_micro"] > 0
    assert spend["total_micro"] == spend["charged_micro"] - spend["rebates_micro"]
    assert data["latency_ms"]["samples"] == copies["delivered"]
    text = render(data)
    assert "Sealpost simulation: PASS" in text
    assert "lost 0, duplicated 0" in text
    assert "epsilon ln 3 a report" in text and "with no_signal" in text


def test_reports_with_signals_off_say_no_signal(small_run):
    """A device with signals switched off still reports every copy, with no_signal; the
    truth the estimates are compared with is the other reports' outcomes."""
    run, data = small_run
    played = run.played
    off = {p.handle for p in played.plan.persons if p.signals_off}
    assert off and data["population"]["signals_off"] == len(off)
    from_off = sum(1 for s in played.log.stored.values() if s.campaign_id and s.handle in off)
    assert from_off > 0
    # Nobody's budget runs out in three days (two copies a day at most, four reports a day).
    assert data["analytics"]["no_signal"]["true"] == from_off
    for cid, truth in played.true_counts.items():
        assert set(truth) == {*OUTCOMES, NO_SIGNAL}
        assert sum(truth.values()) == played.reporters[cid]


def test_refusals_follow_the_population_choices(small_run):
    run, data = small_run
    plan, log = run.played.plan, run.played.log
    received = {
        (s.handle, run.played.label_of(s.campaign_id)) for s in log.stored.values() if s.campaign_id
    }
    business_of = {c.label: c.business for c in plan.campaigns}
    addressed = [(h, c.label) for c in plan.campaigns for h in c.audience]
    level_none = {p.handle for p in plan.persons if p.level.level == "none"}
    blocked = {(p.handle, b) for p in plan.persons for b in p.blocks}
    assert level_none and any(h in level_none for h, _ in addressed)
    # Persons with marketing switched off get no campaign copy at all...
    assert not [r for r in received if r[0] in level_none]
    # ...nor does anyone from a business they blocked before the week.
    assert not [r for r in received if (r[0], business_of[r[1]]) in blocked]
    refused = data["messages"]["campaign_copies"]["refused_by_reason"]
    assert refused["marketing_level"] >= sum(h in level_none for h, _ in addressed)
    assert refused["blocked"] >= sum((h, business_of[c]) in blocked for h, c in addressed)
    # The cap was never exceeded: at most 2 campaign copies per person per simulated day.
    per_day: dict[tuple[str, int], int] = {}
    for handle, label in received:
        key = (handle, plan.campaign(label).day)
        per_day[key] = per_day.get(key, 0) + 1
    assert max(per_day.values()) <= 2


SAME_SEED = {"persons": 20, "campaigns": 2, "days": 2, "seed": 12}


@pytest.fixture(scope="module")
def seeded_run():
    """A tiny run with every device in the test's process (``workers=0``)."""
    return summarize(run_sim(SimOptions(**SAME_SEED, workers=0)))


def test_the_same_seed_gives_the_same_counts(seeded_run):
    options = SAME_SEED
    first = seeded_run
    again = summarize(run_sim(SimOptions(**options, workers=0)))
    assert first["counts"]["copies"]["delivered"] > 0
    assert again["counts"] == first["counts"]
    assert again["population"] == first["population"]
    # ...and another seed, another world.
    assert plan(SimOptions(**{**options, "seed": 13})).describe() != first["population"]


def test_persons_on_worker_processes_play_the_same_week(seeded_run):
    """The persons' devices split over two worker processes: every copy and chat is still
    counted where the person's app stored it (nothing lost or duplicated), the audit passes,
    and the seeded week is the one played in a single process."""
    data = summarize(run_sim(SimOptions(**SAME_SEED, workers=2)))
    assert data["options"]["workers"] == 2
    assert data["passed"], data["failures"]
    assert data["messages"]["lost"] == data["messages"]["duplicated"] == 0
    copies = data["messages"]["campaign_copies"]
    assert copies["delivered"] == copies["released"] > 0
    assert data["analytics"]["reports_sent"] == copies["delivered"]
    assert data["messages"]["chats"]["delivered"] == data["messages"]["chats"]["sent"] > 0
    assert data["counts"] == seeded_run["counts"]


def test_an_existing_relay_is_used_and_the_audit_is_not_run(sqlite_relay, capsys):
    relay = ["--relay", sqlite_relay.url]
    code = main(["sim", *relay, "--persons", "12", "--campaigns", "2", "--days", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0, data["failures"]
    assert data["relay"]["own"] is False
    assert data["privacy_audit"] == {"run": False, "passed": None, "reason": "external relay"}
    assert data["messages"]["lost"] == 0 and data["messages"]["duplicated"] == 0
    copies = data["messages"]["campaign_copies"]
    assert copies["delivered"] > 0
    # Its database is not ours, and what businesses see does not tell refusals apart.
    assert copies["released"] is None and copies["refused_by_reason"] is None
    # Its clock is real: the figures come days after the run.
    assert data["analytics"]["published"] == 0


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--persons", "5"], "--persons"),
        (["--levels", "all=1,sometimes=1"], "sometimes"),
        (["--epsilon", "0.5"], "--epsilon is gone"),
        (["--signals-off", "1.5"], "--signals-off"),
        (["--k", "10"], "--k is gone"),
        (["--relay", "http://127.0.0.1:9", "--cap", "3"], "--cap configures"),
        (["--relay", "http://127.0.0.1:9", "--no-quality"], "--no-quality configure"),
        (["--businesses", "2", "--spammy", "3"], "--spammy must be between 0 and --businesses"),
        (["--figures-epsilon", "11"], "--figures-epsilon must be above 0 and at most 10"),
        (["--compare-quality", "--no-quality"], "drop --no-quality"),
    ],
)
def test_bad_knobs_are_refused(args, complaint, capsys):
    assert main(["sim", *args]) == 2
    assert complaint in capsys.readouterr().err


def test_the_sweep_writes_a_csv_and_a_plot(tmp_path, capsys):
    result = run_sweep(
        SweepOptions(
            epsilons=[0.5, math.log(3)],
            sizes=[20, 80],
            trials=3,
            out=tmp_path,
            batches=[20, 20_000],
        )
    )
    with result.csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    assert [(float(r["epsilon_per_report"]), int(r["audience"])) for r in rows] == [
        (0.5, 20),
        (0.5, 80),
        (round(math.log(3), 6), 20),
        (round(math.log(3), 6), 80),
    ]
    assert all(0 <= float(r["coverage_95"]) <= 1 for r in rows)
    # k-ary randomized response: at ln 3 the true outcome is kept half the time.
    assert float(rows[2]["truth_probability"]) == 0.5
    assert float(rows[2]["other_probability"]) == round(1 / 6, 6)
    # The relay's central noise is in every cell, at the relay's default epsilon.
    assert all(float(r["central_epsilon"]) == DEFAULT_CENTRAL_EPSILON for r in rows)
    # More privacy (smaller epsilon) costs accuracy: the interval is wider.
    assert float(rows[0]["ci95_half_width_pct"]) > float(rows[2]["ci95_half_width_pct"])
    # The shuffler's batch size: more reports shuffled together, a smaller central epsilon
    # (once the bound applies) and a smaller error for the campaign that fills the batch.
    with result.batches_path.open() as f:
        batches = list(csv.DictReader(f))
    assert tuple(batches[0]) == BATCH_COLUMNS
    assert [int(r["batch"]) for r in batches] == [20, 20_000] * 2
    small, big = batches[0], batches[1]  # epsilon 0.5 per report
    assert small["amplified"] == "False" and float(small["shuffled_central_epsilon"]) == 0.5
    assert big["amplified"] == "True" and float(big["shuffled_central_epsilon"]) < 0.1
    assert float(big["mean_abs_error_pct"]) < float(small["mean_abs_error_pct"])
    # At the protocol's ln 3 a report, the bound applies from about 700 reports.
    at_ln3 = batches[3]
    assert float(at_ln3["epsilon_per_report"]) == round(math.log(3), 6)
    assert 600 < int(at_ln3["min_batch_for_bound"]) < 800
    assert at_ln3["amplified"] == "True"
    assert float(at_ln3["shuffled_central_epsilon"]) < 0.25
    if importlib.util.find_spec("matplotlib"):
        assert result.png_path is not None
        assert result.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert result.png_path is None and "pip install" in result.note

    out = tmp_path / "cli"
    argv = ["sim", "sweep", "--epsilons", "ln3", "--sizes", "30", "--trials", "2"]
    assert main([*argv, "--batches", "30,60", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["csv"] == str(out / "sweep.csv") and len(data["rows"]) == 1
    assert data["batches_csv"] == str(out / "batches.csv") and len(data["batches"]) == 2
