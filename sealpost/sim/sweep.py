"""Estimation error against epsilon and audience size, by direct computation.

No relay and no clients: for each (epsilon per report, audience size) and each trial, an
audience is drawn from the simulator's behaviour profiles (``sealpost.audit.world.PROFILES``),
every person's true outcome (``shared.signals.outcome_of`` what they did) goes through the
devices' k-ary randomized response (``shared.signals.randomize``), the reports are tallied
(``shared.signals.tally``), every tally gets the relay's central noise (discrete Laplace at
``central_epsilon``, the relay's default for a campaign's interaction figures; drawn from the
seeded generator, so a grid is reproducible) and the relay's estimate is taken
(``shared.signals.estimate`` with that noise's variance, as server/figures.py does), and each
outcome's estimate is compared with the truth. This is the same arithmetic as the figures
a business is shown, thousands of times faster, so a grid with many trials takes seconds. It
writes a CSV and, with matplotlib installed, a PNG plot.

The shuffler's batch size B is swept too (``batches.csv``): for each epsilon and B, the
central epsilon that B reports shuffled together give (amplification by shuffling,
``shared.shuffle_bound``, the bound the shuffler states on its status page) and the
estimation error of a campaign whose reports make up one such batch (the cell above at an
audience of B). Bigger batches buy both privacy and accuracy; what they cost is time: the
shuffler holds reports until B have come.
"""

import csv
import math
import random
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealpost.audit.world import PROFILE_WEIGHTS, PROFILES
from sealpost.sim.estimator import DEFAULT_CENTRAL_EPSILON, noised, relay_estimates
from sealpost.sim.population import outcome_drawn
from shared.shuffle_bound import DEFAULT_DELTA, amplify
from shared.signals import (
    DEFAULT_REPORT_EPSILON,
    OUTCOMES,
    Outcome,
    other_probability,
    randomize,
    tally,
    truth_probability,
)

DEFAULT_EPSILONS = (0.25, 0.5, 1.0, DEFAULT_REPORT_EPSILON, 2.0, 3.0)
DEFAULT_SIZES = (50, 200, 1000, 5000)
# Shuffler batch sizes, from its default (20). The bound needs ~16 log(2/δ) e^ε0 reports of
# one campaign in a batch: ~300 at 0.25 per report, ~700 at ln 3 (the protocol's), ~4,700 at 3.
DEFAULT_BATCHES = (20, 100, 500, 1000, 5000, 20000)
COLUMNS = (
    "epsilon_per_report",
    "truth_probability",
    "other_probability",
    "central_epsilon",
    "audience",
    "trials",
    "estimates",
    "mean_abs_error",
    "mean_abs_error_pct",
    "rmse_pct",
    "p95_abs_error_pct",
    "ci95_half_width_pct",
    "coverage_95",
)
BATCH_COLUMNS = (
    "epsilon_per_report",
    "batch",
    "delta",
    "shuffled_central_epsilon",
    "amplified",
    "min_batch_for_bound",
    "central_epsilon",
    "trials",
    "mean_abs_error_pct",
    "ci95_half_width_pct",
    "coverage_95",
)
INSTALL_HINT = "pip install -e '.[sim]'  (matplotlib) for the PNG plot"


@dataclass
class SweepOptions:
    # Epsilon of one report (k-ary randomized response over the four outcomes).
    epsilons: list[float] = field(default_factory=lambda: list(DEFAULT_EPSILONS))
    sizes: list[int] = field(default_factory=lambda: list(DEFAULT_SIZES))
    trials: int = 20
    seed: int = 1
    out: Path = Path("sim-sweep")
    # The relay's noise on the tallies; 0: randomized response alone (no figure a business
    # is shown looks like that).
    central_epsilon: float = DEFAULT_CENTRAL_EPSILON
    batches: list[int] = field(default_factory=lambda: list(DEFAULT_BATCHES))

    def validate(self) -> "SweepOptions":
        if not self.epsilons or any(not (e > 0 and math.isfinite(e)) for e in self.epsilons):
            raise ValueError("--epsilons: give positive numbers, e.g. 0.5,1,ln3,2")
        if not self.sizes or any(n < 1 for n in self.sizes):
            raise ValueError("--sizes: give audience sizes of at least 1, e.g. 100,1000")
        if self.trials < 1:
            raise ValueError("--trials must be at least 1")
        if not self.batches or any(b < 2 for b in self.batches):
            raise ValueError("--batches: give shuffler batch sizes of at least 2, e.g. 20,1000")
        if not (self.central_epsilon >= 0 and math.isfinite(self.central_epsilon)):
            raise ValueError("--central-epsilon must be zero (no central noise) or positive")
        return self


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]
    csv_path: Path
    png_path: Path | None  # None when matplotlib is missing
    note: str = ""
    batch_rows: list[dict[str, Any]] = field(default_factory=list)
    batches_path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "csv": str(self.csv_path),
            "png": str(self.png_path) if self.png_path else None,
            "note": self.note,
            "rows": self.rows,
            "batches_csv": str(self.batches_path) if self.batches_path else None,
            "batches": self.batch_rows,
        }


def _audience(rng: random.Random, size: int) -> list[Outcome]:
    """The true outcomes of ``size`` recipients drawn from the behaviour profiles (each copy
    delivered, each recipient reporting with a signal)."""
    profiles, weights = zip(*PROFILE_WEIGHTS.items(), strict=True)
    return [outcome_drawn(rng, PROFILES[rng.choices(profiles, weights)[0]]) for _ in range(size)]


def _cell(epsilon: float, size: int, trials: int, seed: int, central_eps: float) -> dict[str, Any]:
    errors: list[float] = []
    halves: list[float] = []
    covered = 0
    for trial in range(trials):
        rng = random.Random(f"{seed}:{epsilon!r}:{size}:{trial}")
        truth = _audience(rng, size)
        true_counts = Counter(truth)
        counts = tally(randomize(outcome, epsilon, rng) for outcome in truth)
        # Unclipped, as the relay publishes it: its error is the estimator's own.
        found = relay_estimates(noised(counts, central_eps, rng), central_eps, epsilon)
        for outcome in OUTCOMES:
            covered += found[outcome].low <= true_counts[outcome] <= found[outcome].high
            errors.append(found[outcome].value - true_counts[outcome])
            halves.append((found[outcome].high - found[outcome].low) / 2)
    absolute = sorted(abs(e) for e in errors)
    return {
        "epsilon_per_report": round(epsilon, 6),
        "truth_probability": round(truth_probability(epsilon), 6),
        "other_probability": round(other_probability(epsilon), 6),
        "central_epsilon": central_eps,
        "audience": size,
        "trials": trials,
        "estimates": len(errors),
        "mean_abs_error": round(statistics.fmean(absolute), 3),
        "mean_abs_error_pct": round(100 * statistics.fmean(absolute) / size, 3),
        "rmse_pct": round(100 * math.sqrt(statistics.fmean(e * e for e in errors)) / size, 3),
        "p95_abs_error_pct": round(
            100 * absolute[min(len(absolute) - 1, math.ceil(0.95 * len(absolute)) - 1)] / size, 3
        ),
        "ci95_half_width_pct": round(100 * statistics.fmean(halves) / size, 3),
        "coverage_95": round(covered / len(errors), 4),
    }


def _batch_row(
    epsilon: float, batch: int, cell: dict[str, Any], delta: float = DEFAULT_DELTA
) -> dict[str, Any]:
    """One shuffler batch size: the central epsilon of ``batch`` shuffled reports (each
    epsilon-private on its own) and the error of a campaign that fills it."""
    bound = amplify(epsilon, batch, delta)
    return {
        "epsilon_per_report": round(bound.local_epsilon, 6),
        "batch": batch,
        "delta": delta,
        "shuffled_central_epsilon": round(bound.central_epsilon, 4),
        "amplified": bound.amplified,
        "min_batch_for_bound": bound.min_reports,
        "central_epsilon": cell["central_epsilon"],
        "trials": cell["trials"],
        "mean_abs_error_pct": cell["mean_abs_error_pct"],
        "ci95_half_width_pct": cell["ci95_half_width_pct"],
        "coverage_95": cell["coverage_95"],
    }


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def run_sweep(
    options: SweepOptions, on_cell: Callable[[int, int], None] | None = None
) -> SweepResult:
    """Every (epsilon, size) cell and every (epsilon, batch size); writes ``sweep.csv``,
    ``batches.csv`` and, if it can, ``sweep.png``."""
    options.validate()
    epsilons = sorted(options.epsilons)
    cells = [(e, n) for e in epsilons for n in sorted(options.sizes)]
    batches = [(e, b) for e in epsilons for b in sorted(options.batches)]
    done: dict[tuple[float, int], dict[str, Any]] = {}  # a batch of B is an audience of B

    def cell(epsilon: float, size: int) -> dict[str, Any]:
        if (epsilon, size) not in done:
            args = (options.trials, options.seed, options.central_epsilon)
            done[(epsilon, size)] = _cell(epsilon, size, *args)
            if on_cell:
                on_cell(len(done), len(set(cells) | set(batches)))
        return done[(epsilon, size)]

    rows = [cell(e, n) for e, n in cells]
    batch_rows = [_batch_row(e, b, cell(e, b)) for e, b in batches]
    options.out.mkdir(parents=True, exist_ok=True)
    csv_path = options.out / "sweep.csv"
    _write_csv(csv_path, COLUMNS, rows)
    batches_path = options.out / "batches.csv"
    _write_csv(batches_path, BATCH_COLUMNS, batch_rows)
    png_path, note = plot(rows, options.out / "sweep.png")
    return SweepResult(
        rows=rows,
        csv_path=csv_path,
        png_path=png_path,
        note=note,
        batch_rows=batch_rows,
        batches_path=batches_path,
    )


def plot(rows: list[dict[str, Any]], path: Path) -> tuple[Path | None, str]:
    """Error against epsilon (one line per audience size) and against audience size (one
    line per epsilon); returns the path, or None and how to get matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None, f"matplotlib is not installed; the CSV is written. {INSTALL_HINT}"
    sizes = sorted({r["audience"] for r in rows})
    epsilons = sorted({r["epsilon_per_report"] for r in rows})
    fig, (by_eps, by_size) = plt.subplots(1, 2, figsize=(11, 4.5))
    central = rows[0]["central_epsilon"] if rows else 0
    fig.suptitle(
        f"k-ary randomized response on the devices, and the relay's noise at epsilon {central:g} "
        "on the tallies"
        if central
        else "k-ary randomized response on the devices alone (no central noise)",
        fontsize="medium",
    )
    for size in sizes:
        mine = [r for r in rows if r["audience"] == size]
        xs = [r["epsilon_per_report"] for r in mine]
        (line,) = by_eps.plot(xs, [r["mean_abs_error_pct"] for r in mine], marker="o")
        by_eps.plot(
            xs, [r["ci95_half_width_pct"] for r in mine], linestyle=":", color=line.get_color()
        )
        line.set_label(f"{size:,} recipients")
    by_eps.axvline(DEFAULT_REPORT_EPSILON, color="grey", linewidth=0.8, linestyle="--")
    by_eps.set(
        xlabel="epsilon per report (dashed: ln 3, the protocol's)",
        ylabel="error, % of the audience",
        title="Mean absolute error (solid) and 95% CI half-width (dotted)",
        yscale="log",
    )
    by_eps.legend(fontsize="small")
    for epsilon in epsilons:
        mine = [r for r in rows if r["epsilon_per_report"] == epsilon]
        by_size.plot(
            [r["audience"] for r in mine],
            [r["mean_abs_error_pct"] for r in mine],
            marker="o",
            label=f"epsilon {epsilon:.3g}"
            + (" (ln 3)" if math.isclose(epsilon, DEFAULT_REPORT_EPSILON, rel_tol=1e-5) else ""),
        )
    by_size.set(
        xlabel="audience size (reports)",
        ylabel="mean absolute error, % of the audience",
        title="Error against audience size",
        xscale="log",
        yscale="log",
    )
    by_size.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path, ""
