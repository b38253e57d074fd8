"""The delivery benchmark, small: a real relay process, lean clients on open streams that ack
as the real client does, and every figure the full run reports."""

from sealpost.benchmarks.delivery import delivery


def test_the_delivery_benchmark_runs_small_and_its_clients_ack_everything():
    result = delivery("sqlite", clients=20, messages=400, ack_delay_s=0.3)
    assert (result["clients"], result["messages"]) == (20, 400)
    assert result["messages_per_s"] > 0 and result["sustained_messages_per_s"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["floor_rows_per_s"] > 0
    # Everything received before the latency phase was acked by the clients' own rule
    # (ack_delay_s after the first unacked message, or at once at 100 waiting).
    assert result["received"] > 400
    assert result["acked"] == result["received"]
