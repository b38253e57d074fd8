"""The researcher's audit: it passes on the real client and relay, attacks included, and it
fails loudly when a leak is planted on purpose (a canary in a header of the anonymous
channel; the selftest's plants, each caught by the check meant for it)."""

import json

import httpx
import pytest

import client.signals
from sealpost.audit import AuditOptions, run_audit
from sealpost.audit.plants import PLANTS
from sealpost.audit.selftest import run_selftest
from sealpost.audit.world import plan_world
from sealpost.cli import main
from shared.signals import NO_SIGNAL, OUTCOMES

PERSONS, SEED = 30, 5
CHECKS = {
    "canaries_absent",
    "signal_requests",
    "token_unlinkability",
    "declared_schemas",
    "reports_counted_once",
    "business_view_noisy",
    "estimates_vs_truth",
}
ATTACKS = {
    "business_oracle",
    "timing_linkage",
    "identity_values",
    "token_linkage",
    "connection_linkage",
    "randomized_response",
    "report_existence",
    "relay_keeps",
}


def test_the_audit_passes_on_the_real_client(capsys):
    assert main(["audit", "--persons", str(PERSONS), "--seed", str(SEED), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    names = {c["name"]: c for c in report["checks"]}
    assert set(names) == CHECKS | ATTACKS
    assert all(c["passed"] for c in names.values())
    # Every attack says what its adversary achieved, against a threshold it states.
    assert all(names[a]["measured"] for a in ATTACKS)
    oracle = names["business_oracle"]["details"]
    assert oracle["trials"] == 40 and oracle["exact_part_accuracy"] == 0.5
    timing = names["timing_linkage"]["details"]
    assert set(timing["strategies"]) == {"after_delivery", "after_opens", "together"}
    # Days of app opens were simulated, not compressed into one moment.
    assert "simulated days" in names["timing_linkage"]["summary"]
    assert names["report_existence"]["details"]["planned"]["budget_spent"] > 0
    # A report carries one outcome, randomized; a device whose budget is spent says
    # no_signal, every time, and no device with budget does.
    silent = names["randomized_response"]["details"]["no_signal"]
    assert silent["budget_spent"]["reports"] == silent["budget_spent"][NO_SIGNAL] > 0
    assert silent["with_budget"][NO_SIGNAL] == 0 < silent["with_budget"]["reports"]
    assert set(names["randomized_response"]["details"]["agreement"]["randomized"]) <= set(OUTCOMES)
    assert names["canaries_absent"]["details"]["canaries_planted"] > 5 * PERSONS
    assert names["signal_requests"]["details"]["reports"] > PERSONS
    # Every campaign, the small one too, got its figures once, noisy: no threshold hides a
    # figure any more, the noise does the hiding.
    noisy = names["business_view_noisy"]["details"]
    assert noisy["reports_with_figures"] >= 3
    assert all(r["estimate"] is not None for r in report["estimates"])
    # Per campaign: each outcome's estimate, and the reports that carry no signal.
    assert {r["event"] for r in report["estimates"]} == {*OUTCOMES, NO_SIGNAL}
    for label in ("acme_spring", "brio_loyalty", "brio_small"):
        rows = [r for r in report["estimates"] if r["campaign"] == label]
        assert sum(r["true"] for r in rows) == rows[0]["reports"]
    # A handful of people: the interval is far wider than the campaign, so the figures say
    # nothing about any one of them.
    small = [r for r in report["estimates"] if r["campaign"] == "brio_small"]
    assert small and all(r["high"] - r["low"] > 2 * r["reports"] for r in small)
    assert any(r["covered"] for r in report["estimates"])


class LeakyClient(httpx.AsyncClient):
    """A buggy anonymous channel: it tags each signal request with a customer's name."""

    leaked = ""

    async def post(self, url, *args, headers=None, **kwargs):  # type: ignore[no-untyped-def]
        if str(url).endswith(("/v1/signals", "/v1/reports")):  # to the relay or the shuffler
            headers = {**(headers or {}), "X-Debug-Customer": self.leaked}
        return await super().post(url, *args, headers=headers, **kwargs)


def test_a_planted_leak_is_reported_and_fails_the_audit(monkeypatch, capsys):
    plan = plan_world(PERSONS, SEED)
    LeakyClient.leaked = plan.persons[0].variables["acme_spring"]["name"]
    assert LeakyClient.leaked.startswith("CANARY-NAME-")
    monkeypatch.setattr(client.signals.httpx, "AsyncClient", LeakyClient)

    result = run_audit(AuditOptions(persons=PERSONS, seed=SEED))
    assert not result.passed
    failed = {c.name: c for c in result.checks if not c.passed}
    assert set(failed) == {"canaries_absent", "signal_requests"}
    assert any(
        LeakyClient.leaked in v and "x-debug-customer" in v.lower()
        for v in failed["canaries_absent"].violations
    )
    assert any(
        "undeclared header x-debug-customer" in v for v in failed["signal_requests"].violations
    )
    # Everything else about the run was still fine.
    assert all(c.passed for c in result.checks if c.name not in failed)

    # And the command line says so with its exit status and its report.
    assert main(["audit", "--persons", str(PERSONS), "--seed", str(SEED)]) == 1
    out = capsys.readouterr().out
    assert "Sealpost privacy audit: FAIL" in out
    assert "canaries_absent       FAIL" in out


@pytest.mark.parametrize("persons", [9])
def test_too_few_persons_is_refused(persons, capsys):
    assert main(["audit", "--persons", str(persons)]) == 2
    assert "--persons" in capsys.readouterr().err


def test_the_gone_k_threshold_is_refused_with_why(capsys):
    assert main(["audit", "--k", "10"]) == 2
    assert "--k is gone" in capsys.readouterr().err


def test_persons_on_worker_processes_give_the_same_world(capsys):
    # The persons of a big audit are played on worker processes: the same seed must give the
    # same truth and the same reports as playing them all in one process. (The published
    # estimates carry the relay's central noise, drawn afresh by every relay: not compared.)
    reports = []
    for workers in ("0", "2"):
        args = ["audit", "--persons", str(PERSONS), "--seed", str(SEED), "--workers", workers]
        assert main([*args, "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    local, split = reports
    assert split["passed"] is True
    assert split["timings_s"]["workers"] == 2
    assert local["timings_s"]["workers"] == 0

    def truth(rows: list[dict]) -> list[dict]:  # campaign ids are random, the noise too
        return [{k: row[k] for k in ("campaign", "event", "reports", "true")} for row in rows]

    assert truth(split["estimates"]) == truth(local["estimates"])
    assert {k: v for k, v in split["world"].items() if k != "campaigns"} == {
        k: v for k, v in local["world"].items() if k != "campaigns"
    }


def test_a_bad_worker_count_is_refused(capsys):
    assert main(["audit", "--persons", "20", "--workers", "-1"]) == 2
    assert "--workers" in capsys.readouterr().err


# A few leaks, one of each party and kind: each caught by the check meant for it, and the
# real code passes (the whole list runs in the slow test below, and as `--selftest`).
FEW = ["token_input_reused", "relay_keeps_arrival_time", "shuffler_forwards_small_batches"]


def test_the_selftest_catches_planted_leaks_and_passes_the_real_code():
    result = run_selftest(names=FEW)
    assert result.clean.passed, result.clean.failed
    assert [run.plant.name for run in result.planted if run.plant] == FEW
    for run in result.planted:
        assert run.caught, (run.plant, run.failed)
        assert run.measured
    assert result.passed
    report = result.to_json()
    assert report["caught"] == report["planted"] == len(FEW)
    assert {leak["caught_by"][0] for leak in report["leaks"]} == {
        "token_linkage",
        "relay_keeps",
        "timing_linkage",
    }


@pytest.mark.slow
def test_the_full_selftest_catches_every_planted_leak(capsys):
    assert main(["audit", "--selftest", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["planted"] == len(PLANTS) >= 12
    assert all(leak["caught"] for leak in report["leaks"])
    assert report["clean_run"]["audit_passed"] is True


def test_a_planted_leak_is_named_in_the_report(capsys):
    # The selftest's world (40 persons, seed 1): enough people who only read a campaign for
    # an outcome sent as it is to stand out at the attack's 1e-6.
    args = ["audit", "--persons", "40", "--seed", "1"]
    assert main([*args, "--plant", "read_without_noise"]) == 1
    out = capsys.readouterr().out
    assert "PLANTED LEAK (selftest hook): read_without_noise" in out
    assert "randomized_response   FAIL" in out
    assert "outcome read reported as it is in 100%" in out


def test_selftest_and_plant_are_one_or_the_other(capsys):
    with pytest.raises(SystemExit):
        main(["audit", "--selftest", "--plant", "read_without_noise"])
    assert "not allowed with" in capsys.readouterr().err
