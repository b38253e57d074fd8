"""``sealpost demo``: the whole product on a throwaway relay, in one command."""

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.embedded import EmbeddedRelay
    from shuffler.embedded import EmbeddedShuffler

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


DESCRIPTION = """\
The whole product on a throwaway relay (loopback, temporary database), in one command.

In a terminal, it opens the app: a relay starts inside this process, then a person (@bob) is
seeded with chats from two friends, a business (@acme, ACME Shoes, with the verified mark)
registers a marketing template and runs a campaign that reaches @bob; the terminal client
then opens on @bob's profile. The campaign arrives over the live push stream: watch the
"Marketing" toast, the first-contact prompt (Block / Report / Continue), the buttons under
the message, the privacy marker, search (F4) and the privacy ledger (F5). Ctrl+Q quits and
the relay and its files go away (unless --keep).

When the output is not a terminal (piped, captured, CI), or with --script, it prints the
scripted story instead: two people exchange sealed messages, a business runs a personalised
campaign one person opted out of, each person's interaction report goes alone to the shuffler,
which forwards them to the relay in one shuffled batch, the relay's clock skips three days to
publish the campaign's figures (once, with deliberate noise), and the relay's and shuffler's
databases are searched for every text, code and name (none are found).

Both modes run a shuffler next to the relay (sealpost shuffler), with a batch size of 2 so
that the demo's handful of people fill one.
"""

EPILOG = """\
examples:
  sealpost demo                 # the app, on a seeded relay (in a terminal)
  sealpost demo --script        # the printed story, even in a terminal
  sealpost demo | less          # not a terminal: the printed story
  sealpost demo --keep          # keep the relay database and profiles afterwards
"""


class StoryClock:
    """The relay's clock in the printed story: real time, plus the hours the story skips, so
    that a campaign's figures (due days after it is sent) are published while it is told."""

    def __init__(self) -> None:
        self.skipped_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.skipped_ms

    def skip_to(self, ms: int) -> None:
        self.skipped_ms += max(0, ms - self.now_ms())


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="open the app on a seeded throwaway relay (or print the scripted story)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument(
        "--script",
        action="store_true",
        help="print the scripted story instead of opening the app (the default when the "
        "output is not a terminal)",
    )
    p.set_defaults(run=run)


def winter_sale() -> Any:
    """The demo business's marketing template (both demo modes register it)."""
    from shared.templates import Button, TemplateDraft

    return TemplateDraft(
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


async def _cast(home: Path, relay_url: str) -> tuple[dict[str, Any], Any]:
    """The demo's people (alice +39, bob +44, carol +49) and business @acme, registered."""
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
    return people, shop


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


async def _marketing(shop: Any, people: dict[str, Any]) -> str:
    """The campaign, as far as it is known on the day it is sent; returns its id."""
    from client.business.audience import Audience, AudienceRow
    from client.business.campaigns import run_campaign
    from client.business.money import format_amount
    from sealpost.commands.output import terminal_safe

    print("\n3. A business runs a personalised marketing campaign")
    budget = await shop.api.top_up(20_000_000)
    template = await shop.api.register_template(winter_sale())
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
            print(
                f"   {handle}: nothing arrived (her copy is charged like any other, so acme's "
                "bill does not give her choice away)"
            )
        for m in stored:
            text = terminal_safe(m.text or "").replace("\n\n", " / ")
            print(f"   {handle} got [{m.label}] {text}")
    await _disguised_promotion(shop, people["carol"])
    report = await shop.api.campaign(run.campaign.id)
    print(
        f"   acme's report that day: {report.sent} copies sent and "
        f"{format_amount(report.spend, budget.currency)} spent, exactly (neither depends on "
        f"anyone's choices); figures about people: {report.figures_note}"
    )
    return run.campaign.id


async def _message_request(home: Path, relay_url: str, carol: Any) -> None:
    """A stranger writes to carol: a message request, held to a few until she answers."""
    from client.messenger import Messenger
    from client.relay_api import RelayError

    print("\n2. A stranger writes: a message request, held to a few until carol answers")
    stranger = await Messenger.create_account(
        home, "mallory", "mallory", relay_url, country="+1", display_name="Mallory"
    )
    try:
        for n in range(1, 6):
            message = await stranger.send_text("carol", f"hey carol, message {n}")
            if message.status != "sent":
                print(f"   mallory → carol #{n}: {message.status}: {message.quarantine_detail}")
            else:
                print(f"   mallory → carol #{n}: sent")
        await carol.sync()
        [request] = carol.store.requests()
        print(
            f"   carol's device lists @{request.peer} under message requests ({request.unread} "
            f"messages), apart from her chats, with no alert; her unread count stays "
            f"{carol.store.unread_total()}"
        )
        try:
            await carol.accept_request("mallory")
        except RelayError as exc:  # pragma: no cover - the demo relay is in-process
            print(f"   accepting failed: {exc.message}")
            return
        again = await stranger.send_text("carol", "thanks for accepting")
        arrived = len((await carol.sync()).stored)
        print(f"   carol accepts; mallory's next message: {again.status}, {arrived} arrived")
    finally:
        await stranger.aclose()


async def _disguised_promotion(shop: Any, carol: Any) -> None:
    """A promotion smuggled into a utility template's variable: the relay cannot see it (the
    variables are sealed), so carol's device applies her own choice and hides it."""
    from client.business.audience import Audience, AudienceRow
    from client.business.campaigns import run_campaign
    from sealpost.commands.output import terminal_safe
    from shared.templates import TemplateDraft

    update = await shop.api.register_template(
        TemplateDraft(
            name="order_update",
            category="utility",
            body="Hi {{name}}, about your order: {{note}}",
            examples={"name": "Ana", "note": "it has shipped"},
        )
    )
    row = AudienceRow(
        line=2, handle="carol", variables={"name": "Carol", "note": "50% OFF everything, shop now"}
    )
    await run_campaign(
        shop.api, shop.profile.keys, "acme", update, Audience(rows=[row]), budget=1_000_000
    )
    [copy] = (await carol.sync()).stored
    print(
        f"   acme then sent carol a {update.category} message whose variable says "
        "'50% OFF everything, shop now':"
    )
    print(
        f"   carol's device hid it ({copy.quarantine_reason}): "
        f"{terminal_safe(copy.quarantine_detail or '')}"
    )


async def _figures(shop: Any, campaign_id: str, relay: "EmbeddedRelay", clock: StoryClock) -> None:
    """Three days on: the relay publishes the campaign's figures once, with noise."""
    from client.business.figures import about, privacy_left
    from client.business.money import format_amount

    due = (await shop.api.campaign(campaign_id)).figures_at
    clock.skip_to(due)
    await asyncio.to_thread(relay.app.state.dispatcher.run_once)
    report = await shop.api.campaign(campaign_id)
    figures = report.figures
    assert figures is not None, f"the figures were due at {due}: {report.figures_note}"
    budget = await shop.api.budget()
    print(
        "\n5. Three days later (the demo relay's clock skips ahead), the relay publishes acme's "
        "figures,\n   once, with deliberate noise, so that no figure gives away one person:"
    )
    print(
        f"   {about(figures.delivered, 'delivered')}, {about(figures.refused, 'refused')}, "
        f"{about(figures.not_delivered, 'not delivered')}"
    )
    print(
        f"   (give or take {figures.delivered.margin} on an audience of {report.sent}: figures "
        "about people start to mean something for audiences in the thousands)"
    )
    if figures.rebate:
        print(
            f"   rebate: {format_amount(figures.rebate, budget.currency)} given back for the "
            "copies these figures estimate were not delivered; acme spent "
            f"{format_amount(report.spend, budget.currency)} in all"
        )
    else:
        print("   no rebate: these figures estimate that no copy went undelivered")
    print(f"   acme's privacy budget: {privacy_left(budget.privacy, _local_time)}")


def _local_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


async def _reports(people: dict[str, Any], shuffler: "EmbeddedShuffler") -> None:
    """Each device's report leaves alone, at its own moment, for the shuffler; one batch."""
    print(
        "\n4. Each person's interaction report (one noisy outcome and a blind token, nothing else) "
        "leaves\n   alone, at a random moment of its own, for the shuffler, not the relay"
    )
    within_a_day = time.time() + 2 * 86_400  # the story does not wait for those moments
    sent = 0
    for handle in ("alice", "bob", "carol"):
        result = await people[handle].signals.flush_due(until=within_a_day)
        sent += result.counted if result else 0
    print(f"   {sent} reports went to the shuffler at {shuffler.url}")
    # Each device checked its token's key first, with the log it fetched through the shuffler.
    head = people["alice"].signals.key_log.seen()
    if head is not None:
        entries = f"{head.size} {'entry' if head.size == 1 else 'entries'}"
        print(
            "   before each left, its device checked its token's key against the relay's "
            f"signed key log (fetched through the shuffler, {entries}): the key everyone "
            "gets, in a log that only grew since the device last looked"
        )
    done = await asyncio.to_thread(shuffler.forward_ready)
    status = shuffler.shuffler.status()
    print(
        f"   holding {status['batch']} (its batch size B), it sent the relay one batch of "
        f"{sum(done.batches)} in random order, signed with its key: the relay never saw when "
        "or from where each came"
    )
    bound = status["privacy"]["last_batch"] or status["privacy"]["at_batch_size"]
    local = bound["local_epsilon"]
    if bound["amplified"]:
        gain = f"central ε {bound['central_epsilon']:.2f} (δ {bound['delta']:g})"
    else:
        gain = (
            f"no provable gain from shuffling {bound['n']} (the bound needs "
            f"{bound['min_reports_for_bound']:,} reports of one campaign per batch), so each "
            f"stays at ε {local:.2f}"
        )
    print(f"   local ε of one report: {local:.2f}; shuffled: {gain}")


async def _story(
    home: Path, relay: "EmbeddedRelay", shuffler: "EmbeddedShuffler", clock: StoryClock
) -> None:
    people, shop = await _cast(home, relay.url)
    print(f"created @alice (+39), @bob (+44), @carol (+49) and business @acme in {home}")
    try:
        await _chat(people)
        await _message_request(home, relay.url, people["carol"])
        campaign_id = await _marketing(shop, people)
        await _reports(people, shuffler)
        await _figures(shop, campaign_id, relay, clock)
    finally:
        for messenger in (*people.values(), shop):
            await messenger.aclose()


FRIEND_LINES = [
    *DEMO_LINES,
    ("carol", "bob", "Bob, did you get the tickets for Saturday?"),
    ("bob", "carol", "Yes, two seats in row F."),
    ("carol", "bob", "Perfect, thank you!"),
]


async def seed_person_demo(home: Path, relay: "EmbeddedRelay") -> str:
    """@bob with two friends' chats, and a campaign from verified @acme on its way to him.

    Bob's chats are synced into his store; the campaign is left in his mailbox so the app
    receives it live over the push stream when it opens. Returns the moderation desk's key
    fingerprint, for the app to pin (SEALPOST_MODERATION_KEY_FINGERPRINT).
    """
    from client.business.audience import Audience, AudienceRow
    from client.business.campaigns import run_campaign
    from sealpost.commands.desk import create_desk

    relay_url = relay.url
    people, shop = await _cast(home, relay_url)
    # The platform's report desk, set up by the relay's operator: reports from the app are
    # sealed to its key, once the app has pinned its fingerprint.
    fingerprint = create_desk(
        home, "desk", "moderation", relay_url, relay.app.state.engine, "Moderation desk"
    )
    try:
        for sender, recipient, text in FRIEND_LINES:
            await people[sender].send_text(recipient, text)
            await people["bob"].sync()
        await shop.api.top_up(20_000_000)
        template = await shop.api.register_template(winter_sale())
        audience = Audience(
            rows=[
                AudienceRow(line=2, handle="bob", variables={"name": "Bob", "code": "BOB-9K4M"}),
                AudienceRow(
                    line=3, handle="alice", variables={"name": "Alice", "code": "ALICE-7Q2X"}
                ),
            ]
        )
        await run_campaign(
            shop.api,
            shop.profile.keys,
            "acme",
            template,
            audience,
            budget=5_000_000,
            name="Winter sale",
        )
    finally:
        for messenger in (*people.values(), shop):
            await messenger.aclose()
    return fingerprint


def run_app(args: Any) -> int:
    """The interactive demo: a seeded embedded relay, then the app on @bob's profile."""
    from client.tui.app import SealpostApp
    from sealpost.commands.desk import FINGERPRINT_ENV
    from sealpost.shuffling import relay_with_shuffler
    from server.settings import RelaySettings

    tmp = tempfile.mkdtemp(prefix="sealpost-demo-")
    home = Path(tmp) / "home"
    settings = RelaySettings(db=f"sqlite:///{Path(tmp) / 'relay.db'}")
    try:
        with relay_with_shuffler(Path(tmp), settings, batch=2, max_hold_s=60) as (
            relay,
            shuffler,
        ):
            print(
                f"relay running at {relay.url}, shuffler at {shuffler.url}; seeding @bob, "
                "@alice, @carol and @acme …"
            )
            fingerprint = asyncio.run(seed_person_demo(home, relay))
            os.environ[FINGERPRINT_ENV] = fingerprint  # the demo's app pins the desk
            SealpostApp(home, "bob").run()
    finally:
        if args.keep:
            print(f"Demo files: {tmp} (open again: sealpost --home {home} chat --profile bob)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def run(args: Any) -> int:
    interactive = sys.stdout.isatty() and sys.stdin.isatty() and not args.script
    if interactive:
        return run_app(args)
    return run_script(args)


def run_script(args: Any) -> int:
    from sealpost.shuffling import relay_with_shuffler
    from server.settings import RelaySettings

    tmp = tempfile.mkdtemp(prefix="sealpost-demo-")
    clock = StoryClock()
    try:
        db_path = Path(tmp) / "relay.db"
        settings = RelaySettings(db=f"sqlite:///{db_path}")
        # The story says when the shuffler forwards (auto_forward off); B = 2 so that the
        # demo's two reports make a batch.
        with relay_with_shuffler(Path(tmp), settings, clock=clock, batch=2, auto_forward=False) as (
            relay,
            shuffler,
        ):
            print(f"relay running at {relay.url} (database {db_path}), shuffler at {shuffler.url}")
            asyncio.run(_story(Path(tmp) / "home", relay, shuffler, clock))
        relay_bytes = b"".join(p.read_bytes() for p in Path(tmp).glob("relay.db*"))
        shuffler_bytes = b"".join(p.read_bytes() for p in Path(tmp).glob("shuffler.db*"))
        secrets = [t for _, _, t in DEMO_LINES] + [v for _, n, c in AUDIENCE for v in (n, c)]
        leaked = [s for s in secrets if s.encode() in relay_bytes + shuffler_bytes]
        print(
            f"\n6. The relay's database ({len(relay_bytes):,} bytes with its WAL) and the "
            f"shuffler's ({len(shuffler_bytes):,} bytes) were searched for every message text, "
            f"customer code and name: {'FOUND ' + ', '.join(leaked) if leaked else 'none found'}."
        )
        if args.keep:
            print(f"Demo files: {tmp}")
    finally:
        if not args.keep:  # also when the story fails or the output pipe closes early
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if leaked else 0
