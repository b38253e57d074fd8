"""Each business's privacy budget: what its published figures may cost over any 30 days.

Every release of figures about people (a campaign's counts and interaction estimates) is
ε-differentially private for each person in it. A business may put one person in every
campaign it runs, so the costs add up per business: the accountant keeps the releases of the
last 30 days and lets a new one through only while the sum stays within the budget. Once the
budget is spent, figures wait (status ``withheld``) until old releases lapse, and the report
says until when. ε is counted in millionths so the sums are exact.
"""

from sqlalchemy import func
from sqlmodel import Session, col, select

from server.models import PrivacySpend
from shared.api import PrivacyBudget

WINDOW_MS = 30 * 86_400_000
MICRO = 1_000_000


def to_micro(epsilon: float) -> int:
    return round(epsilon * MICRO)


def spent_micro(session: Session, business: str, now_ms: int) -> int:
    """ε spent by ``business`` in the 30 days up to ``now_ms``, in millionths."""
    total = session.exec(
        select(func.coalesce(func.sum(PrivacySpend.micro_epsilon), 0)).where(
            PrivacySpend.business == business, PrivacySpend.at > now_ms - WINDOW_MS
        )
    ).one()
    return int(total)


def renewal(
    session: Session, business: str, need_micro: int, budget_micro: int, now_ms: int
) -> int:
    """The earliest time at which ``need_micro`` more fits in the budget."""
    rows = list(
        session.exec(
            select(PrivacySpend.at, PrivacySpend.micro_epsilon)
            .where(PrivacySpend.business == business, PrivacySpend.at > now_ms - WINDOW_MS)
            .order_by(col(PrivacySpend.at))
        )
    )
    spent = sum(micro for _, micro in rows)
    for at, micro in rows:
        if spent + need_micro <= budget_micro:
            break
        spent -= micro
        now_ms = at + WINDOW_MS
    return now_ms


def try_spend(
    session: Session,
    business: str,
    campaign_id: str,
    epsilon: float,
    budget: float,
    now_ms: int,
) -> bool:
    """Charge ``epsilon`` to the business if it fits in its 30-day budget; False if not.
    The caller holds the business's balance row locked, so two releases cannot both fit."""
    need = to_micro(epsilon)
    if spent_micro(session, business, now_ms) + need > to_micro(budget):
        return False
    session.add(
        PrivacySpend(business=business, campaign_id=campaign_id, micro_epsilon=need, at=now_ms)
    )
    session.flush()
    return True


def view(
    session: Session, business: str, budget: float, per_campaign: float, now_ms: int
) -> PrivacyBudget:
    """The budget as the business sees it (it depends only on what was released to it)."""
    spent = spent_micro(session, business, now_ms)
    remaining = max(0, to_micro(budget) - spent)
    first = session.exec(
        select(func.min(PrivacySpend.at)).where(
            PrivacySpend.business == business, PrivacySpend.at > now_ms - WINDOW_MS
        )
    ).one()
    return PrivacyBudget(
        epsilon_30d=budget,
        spent_30d=spent / MICRO,
        remaining=remaining / MICRO,
        per_campaign=per_campaign,
        campaigns_left=remaining // max(1, to_micro(per_campaign)),
        renews_at=None if first is None else int(first) + WINDOW_MS,
    )
