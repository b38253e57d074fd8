"""A person's marketing choices, enforced by the relay."""

from typing import Annotated

from fastapi import APIRouter, Path, Request

from server import preferences
from server.auth import CurrentAccount, DbSession
from server.transactions import TransactionalRoute
from shared.api import Preferences, SetLevel
from shared.identifiers import HANDLE_PATTERN

router = APIRouter(prefix="/v1/prefs", tags=["preferences"], route_class=TransactionalRoute)

BusinessPath = Annotated[str, Path(pattern=HANDLE_PATTERN)]


@router.get("")
def read(account: CurrentAccount, session: DbSession) -> Preferences:
    return preferences.read(session, account.handle)


@router.put("/level")
def set_level(body: SetLevel, account: CurrentAccount, session: DbSession) -> Preferences:
    """all | chatted (only businesses I wrote to) | weekly (at most N a week) | none."""
    return preferences.set_level(session, account, body)


@router.put("/blocked/{business}")
def block(business: BusinessPath, account: CurrentAccount, session: DbSession) -> Preferences:
    """Nothing from this account reaches me, marketing or not."""
    return preferences.set_choice(session, account, business, "blocked", True)


@router.delete("/blocked/{business}")
def unblock(business: BusinessPath, account: CurrentAccount, session: DbSession) -> Preferences:
    return preferences.set_choice(session, account, business, "blocked", False)


@router.put("/accepted/{peer}")
def accept(
    peer: BusinessPath, account: CurrentAccount, session: DbSession, request: Request
) -> Preferences:
    """Accept this account's message request: its messages are no longer held back."""
    now = request.app.state.clock.now_ms()
    return preferences.set_accepted(session, account, peer, True, now)


@router.delete("/accepted/{peer}")
def unaccept(
    peer: BusinessPath, account: CurrentAccount, session: DbSession, request: Request
) -> Preferences:
    """This account is a stranger again: a few more messages, then it waits for acceptance."""
    now = request.app.state.clock.now_ms()
    return preferences.set_accepted(session, account, peer, False, now)


@router.put("/promotions-stopped/{business}")
def stop_promotions(
    business: BusinessPath, account: CurrentAccount, session: DbSession
) -> Preferences:
    """No marketing from this business; its utility messages still arrive."""
    return preferences.set_choice(session, account, business, "promotions_stopped", True)


@router.delete("/promotions-stopped/{business}")
def resume_promotions(
    business: BusinessPath, account: CurrentAccount, session: DbSession
) -> Preferences:
    return preferences.set_choice(session, account, business, "promotions_stopped", False)
