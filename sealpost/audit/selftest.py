"""``sealpost audit --selftest``: does the audit catch what it claims to?

The audit runs once on the real code (it must pass), then once per leak in ``plants.py``, each
planted alone into a running copy (a real relay, shuffler and devices, as the audit always
runs them). A leak is caught when one of the checks meant for it fails; the selftest passes
only if the real code passes and every leak is caught. Each run is small (40 persons, 16
oracle trials), so the whole takes a couple of minutes.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sealpost.audit.plants import PLANTS, Plant, plant
from sealpost.audit.runner import AuditOptions, AuditResult, run_audit

PERSONS = 40  # enough for the timing attack to see a planted delay (see attacks/timing.py)
ORACLE_TRIALS = 16  # a business that guesses every trial right still fails (allowed: 97%)


@dataclass
class Run:
    """One audit run of the selftest: on the real code (``plant`` None) or with a leak."""

    plant: Plant | None
    passed: bool  # the audit's verdict
    failed: list[str]  # every check that failed
    caught_by: list[str]  # the failed checks that are meant to catch this plant
    measured: str  # what the (first) catching check measured, or its first violation
    seconds: float

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "plant": self.plant.name if self.plant else None,
            "audit_passed": self.passed,
            "failed_checks": self.failed,
            "seconds": round(self.seconds, 1),
        }
        if self.plant is not None:
            found.update(
                party=self.plant.party,
                leak=self.plant.leak,
                meant_to_catch=list(self.plant.catchers),
                caught=self.caught,
                caught_by=self.caught_by,
                measured=self.measured,
            )
        return found


@dataclass
class SelftestResult:
    persons: int
    seed: int
    clean: Run
    planted: list[Run] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.clean.passed and all(run.caught for run in self.planted)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "persons": self.persons,
            "seed": self.seed,
            "clean_run": self.clean.to_json(),
            "leaks": [run.to_json() for run in self.planted],
            "caught": sum(run.caught for run in self.planted),
            "planted": len(self.planted),
            "seconds": round(self.clean.seconds + sum(r.seconds for r in self.planted), 1),
        }


def _run(found: Plant | None, persons: int, seed: int) -> Run:
    began = time.perf_counter()
    result: AuditResult = run_audit(
        AuditOptions(
            persons=persons,
            seed=seed,
            workers=0,  # a small world: no worker processes to start
            oracle_trials=ORACLE_TRIALS,
            plant=found.name if found else None,
        )
    )
    failed = [c for c in result.checks if not c.passed]
    catchers = [c for c in failed if found is not None and c.name in found.catchers]
    # What an attack measured says most; a check that only verifies has its first violation.
    first = next((c for c in catchers if c.measured), catchers[0] if catchers else None)
    first = first or (failed[0] if failed else None)
    measured = ""
    if first is not None:
        measured = first.measured or (first.violations[0] if first.violations else first.summary)
    return Run(
        plant=found,
        passed=result.passed,
        failed=[c.name for c in failed],
        caught_by=[c.name for c in catchers],
        measured=measured,
        seconds=time.perf_counter() - began,
    )


def run_selftest(
    persons: int = PERSONS,
    seed: int = 1,
    names: Sequence[str] | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> SelftestResult:
    """The audit on the real code, then with each plant in ``names`` (default: all)."""
    chosen = [plant(name) for name in (names if names is not None else list(PLANTS))]
    clean = _run(None, persons, seed)
    if on_run:
        on_run(clean)
    result = SelftestResult(persons=persons, seed=seed, clean=clean)
    for found in chosen:
        run = _run(found, persons, seed)
        result.planted.append(run)
        if on_run:
            on_run(run)
    return result
