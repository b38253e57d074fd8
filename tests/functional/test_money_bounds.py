"""Money stays within a 64-bit column however often a business tops up (#17 item 3: every
integer bounded, 422, never 500). Each top-up is bounded by its schema (10^15); their sum
was not, and past 2^63 - 1 micro-units every request touching the balance failed with 500."""

from sqlalchemy import text

from server.billing import MAX_TOPPED_UP
from server.embedded import EmbeddedRelay
from shared.version import MAX_INT64
from tests.conftest import PersonFactory
from tests.helpers import assert_error, signed


async def test_top_ups_past_the_balance_limit_are_refused_422(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory
) -> None:
    shop = await make_account("shop", sqlite_relay, business=True)
    await shop.api.top_up(1_000)
    # As if it had topped up 10^15 thousands of times (9,224 of them reach 2^63).
    with sqlite_relay.app.state.engine.begin() as conn:
        conn.execute(
            text("UPDATE relay_balance SET available = :v, topped_up = :v WHERE business = 'shop'"),
            {"v": MAX_TOPPED_UP - 10},
        )
    keys, handle = shop.profile.keys, shop.profile.handle
    answer = signed(sqlite_relay.url, keys, handle, "POST", "/v1/budget/top-up", {"amount": 10**15})
    assert_error(answer, 422, "balance_limit", f"{10:,} more")
    fits = signed(sqlite_relay.url, keys, handle, "POST", "/v1/budget/top-up", {"amount": 10})
    assert fits.status_code == 200, fits.text
    assert fits.json()["topped_up"] == MAX_TOPPED_UP
    # Even from a sum no top-up could reach any more, the answer is a 422, not the 500
    # that 2^63 gave.
    with sqlite_relay.app.state.engine.begin() as conn:
        conn.execute(
            text("UPDATE relay_balance SET topped_up = :v WHERE business = 'shop'"),
            {"v": MAX_INT64 - 10},
        )
    answer = signed(sqlite_relay.url, keys, handle, "POST", "/v1/budget/top-up", {"amount": 10**15})
    assert_error(answer, 422, "balance_limit")
