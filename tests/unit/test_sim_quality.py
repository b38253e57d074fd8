"""`sealpost sim --compare-quality`'s verdict: a spammy business's reach must fall by at
least half, a welcome business must keep at least 95 % of its own."""

from typing import Any

from sealpost.sim.quality import compare, render_comparison


def _side(reach: dict[str, tuple[str, int]]) -> dict[str, Any]:
    return {
        "businesses": {
            label: {
                "kind": kind,
                "reach": n,
                "unwanted": {"dismissed_true": n // 2, "turned_away_true": n // 2},
                "campaigns_refused": {},
            }
            for label, (kind, n) in reach.items()
        },
        "unwanted": {},
    }


def test_the_claims_hold_only_when_spam_halves_and_welcome_keeps_its_reach():
    without = _side({"acme": ("welcome", 1000), "brio": ("spammy", 4000)})
    good = compare(_side({"acme": ("welcome", 960), "brio": ("spammy", 1900)}), without)
    assert good["claims"]["hold"]
    assert good["businesses"]["brio"]["reach_ratio"] == 0.475
    spam_kept = compare(_side({"acme": ("welcome", 1000), "brio": ("spammy", 2100)}), without)
    assert not spam_kept["claims"]["hold"] and spam_kept["businesses"]["brio"]["holds"] is False
    welcome_hurt = compare(_side({"acme": ("welcome", 940), "brio": ("spammy", 100)}), without)
    assert not welcome_hurt["claims"]["hold"]
    assert "DO NOT HOLD" in "\n".join(render_comparison(welcome_hurt))
