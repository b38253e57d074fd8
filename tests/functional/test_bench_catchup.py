"""The client catch-up benchmark at a small size: its report, and every message stored."""

from sealpost.benchmarks.catchup import catchup
from sealpost.commands.bench import _line


def test_catchup_bench_stores_every_message_and_reports_its_floor() -> None:
    # 300: a first page opened in worker processes, then a short one opened in-process.
    r = catchup(messages=300, repeat=1)
    assert {"name", "wall_s", "floor_s", "ratio", "target_ratio", "ok", "messages_per_s"} <= set(r)
    assert r["name"] == "client_catchup"
    assert r["messages"] == r["stored"] == 300  # all verified, and the mailbox left empty
    assert r["template_messages"] == 3  # one in a hundred, each from a campaign of its own
    assert r["wall_s"] > 0 and r["floor_s"] > 0
    # The ratio comes from the unrounded times: the rounded ones give it to within a few %.
    assert abs(r["ratio"] - r["wall_s"] / r["floor_s"]) <= 0.05 * r["ratio"]
    assert r["target_ratio"] == 1.5
    assert (r["runs"], len(r["wall_runs_s"]), len(r["floor_runs_s"])) == (1, 1, 1)
    assert r["ok"] == (r["ratio"] <= r["target_ratio"])
    line = _line(r)
    assert line.startswith("client_catchup:") and "floor" in line and "target <= 1.5" in line
