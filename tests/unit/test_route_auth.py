"""Every route that takes a caller verifies it: the relay refuses to start otherwise."""

from fastapi import APIRouter, FastAPI

from server.auth import CurrentAccount
from server.transactions import TransactionalRoute, caller_routes, unverified_routes


def test_a_caller_under_a_plain_router_is_found_and_the_relay_would_refuse_it():
    plain, checked = APIRouter(), APIRouter(route_class=TransactionalRoute)

    @plain.get("/v1/oops")
    def oops(account: CurrentAccount) -> str:  # would get an unverified Caller
        return account.handle

    @checked.get("/v1/fine")
    def fine(account: CurrentAccount) -> str:
        return account.handle

    @plain.get("/v1/public")
    def public() -> str:  # no caller: nothing to verify
        return "ok"

    app = FastAPI()
    app.include_router(plain)
    app.include_router(checked)
    assert unverified_routes(app.routes) == ["['GET'] /v1/oops"]


def test_the_relays_own_routes_all_verify_their_callers(tmp_path):
    from server.app import create_app
    from server.settings import RelaySettings

    app = create_app(RelaySettings(db=f"sqlite:///{tmp_path}/relay.db", auto_migrate=True))
    assert len(caller_routes(app.routes)) >= 20  # the signed endpoints, all found
    assert unverified_routes(app.routes) == []
