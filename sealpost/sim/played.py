"""What one simulated run observed, before it is audited and summed up."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from client.business.campaigns import CampaignRun
from sealpost.audit.world import Redemption
from sealpost.sim.devices import DeliveryLog
from sealpost.sim.population import SimPlan
from sealpost.sim.relay import Copy
from server.settings import RelaySettings
from shared.api import BudgetView, CampaignReport


@dataclass
class Played:
    """Everything one run observed, before it is summed up."""

    plan: SimPlan
    relay_url: str
    own_relay: bool
    campaign_ids: dict[str, str] = field(default_factory=dict)  # label -> campaign id
    runs: dict[str, CampaignRun] = field(default_factory=dict)  # label -> submission outcome
    released_wall: dict[str, float] = field(default_factory=dict)  # campaign id -> unix s
    # campaign id -> the final report, with its figures once the relay published them
    reports: dict[str, CampaignReport] = field(default_factory=dict)
    budgets: dict[str, BudgetView] = field(default_factory=dict)  # business -> final
    log: DeliveryLog = field(default_factory=DeliveryLog)
    chats_sent: list[tuple[str, str]] = field(default_factory=list)  # (recipient, msg id)
    chats_failed: int = 0
    # campaign id -> report value -> reports sent: per outcome (shared.signals.OUTCOMES) the
    # people who had it among the reports that carried one, and under no_signal the reports
    # that carried none (signals off, or the device's budget spent)
    true_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    reporters: Counter[str] = field(default_factory=Counter)  # campaign id -> reports sent
    redemptions: list[Redemption] = field(default_factory=list)
    reports_refused: int = 0
    tokens_missing: list[tuple[str, str]] = field(default_factory=list)  # (handle, campaign)
    message_ids: set[str] = field(default_factory=set)  # in every simulated store
    copies: list[Copy] | None = None  # own relay: its record of every campaign copy
    # An existing relay: (person, msg id, campaign id) still waiting in the persons' own
    # mailboxes at the end, as each person's client sees it.
    waiting: list[tuple[str, str, str | None]] | None = None
    relay_settings: RelaySettings | None = None  # own relay: how it was configured
    figures_published_ms: int | None = None  # own relay: virtual time the last were out
    anomalies: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # campaign label -> why the relay refused to open it (its template paused or disabled)
    refused_campaigns: dict[str, str] = field(default_factory=dict)
    # business label -> what it was told of its quality at the end of each simulated day
    quality_days: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    week_wall_s: float = 0.0

    def label_of(self, campaign_id: str) -> str:
        return next(label for label, cid in self.campaign_ids.items() if cid == campaign_id)
