"""Money: top-ups, reservations, charges, refunds and rebates, each written to the ledger.

A copy is charged when it is released at its send time, whatever happens to it next, so no
charge depends on a person's choices or presence. Copies that people refused or never took
are paid back as one rebate per campaign, computed from its published, noisy figures
(server/figures.py).

Every function runs inside the caller's transaction and locks the rows it changes (``FOR
UPDATE`` on PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers), so
concurrent campaigns and deliveries can never spend a unit that is not there.
Invariant per business: ``available + reserved + spent == topped_up``.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, select

from server.errors import ApiError
from server.models import Balance, Campaign, LedgerEntry


@dataclass
class Movement:
    """Money to charge or refund for one campaign, summed over its messages."""

    business: str
    amount: int = 0
    messages: int = 0


def locked_balance(session: Session, business: str) -> Balance:
    balance = session.exec(
        select(Balance).where(Balance.business == business).with_for_update()
    ).first()
    if balance is None:
        balance = Balance(business=business)
        session.add(balance)
        session.flush()
    return balance


def locked_campaign(session: Session, campaign_id: str) -> Campaign | None:
    return session.exec(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update()
    ).first()


def _log(
    session: Session,
    business: str,
    kind: str,
    amount: int,
    now_ms: int,
    *,
    campaign_id: str | None = None,
    messages: int = 0,
    note: str = "",
) -> None:
    session.add(
        LedgerEntry(
            business=business,
            campaign_id=campaign_id,
            kind=kind,
            amount=amount,
            messages=messages,
            note=note,
            at=now_ms,
        )
    )


# What a business may have topped up in all. Every other sum of money (available, reserved,
# spent, refunded) is part of it, so each stays within a 64-bit column with room to spare.
MAX_TOPPED_UP = 10**18


def top_up(session: Session, business: str, amount: int, now_ms: int) -> Balance:
    balance = locked_balance(session, business)
    if balance.topped_up + amount > MAX_TOPPED_UP:
        raise ApiError(
            422,
            "balance_limit",
            f"A business may top up at most {MAX_TOPPED_UP:,} micro-units in all; this one "
            f"has {balance.topped_up:,}, so at most {MAX_TOPPED_UP - balance.topped_up:,} more.",
        )
    balance.available += amount
    balance.topped_up += amount
    _log(session, business, "topup", amount, now_ms)
    return balance


def reserve(
    session: Session, campaign: Campaign, prices: list[int], now_ms: int
) -> tuple[int, str]:
    """Reserve money for as many leading messages as fit; returns (count, why the rest didn't).

    The campaign row must be locked by the caller (``locked_campaign``). When the campaign's
    own budget is what runs out, the campaign stops for good and says so.
    """
    balance = locked_balance(session, campaign.business)
    room_campaign = campaign.budget - campaign.reserved - campaign.spent
    total = count = 0
    why = ""
    for price in prices:
        if total + price > room_campaign:
            why = "budget_exhausted"
            break
        if total + price > balance.available:
            why = "insufficient_balance"
            break
        total += price
        count += 1
    if total:
        balance.available -= total
        balance.reserved += total
        campaign.reserved += total
        _log(
            session,
            campaign.business,
            "reserve",
            total,
            now_ms,
            campaign_id=campaign.id,
            messages=count,
        )
    if why == "budget_exhausted" and campaign.stop_reason is None:
        campaign.stop_reason = (
            f"budget exhausted: {campaign.accepted + count} messages scheduled, the rest "
            "refused; raise the budget with a new campaign"
        )
    return count, why


def _settle(
    session: Session, movements: dict[str, Movement], now_ms: int, kind: str, note: str
) -> None:
    for campaign_id, move in sorted(movements.items()):
        if not move.amount and not move.messages:
            continue
        balance = locked_balance(session, move.business)
        campaign = locked_campaign(session, campaign_id)
        balance.reserved -= move.amount
        if campaign is not None:
            campaign.reserved -= move.amount
        if kind == "charge":
            balance.spent += move.amount
            if campaign is not None:
                campaign.spent += move.amount
                campaign.delivered += move.messages
        else:
            balance.available += move.amount
            if campaign is not None:
                campaign.refunded += move.amount
        if move.amount:
            _log(
                session,
                move.business,
                kind,
                move.amount,
                now_ms,
                campaign_id=campaign_id,
                messages=move.messages,
                note=note,
            )


def charge(session: Session, movements: dict[str, Movement], now_ms: int) -> None:
    """Copies released at their send time: their reservation becomes spend, whatever the
    person's choices do with them (so a charge says nothing about anyone; see rebate)."""
    _settle(session, movements, now_ms, "charge", "sent")


def refund(session: Session, movements: dict[str, Movement], now_ms: int, why: str) -> None:
    """Copies never released (cancelled, or expired before their send time): their
    reservation becomes available again."""
    _settle(session, movements, now_ms, "refund", why)


def settle_release(
    session: Session, copies: Iterable[tuple[tuple[str | None, str, int], str | None]], now_ms: int
) -> None:
    """Bill copies at their send time, given ``((campaign_id, business, price), outcome)``:
    released into a mailbox (None) or refused by a choice, each is charged alike, so that no
    charge tells a business what a person chose; one that expired before its send time was
    never sent and is refunded."""
    charged: list[tuple[str | None, str, int]] = []
    unsent: list[tuple[str | None, str, int]] = []
    for paid, outcome in copies:
        (unsent if outcome == "expired" else charged).append(paid)
    if charged:
        charge(session, movements_of(charged), now_ms)
    if unsent:
        refund(session, movements_of(unsent), now_ms, "expired")


def rebate(session: Session, campaign: Campaign, amount: int, now_ms: int, note: str) -> None:
    """Give back part of what a campaign spent (for copies its published, noisy figures say
    were not delivered): spent money becomes available again. The campaign row is locked."""
    amount = min(amount, campaign.spent)
    if amount <= 0:
        return
    balance = locked_balance(session, campaign.business)
    balance.spent -= amount
    balance.available += amount
    campaign.spent -= amount
    campaign.refunded += amount
    _log(session, campaign.business, "rebate", amount, now_ms, campaign_id=campaign.id, note=note)


def movements_of(rows: Iterable[tuple[str | None, str, int]]) -> dict[str, Movement]:
    """Sum ``(campaign_id, business, price)`` rows per campaign."""
    moves: dict[str, Movement] = defaultdict(lambda: Movement(business=""))
    for campaign_id, business, price in rows:
        if campaign_id is None:
            continue
        move = moves[campaign_id]
        move.business = business
        move.amount += price
        move.messages += 1
    return dict(moves)
