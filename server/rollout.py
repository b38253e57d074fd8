"""Staged rollout of platform features: beta testers first, then a growing share of accounts.

An account has a feature when it is one of the feature's beta testers, or when its bucket (a
number 0-99 drawn from SHA-256 of the feature and the handle) is below the feature's share.
Buckets are stable, so widening a rollout from 10 % to 30 % keeps everyone who had it. A
feature with no rollout row is open to every account: a relay restricts one only when its
operator says so (``sealpost relay rollout``).

Features: ``marketing``, a business's marketing campaigns (a campaign whose template is, or
is priced as, marketing). Utility and authentication messages are never held back.
"""

import hashlib
from dataclasses import dataclass

from sqlmodel import Session, select

from server.errors import ApiError
from server.models import Rollout, RolloutBeta

FEATURES = {"marketing": "marketing messages"}


def bucket(feature: str, handle: str) -> int:
    """The account's stable place, 0-99, in the feature's rollout."""
    digest = hashlib.sha256(f"sealpost-rollout\n{feature}\n{handle}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


@dataclass(frozen=True)
class RolloutState:
    """How far one feature is open."""

    feature: str
    percent: int
    beta: tuple[str, ...]

    def has(self, handle: str) -> bool:
        return handle in self.beta or bucket(self.feature, handle) < self.percent

    def describe(self) -> str:
        """``marketing: 10 % of accounts, and 2 beta testers (acme, shop)``."""
        share = "every account (100 %)" if self.percent >= 100 else f"{self.percent} % of accounts"
        testers = (
            f", and {len(self.beta)} beta tester(s): {', '.join(self.beta)}" if self.beta else ""
        )
        return f"{self.feature}: {share}{testers}"


def state(session: Session, feature: str) -> RolloutState:
    row = session.get(Rollout, feature)
    beta = session.exec(
        select(RolloutBeta.handle)
        .where(RolloutBeta.feature == feature)
        .order_by(RolloutBeta.handle)
    )
    return RolloutState(feature, 100 if row is None else row.percent, tuple(beta))


def unavailable_note(found: RolloutState) -> str:
    """What an account without the feature is told."""
    what = FEATURES[found.feature]
    return (
        f"{what[0].upper()}{what[1:]} are not available to your account yet: the platform is "
        f"opening them in stages (now to {found.percent} % of accounts and its beta testers). "
        "Utility and authentication messages are not affected; ask the platform's operator to "
        "join the beta."
    )


def require(session: Session, feature: str, handle: str) -> None:
    """Raise 403 ``not_available_yet`` unless ``handle`` has ``feature``."""
    found = state(session, feature)
    if not found.has(handle):
        raise ApiError(403, "not_available_yet", unavailable_note(found))


def set_share(session: Session, feature: str, percent: int, now_ms: int) -> None:
    row = session.get(Rollout, feature)
    if row is None:
        session.add(Rollout(feature=feature, percent=percent, updated_at=now_ms))
    else:
        row.percent, row.updated_at = percent, now_ms


def set_beta(session: Session, feature: str, handle: str, on: bool) -> None:
    row = session.get(RolloutBeta, (feature, handle))
    if on and row is None:
        session.add(RolloutBeta(feature=feature, handle=handle))
    elif not on and row is not None:
        session.delete(row)
