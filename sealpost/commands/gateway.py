"""``sealpost gateway``: a WhatsApp-Cloud-API-compatible gateway for a business profile."""

import argparse
import sys
import time
from typing import Any

from sealpost.commands.context import guarded, home_of
from sealpost.commands.output import fail, print_json

EPILOG = """\
examples:
  sealpost gateway token --profile shop          # a bearer token, and the ids to configure
  sealpost gateway map --profile shop 393331234567 alice   # a number your CRM uses -> a handle
  sealpost gateway --profile shop --port 8780 \\
      --webhook-url http://127.0.0.1:8000/webhook  # your integration's webhook endpoint
  curl -H "Authorization: Bearer $TOKEN" \\
      http://127.0.0.1:8780/v21.0/$WABA_ID/message_templates

pywa (or any Cloud API client) then talks to http://127.0.0.1:8780 instead of
graph.facebook.com: see docs/gateway.md for the quick start and what is supported.

The gateway runs on this machine with the profile's keys, which never leave it: every copy
is personalised and sealed here. It tells your integration `sent` for each message the relay
took, never whether a person received, read or opted out of it (template_analytics has
those as noisy aggregates, once a campaign's figures are published).
"""


def register(sub: Any) -> None:
    g = sub.add_parser(
        "gateway",
        help="a Cloud API-compatible gateway for a business (pywa, heyoo, ...)",
        description="Serve the WhatsApp Cloud API's messages, message_templates and "
        "template_analytics endpoints for a business profile, and post its webhooks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("--profile", help="the business profile")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=8780, help="port to listen on (default 8780)")
    g.add_argument(
        "--webhook-url",
        help="where webhooks go (checked with the hub.challenge handshake at start); "
        "saved in the profile. 'none' to stop sending webhooks",
    )
    g.add_argument("--verify-token", help="the hub.verify_token your endpoint expects (saved)")
    g.add_argument("--app-secret", help="the secret webhooks are signed with (saved)")
    g.set_defaults(run=serve)
    actions = g.add_subparsers(dest="gateway_action", metavar="{token,map}")
    t = actions.add_parser(
        "token",
        help="issue a bearer token and print the ids and secrets to configure; list or "
        "revoke tokens",
        description="Issue a bearer token for the gateway (kept only as a hash in the profile) "
        "and print the phone number id, business account id, app secret and verify token "
        "your integration needs. Tokens do not expire: revoke one when it may have leaked "
        "(a running gateway refuses it from its next request on).",
        epilog="examples:\n"
        "  sealpost gateway token --profile shop --label crm\n"
        "  sealpost gateway token --profile shop --list\n"
        "  sealpost gateway token --profile shop --revoke crm     # every token labelled crm\n"
        "  sealpost gateway token --profile shop --revoke SPGW... # that token",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--profile", default=argparse.SUPPRESS, help="the business profile")
    t.add_argument("--label", default="", help="a note on what the token is for")
    t.add_argument("--list", action="store_true", help="list the tokens issued (labels, dates)")
    t.add_argument(
        "--revoke", metavar="LABEL_OR_TOKEN", help="revoke a token, or every token with a label"
    )
    t.add_argument("--json", action="store_true", help="print as JSON")
    t.set_defaults(run=token)
    m = actions.add_parser(
        "map",
        help="map a phone-number-like id to a handle (or list the mapping)",
        description="Your integration may name people by the numbers your customer list "
        "holds; map each to its Sealpost handle. The mapping stays in the profile, on this "
        "machine: the relay never sees a number.",
        epilog="examples:\n"
        "  sealpost gateway map --profile shop 393331234567 alice\n"
        "  sealpost gateway map --profile shop             # list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--profile", default=argparse.SUPPRESS, help="the business profile")
    m.add_argument("number", nargs="?", help="digits, as your integration sends them in 'to'")
    m.add_argument("handle", nargs="?", help="the person's Sealpost handle")
    m.set_defaults(run=map_number)


def _business(args: Any) -> Any:
    """The profile, if it is a business's; else an exit code."""
    from client.profile import ProfileError, load_profile

    if not getattr(args, "profile", None):
        return fail("which business? pass --profile NAME", 2)
    try:
        profile = load_profile(home_of(args), args.profile)
    except ProfileError as exc:
        return fail(str(exc))
    if profile.info.kind != "business":
        return fail(
            f"profile '{args.profile}' is a person's; the gateway runs on a business profile "
            "(`sealpost account create ... --business`)"
        )
    return profile


def token(args: Any) -> int:
    from client.gateway.config import load_config
    from client.gateway.tokens import issue_token, issued_tokens, revoke_tokens

    profile = _business(args)
    if isinstance(profile, int):
        return profile
    if args.revoke is not None:
        if not args.revoke.strip():
            # An empty label would name every token issued without one: say which.
            return fail("--revoke takes a label or a token; `--list` shows the labels", 2)
        revoked = revoke_tokens(profile, args.revoke)
        if not revoked:
            return fail(
                f"no token is labelled '{args.revoke}' or is that token; "
                f"`sealpost gateway token --profile {args.profile} --list` lists them"
            )
        print(f"revoked {revoked} token{'s' if revoked > 1 else ''}")
        return 0
    if args.list:
        tokens = issued_tokens(profile)
        if args.json:
            print_json(tokens)
            return 0
        if not tokens:
            print("no tokens issued yet")
        for entry in tokens:
            at = time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(str(entry["issued_at"]))))
            print(f"{at} UTC  sha256 {str(entry['sha256'])[:12]}...  {entry['label'] or '-'}")
        return 0
    config = load_config(profile)
    issued = issue_token(profile, args.label)
    found = {
        "token": issued,
        "phone_number_id": config.phone_number_id,
        "waba_id": config.waba_id,
        "app_secret": config.app_secret,
        "verify_token": config.verify_token,
        "webhook_url": config.webhook_url,
    }
    if args.json:
        print_json(found)
        return 0
    print(f"token:           {issued}")
    print(f"phone number id: {config.phone_number_id}")
    print(f"WABA id:         {config.waba_id}")
    print(f"app secret:      {config.app_secret}   (webhooks' X-Hub-Signature-256)")
    print(f"verify token:    {config.verify_token}   (the hub.challenge handshake)")
    print("Keep the token secret: it sends as this business. Only its hash is kept here.")
    return 0


def map_number(args: Any) -> int:
    from client.gateway.config import load_config, map_recipient

    profile = _business(args)
    if isinstance(profile, int):
        return profile
    if args.number is None:
        mapping = load_config(profile).recipients
        if not mapping:
            print("no numbers mapped yet; e.g. `sealpost gateway map --profile P 3933312 alice`")
        for number, handle in sorted(mapping.items()):
            print(f"{number}  {handle}")
        return 0
    if args.handle is None:
        return fail("give the handle too: sealpost gateway map NUMBER HANDLE", 2)
    try:
        map_recipient(profile, args.number, args.handle)
    except ValueError as exc:
        return fail(str(exc), 2)
    print(f"{args.number} -> {args.handle.lstrip('@').lower()}")
    return 0


def serve(args: Any) -> int:
    from client.gateway.config import load_config, save_config

    profile = _business(args)
    if isinstance(profile, int):
        return profile
    config = load_config(profile)
    changes = {
        "webhook_url": args.webhook_url,
        "verify_token": args.verify_token,
        "app_secret": args.app_secret,
    }
    updated = {k: v for k, v in changes.items() if v is not None}
    if updated.get("webhook_url") == "none":
        updated["webhook_url"] = None
    config = config.model_copy(update=updated)

    async def go() -> int:
        from client.gateway.app import Gateway
        from client.gateway.server import GatewayServer, listening_socket
        from client.gateway.webhooks import WebhookError
        from client.messenger import Messenger

        try:
            sock = listening_socket(args.host, args.port)
        except OSError as exc:
            return fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror}; pick --port")
        async with Messenger(profile) as messenger:
            gateway = Gateway(messenger, config)
            if not len(gateway.tokens):
                print(
                    "note: no tokens yet; issue one with "
                    f"`sealpost gateway token --profile {args.profile}`",
                    file=sys.stderr,
                )
            server = GatewayServer(gateway, sock)
            try:
                await server.start()
            except WebhookError as exc:
                sock.close()
                return fail(str(exc))
            if updated:
                # Saved once the endpoint answered the handshake: a URL that failed it would
                # otherwise stop every later start that does not name another.
                save_config(profile, config)
            print(
                f"gateway for @{profile.handle} on {server.url}  (phone number id "
                f"{config.phone_number_id}, WABA id {config.waba_id}); webhooks to "
                f"{config.webhook_url or 'nowhere (--webhook-url)'}",
                file=sys.stderr,
            )
            await server.wait()
        return 0

    return guarded(go)
