"""``sealpost send`` and ``sealpost inbox``: scriptable messaging for testers."""

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from sealpost.commands.contact import commands as contact_commands
from sealpost.commands.context import run_client
from sealpost.commands.output import fail, print_json, terminal_safe
from shared.display_names import name_or_handle


def register(sub: Any) -> None:
    s = sub.add_parser(
        "send",
        help="send a chat message",
        description="Seal and send a message. It is queued in the local store first: if the "
        "relay is unreachable it stays queued and goes out with the next send or inbox.",
        epilog="example:\n  sealpost send --profile alice --to bob 'see you at 8'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--profile", required=True)
    s.add_argument("--to", required=True, help="recipient handle (bob or @bob)")
    s.add_argument("text", help="message text")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=send)

    i = sub.add_parser(
        "inbox",
        help="sync, then print conversations",
        description="Fetch pending messages from the relay, verify and store each exactly once, "
        "then print every conversation. Messages that fail verification are shown "
        "as QUARANTINED with the reason, never as genuine. First, if an interaction report's "
        "random moment has come and this device has made no signed request for a minute, one "
        "report goes to the shuffler (one per run; the app sends the rest at random gaps).",
        epilog="examples:\n  sealpost inbox --profile bob\n  sealpost inbox --profile bob "
        "--json | jq '.conversations[].messages[].text'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("--profile", required=True)
    i.add_argument("--peer", help="only this conversation")
    i.add_argument(
        "--no-sync",
        action="store_true",
        help="print the local store only (also what happens, with a warning, when the relay "
        "cannot be reached)",
    )
    i.add_argument("--json", action="store_true")
    i.set_defaults(run=inbox)

    r = sub.add_parser(
        "report",
        help="report a business to the moderation desk",
        description="Show exactly what a report would contain (at most the last five messages "
        "from that business), then send it signed and sealed to the moderation desk: the relay "
        "carries it but cannot read it.",
        epilog="example:\n  sealpost report --profile bob acme --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--profile", required=True)
    r.add_argument("business", help="the business handle to report")
    r.add_argument("--yes", action="store_true", help="send without asking (for scripts)")
    r.add_argument(
        "--json",
        action="store_true",
        help="print what the report holds and whether it was sent, as JSON (needs --yes)",
    )
    r.set_defaults(run=report)


def send(args: Any) -> int:
    if not args.text.strip():
        return fail("the message is empty: nothing to send", 2)
    args.to = args.to.removeprefix("@")

    async def body(messenger: Any) -> int:
        from client.messenger import KeyChangedError
        from client.relay_api import RelayError, RelayUnavailable

        try:
            # Known before anything is queued: a typo must not leave a chat that never sends.
            await messenger.contact(args.to)
        except RelayUnavailable:
            pass  # offline: queued as always, and sent with the next send or inbox
        except RelayError as exc:
            if exc.code != "unknown_handle":
                raise
            return fail(f"no account @{args.to} on this relay{_did_you_mean(messenger, args.to)}")
        try:
            message = await messenger.send_text(args.to, args.text)
        except KeyChangedError as exc:
            run = contact_commands(messenger.profile.info.name, args.to)
            return fail(
                f"{exc.message}\n  compare the new safety number: {run['verify']}\n"
                f"  then accept the new key:       {run['accept']}"
            )
        if args.json:
            print_json(
                {
                    "id": message.msg_id,
                    "to": args.to,
                    "status": message.status,
                    "error": message.quarantine_detail,
                }
            )
        elif message.status == "sent":
            print(f"sent {message.msg_id} to {args.to}")
        elif message.status == "queued":
            print(
                f"queued {message.msg_id}: relay unreachable; it goes out with the next "
                "`sealpost send` or `sealpost inbox`"
            )
        if message.status == "failed":
            return fail(f"the relay refused the message: {message.quarantine_detail}")
        return 0

    return run_client(args, body)


def _did_you_mean(messenger: Any, handle: str) -> str:
    """``; did you mean @alice?`` from this device's conversations, or nothing."""
    import difflib

    known = [c.peer for c in messenger.store.conversations()]
    close = difflib.get_close_matches(handle, known, n=1, cutoff=0.75)
    return f"; did you mean @{close[0]}?" if close else ""


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def message_json(m: Any) -> dict[str, Any]:
    return {
        "id": m.msg_id,
        "direction": m.direction,
        "sender": m.sender,
        "recipient": m.recipient,
        "kind": m.kind,
        "category": m.category,
        "label": m.label,
        "text": m.text if m.status != "quarantined" else None,
        "sent_at": m.sent_at,
        "status": m.status,
        "quarantine_reason": m.quarantine_reason,
        "detail": m.quarantine_detail,
    }


def inbox(args: Any) -> int:
    from client.relay_api import RelayUnavailable

    async def body(messenger: Any) -> int:
        synced = None
        signals = None
        offline = None
        if not args.no_sync:
            try:
                # Before the signed sync, never after it: a report must not follow the
                # account's own requests within a minute (client/signals.py).
                signals = await _send_due_report(messenger)
                report = await messenger.sync()
                await messenger.flush_outbox()
                synced = {
                    "new": len(report.stored),
                    "duplicates": report.duplicates,
                    "quarantined": len(report.quarantined),
                }
            except RelayUnavailable as exc:
                # What this device holds is still worth showing: say why it is all there is.
                offline = str(exc)
                print(
                    f"warning: relay unreachable ({exc}); showing the local store, which may "
                    "be missing newer messages",
                    file=sys.stderr,
                )
        store = messenger.store
        convos = [c for c in store.conversations() if args.peer in (None, c.peer)]
        # Reports withheld because their token's key failed its check: the relay misbehaved,
        # and the person should know whenever the inbox is shown.
        problems = [
            {"at": p.at, "campaign_id": p.campaign_id, "reason": p.reason, "detail": p.detail}
            for p in messenger.signals.problems()
        ]
        data = {
            "profile": messenger.profile.info.name,
            "handle": messenger.profile.handle,
            "synced": synced,
            "offline": offline,
            "signals": signals,
            "signal_problems": problems,
            "conversations": [
                {
                    "peer": c.peer,
                    "display_name": c.display_name,
                    "kind": c.kind,
                    "verified": c.verified,
                    "unread": c.unread,
                    "messages": [message_json(m) for m in store.messages(c.peer)],
                }
                for c in convos
            ],
        }
        # Contacts whose key changed and was not accepted: said wherever their chat is shown.
        changed = {
            c.peer for c in convos if (pinned := store.contact(c.peer)) and pinned.key_changed
        }
        for convo in data["conversations"]:
            convo["key_changed"] = convo["peer"] in changed
        if args.json:
            print_json(data)
            return 0
        if synced:
            print(f"synced: {synced['new']} new, {synced['quarantined']} quarantined")
        if signals and (signals["sent"] or signals["waiting"]):
            print(_signals_line(signals))
        for problem in problems:
            print(
                terminal_safe(
                    f"⚠ interaction report for campaign {problem['campaign_id']} withheld "
                    f"({problem['reason']}, {_time(problem['at'] * 1000)} UTC): "
                    f"{problem['detail']}"
                )
            )
        if not convos:
            print("no conversations yet")
        for convo in data["conversations"]:
            mark = " ✔ verified" if convo["verified"] else ""
            # A name the rules refuse (pinned by an older version) is shown as the handle.
            name = terminal_safe(name_or_handle(convo["display_name"], convo["peer"]))
            print(f"\n== {name} (@{convo['peer']}){mark} · {convo['unread']} unread")
            if convo["peer"] in changed:
                run = contact_commands(messenger.profile.info.name, convo["peer"])
                print(
                    f"  ⚠ {name}'s safety number changed — "
                    f"compare it before trusting new messages: {run['verify']}"
                )
            for m in convo["messages"]:
                who = "you" if m["direction"] == "out" else m["sender"]
                if m["status"] == "quarantined":
                    line = terminal_safe(
                        f"QUARANTINED, could not verify ({m['quarantine_reason']}): {m['detail']}"
                    )
                else:
                    state = {"queued": " (queued)", "failed": " (NOT SENT)"}.get(m["status"], "")
                    line = terminal_safe(m["text"] or "") + state
                    if m["label"]:
                        line = f"[{m['label']}] " + line.replace("\n", "\n      ")
                print(f"  [{_time(m['sent_at'])}] {who}: {line}")
        return 0

    return run_client(args, body)


async def _send_due_report(messenger: Any) -> dict[str, Any]:
    """Send at most one due interaction report (if the quiet time allows); what happened."""
    import httpx

    from client.relay_api import RelayError, RelayUnavailable
    from client.signals import KeyCheckFailed

    agent = messenger.signals
    error = None
    if not agent.shuffler_url:
        # Straight to the relay, a report sent now would arrive right before this command's
        # signed sync: the relay could pair them. Without a shuffler, reports wait for the app.
        sent, error = None, "no shuffler set (SEALPOST_SHUFFLER_URL): the report waits"
    else:
        try:
            sent = await agent.flush()
        except KeyCheckFailed:
            sent = None  # withheld for good; listed with the inbox's signal problems
        except (RelayError, RelayUnavailable, OSError, httpx.HTTPError) as exc:
            sent, error = None, str(exc)  # kept; it goes another time
    next_at = agent.next_send_at()
    return {
        "sent": 1 if sent is not None else 0,
        "via": "shuffler" if agent.shuffler_url else "relay (no shuffler set)",
        "waiting": agent.pending(),
        "next_at": int(next_at) if next_at is not None else None,
        "error": error,
    }


def _signals_line(signals: dict[str, Any]) -> str:
    parts = []
    if signals["sent"]:
        parts.append(f"1 interaction report sent via the {signals['via']}")
    if signals["waiting"]:
        when = signals["next_at"]
        moment = _time(when * 1000) if when else "later"
        parts.append(f"{signals['waiting']} waiting (next not before {moment} UTC)")
    if signals["error"]:
        parts.append(f"not sent: {signals['error']}")
    return "signals: " + "; ".join(parts)


def report(args: Any) -> int:
    args.business = args.business.removeprefix("@")
    if args.json and not args.yes:
        return fail("--json sends without a prompt: add --yes", 2)

    async def body(messenger: Any) -> int:
        from client.messenger import REPORT_MESSAGES

        incoming = [m for m in messenger.store.messages(args.business) if m.direction == "in"]
        chosen = incoming[-REPORT_MESSAGES:]
        if not chosen:
            return fail(f"no messages from @{args.business} to report")
        if args.json:
            sent = await messenger.report(args.business, chosen)
            print_json(
                {
                    "business": args.business,
                    "desk": messenger.settings.moderation_handle,
                    "status": sent.status,
                    "messages": [message_json(m) for m in chosen],
                }
            )
            return 0
        print(f"A report about @{args.business} would contain exactly these messages:")
        for m in chosen:
            label = f"[{m.label}] " if m.label else ""
            print(f"  [{_time(m.sent_at)}] {label}{terminal_safe(m.text or '')}")
        if not args.yes:
            if not sys.stdin.isatty():
                return fail("not sent: add --yes to send without a prompt", 2)
            answer = await asyncio.to_thread(input, "Send it to the moderation desk? [y/N] ")
            if answer.strip().lower() != "y":
                print("not sent")
                return 0
        sent = await messenger.report(args.business, chosen)
        print(f"report {sent.status}: sealed to @{messenger.settings.moderation_handle}")
        return 0

    return run_client(args, body)
