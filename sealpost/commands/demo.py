"""``sealpost demo``: the whole product on a throwaway relay, in one command."""

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

DEMO_LINES = [
    ("alice", "bob", "Hi Bob! Dinner at 8? Our table is under the name Alice Rossi."),
    ("bob", "alice", "Sounds good, see you there."),
    ("alice", "bob", "Great, I'll bring the [bold]wine[/bold]."),
]
# The business's customer list: it never leaves the business's machine in clear.
AUDIENCE = [
    ("alice", "Signora Rossi", "ALICE-7Q2X"),
    ("bob", "Mr Smith", "BOB-9K4M"),
    ("carol", "Frau Weber", "CAR-3J8P"),
]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the demo on an embedded relay",
        description="Start a relay on loopback with a temporary database, create people and a "
        "business, exchange sealed messages, run a personalised marketing campaign that one "
        "person has opted out of, and show what the relay kept (no plaintext).",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.set_defaults(run=run)


async def _chat(people: dict[str, Any]) -> None:
    from sealpost.commands.output import terminal_safe

    print("\n1. Two people chat, end to end encrypted")
    for sender, recipient, text in DEMO_LINES:
        message = await people[sender].send_text(recipient, text)
        report = await people[recipient].sync()
        verified = sum(m.status == "verified" for m in report.stored)
        print(f"   {sender} → {recipient}: {message.status}; {recipient} verified {verified}")
    print("   Bob's conversation with Alice, from Bob's local store:")
    for m in people["bob"].store.messages("alice"):
        who = "Bob" if m.direction == "out" else "Alice"
        print(f"     {who}: {terminal_safe(m.text or '')}")


async def _marketing(shop: Any, people: dict[str, Any]) -> None:
    from client.business.audience import Audience, AudienceRow
    from client.business.campaigns import run_campaign
    from client.business.money import format_amount
    from sealpost.commands.output import terminal_safe
    from shared.templates import Button, TemplateDraft

    print("\n2. A business runs a personalised marketing campaign")
    budget = await shop.api.top_up(20_000_000)
    template = await shop.api.register_template(
        TemplateDraft(
            name="winter_sale",
            category="marketing",
            body="Hi {{name}}, winter sale! Your personal code {{code}} takes 25% off.",
            footer="ACME Shoes",
            buttons=[
                Button(type="url", text="Shop now", url="https://acme.example/sale"),
                Button(type="copy_code", text="Copy code"),
            ],
            examples={"name": "Ana", "code": "WINTER25"},
        )
    )
    print(
        f"   @acme topped up {format_amount(budget.available, budget.currency)}, registered "
        f"template {template.template.name} ({template.category}; buttons: "
        f"{', '.join(b.text for b in template.template.buttons)})"
    )
    await people["carol"].api.set_choice("promotions-stopped", "acme", True)
    print("   carol has stopped promotions from acme (the relay enforces it)")
    audience = Audience(
        rows=[
            AudienceRow(line=i + 2, handle=h, variables={"name": n, "code": c})
            for i, (h, n, c) in enumerate(AUDIENCE)
        ]
    )
    run = await run_campaign(
        shop.api,
        shop.profile.keys,
        "acme",
        template,
        audience,
        budget=5_000_000,
        name="Winter sale",
    )
    print(
        f"   campaign {run.campaign.id}: {run.accepted} copies personalised and sealed on "
        "acme's machine, then submitted"
    )
    for handle in ("alice", "bob", "carol"):
        stored = (await people[handle].sync()).stored
        if not stored:
            print(f"   {handle}: nothing arrived (and nothing was charged)")
        for m in stored:
            text = terminal_safe(m.text or "").replace("\n\n", " / ")
            print(f"   {handle} got [{m.label}] {text}")
    report = await shop.api.campaign(run.campaign.id)
    print(
        f"   report for acme: delivered {report.delivered}, refused {report.refused} (who "
        f"is never said), spent {format_amount(report.spend, budget.currency)}, "
        f"{format_amount(report.cost_per_delivered or 0)} per delivered"
    )


async def _story(home: Path, relay_url: str) -> None:
    from client.messenger import Messenger

    people = {
        handle: await Messenger.create_account(
            home, handle, handle, relay_url, country=country, display_name=name
        )
        for handle, country, name in (
            ("alice", "+39", "Alice Rossi"),
            ("bob", "+44", "Bob Smith"),
            ("carol", "+49", "Carol Weber"),
        )
    }
    shop = await Messenger.create_account(
        home, "shop", "acme", relay_url, business=True, display_name="ACME Shoes"
    )
    print(f"created @alice (+39), @bob (+44), @carol (+49) and business @acme in {home}")
    try:
        await _chat(people)
        await _marketing(shop, people)
    finally:
        for messenger in (*people.values(), shop):
            await messenger.aclose()


def run(args: Any) -> int:
    from server.embedded import EmbeddedRelay
    from server.settings import RelaySettings

    tmp = tempfile.mkdtemp(prefix="sealpost-demo-")
    db_path = Path(tmp) / "relay.db"
    with EmbeddedRelay(RelaySettings(db=f"sqlite:///{db_path}")) as relay:
        print(f"relay running at {relay.url} (database {db_path})")
        asyncio.run(_story(Path(tmp) / "home", relay.url))
    relay_bytes = b"".join(p.read_bytes() for p in Path(tmp).glob("relay.db*"))
    secrets = [t for _, _, t in DEMO_LINES] + [v for _, n, c in AUDIENCE for v in (n, c)]
    leaked = [s for s in secrets if s.encode() in relay_bytes]
    print(
        f"\n3. The relay's database ({len(relay_bytes):,} bytes with its WAL) was searched for "
        f"every message text, customer code and name: "
        f"{'FOUND ' + ', '.join(leaked) if leaked else 'none found'}."
    )
    if args.keep:
        print(f"Demo files: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if leaked else 0
