"""A person's marketing choices: read and change them. Enforcement is in choices.py."""

from sqlmodel import Session, col, select

from server import message_requests
from server.errors import ApiError
from server.known_accounts import KnownAccount
from server.models import Account, BusinessChoice, Preference
from shared.api import Preferences, SetLevel


def read(session: Session, person: str) -> Preferences:
    pref = session.get(Preference, person)
    rows = list(
        session.exec(
            select(BusinessChoice)
            .where(BusinessChoice.person == person)
            .order_by(col(BusinessChoice.business))
        )
    )
    return Preferences(
        level=pref.level if pref else "all",  # type: ignore[arg-type]
        weekly_limit=pref.weekly_limit if pref else None,
        blocked=[r.business for r in rows if r.blocked],
        promotions_stopped=[r.business for r in rows if r.promotions_stopped],
        accepted=message_requests.accepted_by(session, person),
    )


def set_level(session: Session, person: KnownAccount, body: SetLevel) -> Preferences:
    _persons_only(person)
    pref = session.get(Preference, person.handle) or Preference(person=person.handle)
    pref.level, pref.weekly_limit = body.level, body.weekly_limit
    session.add(pref)
    session.commit()
    return read(session, person.handle)


def set_choice(
    session: Session, person: KnownAccount, business: str, field: str, value: bool
) -> Preferences:
    """Set ``blocked`` or ``promotions_stopped`` for one business."""
    _persons_only(person)
    target = session.get(Account, business)
    if target is None:
        raise ApiError(404, "unknown_handle", f"No account '{business}' on this relay.")
    choice = session.get(BusinessChoice, (person.handle, business))
    if choice is None:
        choice = BusinessChoice(person=person.handle, business=business)
    setattr(choice, field, value)
    session.add(choice)
    session.commit()
    return read(session, person.handle)


def set_accepted(
    session: Session, person: KnownAccount, peer: str, accepted: bool, now_ms: int
) -> Preferences:
    """Accept ``peer``'s message request, or make it a stranger again."""
    _persons_only(person)
    if session.get(Account, peer) is None:
        raise ApiError(404, "unknown_handle", f"No account '{peer}' on this relay.")
    if accepted:
        message_requests.accept(session, person.handle, [peer], now_ms)
    else:
        message_requests.withdraw(session, person.handle, peer)
    session.commit()
    return read(session, person.handle)


def _persons_only(account: KnownAccount) -> None:
    if account.kind != "person":
        raise ApiError(403, "persons_only", "Marketing choices belong to person accounts.")
