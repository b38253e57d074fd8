"""The privacy audit of a simulated run: the audit's checks on the run's own traffic.

On its own relay the simulation records every request exactly as the relay received it (the
audit's recorder), so once the week is over the seven checks of ``sealpost audit`` run on
that record and on a dump of everything the relay kept: canaries (the customers' names,
codes and phone numbers in every campaign copy, the chat texts), the anonymous channel,
token unlinkability, declared schemas, counting once, no exact figure about people in what
businesses saw, and the published estimates against the truth. On an existing relay nothing
is recorded, and the audit is reported as not run.
"""

from dataclasses import dataclass, field
from typing import Any

from sealpost.audit.checks import Check
from sealpost.audit.recorder import Exchange
from sealpost.audit.runner import probe_running_relay, run_checks, traffic_summary
from sealpost.audit.storage import StorageDump, read_files
from sealpost.audit.world import WorldResult
from sealpost.sim.analytics import business_figures
from sealpost.sim.played import Played
from sealpost.sim.relay import OwnRelay


@dataclass
class PrivacyAudit:
    run: bool
    reason: str = ""  # why it did not run
    checks: list[Check] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """None when not run."""
        return all(c.passed for c in self.checks) if self.run else None

    def to_json(self) -> dict[str, Any]:
        if not self.run:
            return {"run": False, "passed": None, "reason": self.reason}
        return {
            "run": True,
            "passed": self.passed,
            "checks": [
                {
                    "name": c.name,
                    "passed": c.passed,
                    "summary": c.summary,
                    "violations": c.violations,
                }
                for c in self.checks
            ],
            "traffic": self.traffic,
            "note": self.note,
        }


def not_audited(reason: str) -> PrivacyAudit:
    return PrivacyAudit(run=False, reason=reason)


def world_of(played: Played) -> WorldResult:
    """The run in the shape the audit's checks take: what was planted, the ground truth,
    and what businesses were shown."""
    plan = played.plan
    relay_ids = {copy.msg_id for copy in played.copies or []}
    return WorldResult(
        campaigns=dict(played.campaign_ids),
        businesses=[b.handle for b in plan.businesses],
        handles=sorted([p.handle for p in plan.persons] + [b.handle for b in plan.businesses]),
        message_ids=sorted(played.message_ids | relay_ids),
        canaries=plan.canaries(),
        true_counts=played.true_counts,
        reporters=dict(played.reporters),
        redemptions=played.redemptions,
        published=business_figures(played),
        budgets={b: view.model_dump(mode="json") for b, view in played.budgets.items()},
        targeted={cid: played.runs[label].accepted for label, cid in played.campaign_ids.items()},
        anonymous_requests=sum(played.reporters.values()),  # one request per report
        timings=played.timings,
    )


def audit_own_relay(played: Played, relay: OwnRelay) -> tuple[PrivacyAudit, list[Exchange]]:
    """Run the checks on the recorded traffic and the relay's storage; stops the relay."""
    world = world_of(played)
    storage = StorageDump()
    probe = probe_running_relay(relay.process, world, relay.db_path, storage)
    at_shuffler = relay.shuffler_exchanges()
    exchanges = relay.stop()[: probe.client_exchanges]
    read_files(relay.db_path, storage, tag=" (after shutdown)")
    read_files(relay.workdir / "shuffler.db", storage, tag=" (shuffler)")
    checks, _ = run_checks(exchanges, storage, world, probe, shuffler=at_shuffler)
    traffic = traffic_summary(exchanges, at_shuffler)
    return PrivacyAudit(run=True, checks=checks, traffic=traffic), exchanges
