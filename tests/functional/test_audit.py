"""The researcher's audit: it passes on the real client and relay, and it fails loudly when a
leak is planted on purpose (a canary in a header of the anonymous channel)."""

import json

import httpx
import pytest

import client.signals
from sealpost.audit import AuditOptions, run_audit
from sealpost.audit.world import plan_world
from sealpost.cli import main

PERSONS, SEED = 30, 5


def test_the_audit_passes_on_the_real_client(capsys):
    assert main(["audit", "--persons", str(PERSONS), "--seed", str(SEED), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    names = {c["name"]: c for c in report["checks"]}
    assert set(names) == {
        "canaries_absent",
        "signal_requests",
        "token_unlinkability",
        "declared_schemas",
        "reports_counted_once",
        "business_view_noisy",
        "estimates_vs_truth",
    }
    assert all(c["passed"] for c in names.values())
    assert names["canaries_absent"]["details"]["canaries_planted"] > 5 * PERSONS
    assert names["signal_requests"]["details"]["reports"] > PERSONS
    # Every campaign, the small one too, got its figures once, noisy: no threshold hides a
    # figure any more, the noise does the hiding.
    noisy = names["business_view_noisy"]["details"]
    assert noisy["reports_with_figures"] >= 3
    assert all(r["estimate"] is not None for r in report["estimates"])
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
