"""Token buckets keyed by anyone's address cannot grow without end."""

from server.ratelimit import TokenBuckets


def test_buckets_that_refilled_are_forgotten_past_the_cap() -> None:
    buckets = TokenBuckets(rate_per_s=0.001, burst=5, max_keys=10)
    assert buckets.take("busy", cost=5) == 0  # empty now, and for a long while
    for n in range(9):
        buckets.take(f"idle{n}", cost=0)  # full: the same as never seen
    assert len(buckets._buckets) == 10
    buckets.take("newcomer")
    assert set(buckets._buckets) == {"busy", "newcomer"}
    assert buckets.take("busy") > 0  # still remembered as empty


def test_buckets_in_use_are_kept_and_sweeps_get_rarer() -> None:
    buckets = TokenBuckets(rate_per_s=0.001, burst=1, max_keys=4)
    for n in range(20):
        assert buckets.take(f"a{n}") == 0
    assert len(buckets._buckets) == 20  # none refilled: none forgotten
    assert all(buckets.take(f"a{n}") > 0 for n in range(20))
