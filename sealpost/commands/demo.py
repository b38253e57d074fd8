"""``sealpost demo``: the whole product on a throwaway relay, in one command."""

import asyncio
import tempfile
from pathlib import Path
from typing import Any

DEMO_LINES = [
    ("alice", "bob", "Hi Bob! Dinner at 8? Our table is under the name Alice Rossi."),
    ("bob", "alice", "Sounds good, see you there."),
    ("alice", "bob", "Great, I'll bring the [bold]wine[/bold]."),
]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the demo on an embedded relay",
        description="Start a relay on loopback with a temporary database, create two people, "
        "exchange sealed messages, print the conversation and what the relay kept.",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.set_defaults(run=run)


async def _exchange(home: Path, relay_url: str) -> None:
    from client.messenger import Messenger
    from sealpost.commands.output import terminal_safe

    alice = await Messenger.create_account(
        home, "alice", "alice", relay_url, country="+39", display_name="Alice Rossi"
    )
    bob = await Messenger.create_account(
        home, "bob", "bob", relay_url, country="+44", display_name="Bob Smith"
    )
    print(f"created @alice (+39) and @bob (+44) in {home}")
    async with alice, bob:
        people = {"alice": alice, "bob": bob}
        for sender, recipient, text in DEMO_LINES:
            message = await people[sender].send_text(recipient, text)
            print(f"  {sender} → {recipient}: sealed and {message.status} ({message.msg_id[:8]}…)")
            report = await people[recipient].sync()
            print(
                f"  {recipient} synced {len(report.stored)} new, verified "
                f"{sum(m.status == 'verified' for m in report.stored)}"
            )
        print("\nBob's conversation with Alice, from Bob's local store:")
        for m in bob.store.messages("alice"):
            who = "Bob" if m.direction == "out" else "Alice"
            print(f"  {who}: {terminal_safe(m.text or '')}   [{m.status}]")


def run(args: Any) -> int:
    from server.embedded import EmbeddedRelay
    from server.settings import RelaySettings

    tmp = tempfile.mkdtemp(prefix="sealpost-demo-")
    db_path = Path(tmp) / "relay.db"
    with EmbeddedRelay(RelaySettings(db=f"sqlite:///{db_path}")) as relay:
        print(f"relay running at {relay.url} (database {db_path})\n")
        asyncio.run(_exchange(Path(tmp) / "home", relay.url))
    relay_bytes = b"".join(p.read_bytes() for p in Path(tmp).glob("relay.db*"))
    leaked = [t for _, _, t in DEMO_LINES if t.encode() in relay_bytes]
    print(
        f"\nThe relay's database ({len(relay_bytes):,} bytes with its WAL) was searched for every "
        f"message text: {'FOUND ' + str(len(leaked)) if leaked else 'none found'}."
    )
    print(f"Demo files: {tmp}" if args.keep else "")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if leaked else 0
