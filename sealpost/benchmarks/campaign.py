"""Campaign send: personalise, sign, seal and submit N copies, against the pure sign+seal floor.

The relay runs in its own process (as in production), so the client's two sealing threads and
the relay do not share one interpreter. Persons are written straight into the relay's database
before it starts: that setup is not what is measured.
"""

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from nacl.public import PublicKey

from client.business.audience import Audience, AudienceRow
from client.business.campaigns import run_campaign
from client.business.journal import CampaignJournal
from client.messenger import Messenger
from sealpost.benchmarks.seeding import seed_persons
from sealpost.relay_process import RelayProcess
from shared.envelope import TemplateContent, TemplatePayload
from shared.identifiers import new_message_id
from shared.keys import AccountKeys
from shared.seal import seal
from shared.templates import TemplateDraft

TARGET_RATIO = 1.5

TEMPLATE = TemplateDraft(
    name="bench_offer",
    category="marketing",
    body="Hi {{name}}, your code {{code}} takes 20% off until Sunday.",
    examples={"name": "Ana", "code": "SPRING20"},
)


def _seed_persons(db_url: str, n: int) -> list[tuple[str, PublicKey]]:
    return [(handle, keys.public.box) for handle, keys in seed_persons(db_url, n)]


def _floor(
    business: AccountKeys,
    template_id: str,
    template_hash: str,
    persons: list[tuple[str, PublicKey]],
) -> float:
    """Single-threaded sign+seal of the same copies, nothing else."""
    payloads = [
        TemplatePayload(
            id=new_message_id(),
            sender="benchshop",
            recipient=handle,
            sent_at=0,
            content=TemplateContent(
                template_id=template_id,
                template_hash=template_hash,
                variables={"name": f"Name {i}", "code": f"C{i:06d}"},
                campaign_id="cmp_0000000000000000",
            ),
        )
        for i, (handle, _) in enumerate(persons)
    ]
    start = time.perf_counter()
    for payload, (_, box) in zip(payloads, persons, strict=True):
        seal(payload, business, box)
    return time.perf_counter() - start


async def _measure(
    relay_url: str, home: Path, persons: list[tuple[str, PublicKey]], workers: int
) -> dict[str, Any]:
    shop = await Messenger.create_account(home, "shop", "benchshop", relay_url, business=True)
    async with shop:
        await shop.api.top_up(10**12)
        template = await shop.api.register_template(TEMPLATE)
        floor_s = _floor(shop.profile.keys, template.id, template.hash, persons)
        audience = Audience(
            rows=[
                AudienceRow(
                    line=i + 2, handle=h, variables={"name": f"Name {i}", "code": f"C{i:06d}"}
                )
                for i, (h, _) in enumerate(persons)
            ]
        )
        # As the console runs it: every batch journalled (on disk) before it leaves.
        journal = CampaignJournal(shop.profile.dir / "campaigns.db")
        start = time.perf_counter()
        run = await run_campaign(
            shop.api,
            shop.profile.keys,
            "benchshop",
            template,
            audience,
            budget=10**12,
            workers=workers,
            journal=journal,
        )
        wall_s = time.perf_counter() - start
        journal.close()
    if run.accepted != len(persons):
        raise RuntimeError(f"only {run.accepted} of {len(persons)} copies accepted")
    return {"floor_s": floor_s, "wall_s": wall_s}


def campaign_send(messages: int = 10_000, workers: int = 2) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sealpost-bench-") as tmp:
        db_url = f"sqlite:///{tmp}/relay.db"
        persons = _seed_persons(db_url, messages)
        with RelayProcess(
            db_url,
            Path(tmp) / "relay.log",
            rate_burst="100000",
            registrations_per_hour="0",
            anonymous_per_s="0",
        ) as relay:
            timing = asyncio.run(_measure(relay.url, Path(tmp) / "home", persons, workers))
    ratio = timing["wall_s"] / timing["floor_s"]
    return {
        "name": "campaign_send",
        "what": f"personalise, sign, seal and submit {messages} copies (relay in its own process)",
        "floor": "single-threaded sign+seal of the same copies",
        "messages": messages,
        "workers": workers,
        "wall_s": round(timing["wall_s"], 3),
        "floor_s": round(timing["floor_s"], 3),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "messages_per_s": round(messages / timing["wall_s"]),
        "ok": ratio <= TARGET_RATIO,
    }
