"""Staged rollout: marketing messages opened to beta testers, then to a growing share of
businesses chosen by a stable bucket of their handle; the others are told plainly that it is
not available to them yet. The operator's command writes the relay's database; a running relay
sees the change at once."""

import asyncio
from pathlib import Path

import pytest

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.relay_api import RelayError
from server import rollout
from server.embedded import EmbeddedRelay
from shared.templates import TemplateDraft
from tests.conftest import relay_settings
from tests.helpers import run_cli

OFFER = TemplateDraft(
    name="offer", category="marketing", body="Hi {{name}}, 20% off today.", examples={"name": "Ana"}
)
RECEIPT = TemplateDraft(
    name="receipt",
    category="utility",
    body="Order {{order}} has shipped.",
    examples={"order": "A-1"},
    variables={"order": {"type": "code", "charset": "alphanumeric_dash"}},
)


def _handles_in(share: int, want: bool, n: int) -> list[str]:
    """``n`` business handles whose bucket is (``want``) or is not below ``share``."""
    found = []
    i = 0
    while len(found) < n:
        handle = f"shop{i:03d}"
        if (rollout.bucket("marketing", handle) < share) == want:
            found.append(handle)
        i += 1
    return found


async def _campaign(shop, template, person: str):  # type: ignore[no-untyped-def]
    audience = Audience(rows=[AudienceRow(line=2, handle=person, variables={"name": "Ana"})])
    return await run_campaign(
        shop.api, shop.profile.keys, shop.profile.handle, template, audience, budget=100_000
    )


def test_buckets_are_stable_spread_and_per_feature():
    handles = [f"acct{i:04d}" for i in range(4000)]
    buckets = [rollout.bucket("marketing", h) for h in handles]
    assert buckets == [rollout.bucket("marketing", h) for h in handles]  # stable
    assert all(0 <= b < 100 for b in buckets)
    share = sum(b < 10 for b in buckets) / len(buckets)
    assert 0.08 < share < 0.12  # 10 % of accounts at 10 %
    # Widening never drops anyone who had it: the 10 % are all within the 30 %.
    assert all(b < 30 for b in buckets if b < 10)
    assert [rollout.bucket("other", h) for h in handles] != buckets


async def test_marketing_reaches_beta_testers_then_a_share_then_everyone(
    db_url, make_account, home: Path, tmp_path: Path
):
    settings = relay_settings(db_url)
    with EmbeddedRelay(settings) as relay:
        [inside] = _handles_in(10, True, 1)
        [outside, tester] = _handles_in(10, False, 2)
        shops = {}
        for handle in (inside, outside, tester):
            shops[handle] = await make_account(handle, relay, business=True)
            await shops[handle].api.top_up(1_000_000)
        await make_account("ann", relay)

        operator = tmp_path / "operator"
        shown = run_cli(operator, "relay", "rollout", "marketing", "10%", "--db", db_url).stdout
        assert "marketing: 10 % of accounts" in shown
        run_cli(operator, "relay", "rollout", "marketing", "--beta", tester, "--db", db_url)

        for handle in (inside, tester):  # in the 10 %, or a beta tester
            template = await shops[handle].api.register_template(OFFER)
            run = await _campaign(shops[handle], template, "ann")
            assert run.campaign.accepted == 1

        shop = shops[outside]
        template = await shop.api.register_template(OFFER)  # templates may be prepared
        with pytest.raises(RelayError) as err:
            await _campaign(shop, template, "ann")
        assert err.value.status == 403 and err.value.code == "not_available_yet"
        assert "not available to your account yet" in err.value.message
        assert "10 %" in err.value.message
        # Utility messages are not part of it.
        receipt = await shop.api.register_template(RECEIPT)
        assert receipt.priced_as == "utility"
        features = await shop.api.request("GET", "/v1/features")
        assert features["marketing"]["available"] is False
        assert "not available to your account yet" in features["marketing"]["note"]

        # The console says so too, before the business tries.
        asked = await asyncio.to_thread(run_cli, home, "business", "--profile", outside, "features")
        said = asked.stdout
        assert said.startswith("marketing: not yet. Marketing messages are not available")
        run_cli(operator, "relay", "rollout", "marketing", "100%", "--db", db_url)
        run = await _campaign(shop, template, "ann")
        assert run.campaign.accepted == 1
        assert (await shop.api.request("GET", "/v1/features"))["marketing"]["available"]


def test_the_rollout_command_teaches_and_refuses_nonsense(sqlite_url, tmp_path: Path):
    home = tmp_path / "operator"
    with EmbeddedRelay(relay_settings(sqlite_url)):
        pass  # a migrated database
    shown = run_cli(home, "relay", "rollout", "--db", sqlite_url).stdout
    assert "marketing: every account (100 %)" in shown  # the default: on for everyone
    bad = run_cli(home, "relay", "rollout", "marketing", "150%", "--db", sqlite_url, check=False)
    assert bad.returncode == 2 and "between 0 % and 100 %" in bad.stderr
    bad = run_cli(home, "relay", "rollout", "telepathy", "10%", "--db", sqlite_url, check=False)
    assert bad.returncode == 2 and "marketing" in bad.stderr
    helped = run_cli(home, "relay", "rollout", "--help", check=False).stdout
    assert "--beta" in helped and "stable" in helped
