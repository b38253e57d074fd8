"""``sealpost sim``: a simulated week of business messaging, and ``sim sweep``: estimation
error over a grid of epsilons and audience sizes."""

import argparse
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Simulate a week of business messaging on real clients and a real relay, in seconds.

A relay runs on loopback (unless --relay names one) on a manual clock that starts at the
simulated week's first moment. N persons and B businesses register through the real client
and all stay connected, each holding its delivery stream open. Persons have behaviour
profiles (how often they read, click, dismiss, stop promotions, block, report) and marketing
levels; businesses run campaigns spread over the week, personalised and sealed on their
machines. The clock moves from send time to send time; the relay releases what is due,
applying each person's choices and the rolling daily cap; every copy is stored by its
person's client, acted on, and reported anonymously: one outcome per copy (not_read, read,
clicked or dismissed) through k-ary randomized response at epsilon ln 3, or no_signal from a
device with signals off (--signals-off) or its budget spent, each report alone to a shuffler
beside the relay (sealpost shuffler), which forwards them to the relay in shuffled batches of
at least 20 after each simulated hour. Deterministic for a seed: the same seed plays the
same week (timings, and the relay's noise on the figures and the rebates that follow it,
aside).

After the week the relay's clock moves past every campaign's figures_at (its send time plus
the relay's figures_after_h, 72 h by default), where the relay publishes each campaign's
figures once, with noise, as a business would see them days later. Each business's privacy
budget (business_epsilon_30d) is set so that all of its campaigns get their figures: the
relay's default (1.0, five campaign reports in 30 days) or, for a busier business, what it
needs; the summary says what each one spent.

The summary: messages sent, delivered (counted by the clients), released, refused by reason
and expired (the relay's own database), lost and duplicated (both must be 0); delivery
latency p50 / p99 and throughput; spend, charges and rebates; the privacy budget each
business spent; each campaign's published estimates against the true counts (among the
reports that carry an outcome), and what shuffling adds to each report's epsilon; and the
privacy audit of `sealpost audit` run on the simulation's own recorded traffic (not run with
--relay). Exit status 1 if anything was lost, duplicated or misdelivered, or the audit failed.

With --relay, the relay's clock is real: campaigns go out when the simulated clock reaches
their time, so its rolling daily cap sees the whole week within seconds (expect daily_cap
refusals); its cap and privacy budget are its own, its figures come days after the run, and
its database is not ours: released, refused and expired copies are unknown (a copy still in
its person's mailbox, never stored, counts as lost). Reports go to the shuffler named by
SEALPOST_SHUFFLER_URL, else straight to that relay (which must allow it:
SEALPOST_RELAY_ALLOW_DIRECT_SIGNALS).
"""

EPILOG = """\
examples:
  sealpost sim                                  # 200 persons, 3 businesses, 8 campaigns
  sealpost sim --persons 1000 --json > sim.json
  sealpost sim --persons 50 --seed 7 --signals-off 0.2 --cap 3
  sealpost sim --levels all=0.5,chatted=0.2,weekly1=0.2,none=0.1
  sealpost sim --relay http://127.0.0.1:8700 --persons 100
  sealpost sim --persons 1000 --days 21 --campaigns 63 --accepts 0.8 --compare-quality
  sealpost sim sweep --epsilons 0.5,1,ln3,2 --sizes 100,1000,10000 --out results/
"""

SWEEP_DESCRIPTION = """\
Estimation error against epsilon and audience size. For each cell of the grid and each
trial, an audience is drawn from the simulator's behaviour profiles, every person's true
outcome (not_read, read, clicked, dismissed) goes through the devices' k-ary randomized
response at that epsilon per report (shared/signals.py `randomize`; the protocol's is ln 3),
the reports are tallied (`tally`), every tally gets the relay's central noise (discrete
Laplace at --central-epsilon, the relay's default for a campaign's interaction figures; 0
leaves it out; drawn from the seeded generator, so that a grid is reproducible), and the
relay's estimate is taken (`estimate`, with that noise's variance, as server/figures.py).
This is pure computation, with no relay and no clients, so many trials take seconds. Writes
OUT/sweep.csv (one row per cell: mean, RMS and 95th-percentile error in % of the audience,
the 95% interval's half-width, its coverage) and, when matplotlib is installed (pip install
-e '.[sim]'), OUT/sweep.png.

The shuffler's batch size B against central epsilon and estimation error: for each epsilon
and each B (--batches), the central epsilon of B reports of one campaign shuffled together
(amplification by shuffling, Feldman-McMillan-Talwar, delta 1e-6, as the shuffler states it;
at ln 3 it applies from about 700 reports) and the error of a campaign whose reports fill one
batch. Writes OUT/batches.csv.
"""

SWEEP_EPILOG = """\
examples:
  sealpost sim sweep                              # 6 epsilons x 4 sizes x 20 trials
  sealpost sim sweep --epsilons 0.5,ln3,2 --sizes 50,500,5000 --trials 50 --out sweep/
  sealpost sim sweep --json | jq '.rows[] | [.epsilon_per_report, .audience, .mean_abs_error_pct]'
"""


def register(sub: Any) -> None:
    from sealpost.sim.config import DEFAULT_LEVEL_MIX

    p = sub.add_parser(
        "sim",
        help="simulate a week of campaigns on real clients and a real relay",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--persons", type=int, default=200, help="simulated persons (default 200)")
    p.add_argument("--businesses", type=int, default=3, help="businesses (default 3)")
    p.add_argument("--campaigns", type=int, default=8, help="campaigns in the week (default 8)")
    p.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated world (default 1)")
    p.add_argument("--relay", metavar="URL", help="use this relay instead of one on loopback")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--keep", type=Path, metavar="DIR", help="copy the relay database and profiles")
    p.add_argument(
        "--workers",
        type=int,
        help="processes playing the persons' devices (default: none under 200 persons, "
        "else one a core, at most two, and more if one process could not keep its devices' "
        "files open: 4 for 10,000 at 20,000 open files; 0: all in this process)",
    )
    knobs = p.add_argument_group("knobs for researchers")
    knobs.add_argument(
        "--signals-off",
        type=float,
        default=0.05,
        metavar="SHARE",
        help="share of persons with interaction signals switched off: their reports say "
        "no_signal (default 0.05)",
    )
    knobs.add_argument(
        "--epsilon",
        help="gone: epsilon is the protocol's (ln 3 a report) on every device; "
        "`sim sweep --epsilons` shows other values; giving it is an error",
    )
    knobs.add_argument(
        "--k",
        type=int,
        help="gone: the relay no longer hides small figures below a threshold k, it publishes "
        "them once with noise; giving it is an error",
    )
    knobs.add_argument(
        "--cap", type=int, help="marketing messages per person per rolling 24 h (default 2)"
    )
    knobs.add_argument(
        "--levels",
        default=DEFAULT_LEVEL_MIX,
        help=f"marketing levels mix: all, chatted, none, weeklyN (default {DEFAULT_LEVEL_MIX})",
    )
    knobs.add_argument(
        "--spammy",
        type=int,
        metavar="N",
        help="how many of the businesses are spammy: they write to nearly everyone, and people "
        "dismiss, stop and block their marketing (default: 1 when there are two or more "
        "businesses)",
    )
    knobs.add_argument(
        "--accepts",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of each business's customers who accepted its messages before the run "
        "(default 0: businesses are strangers, and message requests let a stranger's first "
        "3 messages through); runs of weeks want e.g. 0.8",
    )
    knobs.add_argument(
        "--no-quality",
        dest="quality",
        action="store_false",
        help="the own relay computes templates' quality ratings but acts on none (no pause, "
        "no disable): what spam would do without the quality system",
    )
    knobs.add_argument(
        "--compare-quality",
        action="store_true",
        help="play the same seed twice, with the quality system and without, and set the "
        "businesses' reach and unwanted marketing side by side (twice the time)",
    )
    knobs.add_argument(
        "--figures-epsilon",
        type=float,
        metavar="EPS",
        help="epsilon of each campaign's published figures on the own relay (default 0.2); "
        "larger makes ratings move with fewer people, at a larger privacy cost",
    )
    knobs.add_argument(
        "--figures-after-h",
        type=int,
        metavar="H",
        help="hours after each send time that the own relay publishes its figures "
        "(default 72): ratings follow the figures, so sooner means quality acts sooner",
    )
    p.set_defaults(run=run)

    modes = p.add_subparsers(dest="sim_mode", metavar="[sweep]", title="mode (optional)")
    s = modes.add_parser(
        "sweep",
        help="estimation error over epsilons x audience sizes (CSV and PNG)",
        description=SWEEP_DESCRIPTION,
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "--epsilons",
        default="0.25,0.5,1,ln3,2,3",
        help="epsilons per report (k-ary randomized response), comma-separated",
    )
    s.add_argument("--sizes", default="50,200,1000,5000", help="audience sizes, comma-separated")
    s.add_argument("--trials", type=int, default=20, help="trials per cell (default 20)")
    s.add_argument(
        "--batches",
        default="20,100,500,1000,5000,20000",
        help="shuffler batch sizes B, comma-separated (central epsilon and error per B)",
    )
    s.add_argument(
        "--central-epsilon",
        type=float,
        default=None,
        help="epsilon of the relay's noise on the report tallies (default: the relay's "
        "figures_epsilon_interactions); 0 for randomized response alone",
    )
    s.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    s.add_argument("--out", type=Path, default=Path("sim-sweep"), help="output directory")
    s.add_argument("--json", action="store_true", help="print the rows as JSON")
    s.set_defaults(run=run_sweep_command)


def run(args: Any) -> int:
    from sealpost.commands.output import fail, print_json
    from sealpost.sim.config import EPSILON_GONE, K_GONE, OptionError, SimOptions, parse_levels

    if args.k is not None:
        return fail(K_GONE, 2)
    if args.epsilon is not None:
        return fail(EPSILON_GONE, 2)
    try:
        options = SimOptions(
            persons=args.persons,
            businesses=args.businesses,
            campaigns=args.campaigns,
            days=args.days,
            seed=args.seed,
            signals_off=args.signals_off,
            cap=args.cap,
            levels=parse_levels(args.levels),
            relay=args.relay,
            keep=args.keep,
            workers=args.workers,
            spammy=args.spammy,
            accepts=args.accepts,
            quality=args.quality,
            compare_quality=args.compare_quality,
            figures_epsilon=args.figures_epsilon,
            figures_after_h=args.figures_after_h,
        ).validate()
    except OptionError as exc:
        return fail(str(exc), 2)
    # The relay and client code load only once the knobs are good.
    from sealpost.sim.progress import Progress
    from sealpost.sim.runner import run_compared, run_sim
    from sealpost.sim.summary import render, summarize, summarize_compared

    try:
        if options.compare_quality:
            data = summarize_compared(*run_compared(options, Progress()))
        else:
            data = summarize(run_sim(options, Progress()))
    except RuntimeError as exc:  # e.g. no relay at --relay
        return fail(str(exc))
    if args.json:
        print_json(data)
    else:
        print(render(data))
    return 0 if data["passed"] else 1


def run_sweep_command(args: Any) -> int:
    from sealpost.commands.output import fail, print_json
    from sealpost.sim.config import OptionError, parse_epsilon
    from sealpost.sim.progress import Progress
    from sealpost.sim.sweep import SweepOptions, run_sweep

    try:
        options = SweepOptions(
            epsilons=[parse_epsilon(e) for e in args.epsilons.split(",") if e.strip()],
            sizes=[int(n) for n in args.sizes.split(",") if n.strip()],
            trials=args.trials,
            seed=args.seed,
            out=args.out,
            batches=[int(b) for b in args.batches.split(",") if b.strip()],
        )
        if args.central_epsilon is not None:
            options.central_epsilon = args.central_epsilon
        options.validate()
    except (OptionError, ValueError) as exc:
        return fail(str(exc), 2)
    progress = Progress()
    progress.phase("sweep")
    result = run_sweep(options, lambda i, n: progress.update(cells=f"{i}/{n}"))
    progress.done()
    if args.json:
        print_json(result.to_json())
        return 0
    central = options.central_epsilon
    print(
        f"with the relay's noise at epsilon {central:g} on the tallies"
        if central
        else "randomized response alone (no central noise)"
    )
    print("epsilon per report  audience  mean |error| %  p95 %  95% CI +/- %  coverage")
    for row in result.rows:
        print(
            f"{row['epsilon_per_report']:18.3f}  {row['audience']:8,}  "
            f"{row['mean_abs_error_pct']:14.2f}  {row['p95_abs_error_pct']:5.2f}  "
            f"{row['ci95_half_width_pct']:12.2f}  {row['coverage_95']:8.3f}"
        )
    print("\nshuffler batch B: central epsilon of B shuffled reports of one campaign, and the")
    print("error of a campaign that fills one batch")
    print(
        "eps/report   batch B  central eps  amplified  bound from B  mean |error| %  95% CI +/- %"
    )
    for row in result.batch_rows:
        print(
            f"{row['epsilon_per_report']:10.3f}  {row['batch']:8,}  "
            f"{row['shuffled_central_epsilon']:11.3f}  {'yes' if row['amplified'] else 'no':>9}  "
            f"{row['min_batch_for_bound']:12,}  {row['mean_abs_error_pct']:14.2f}  "
            f"{row['ci95_half_width_pct']:12.2f}"
        )
    wrote = [result.csv_path, result.batches_path, result.png_path]
    print("\nwrote " + ", ".join(str(p) for p in wrote if p))
    if result.note:
        print(result.note)
    return 0
