"""``sealpost account create|show|list``: profiles and their relay accounts."""

import argparse
import re
from typing import Any

from sealpost.commands.context import guarded, home_of, run_client
from sealpost.commands.output import print_json, terminal_safe
from shared.identifiers import HANDLE_PATTERN


def register(sub: Any) -> None:
    p = sub.add_parser(
        "account",
        help="create and inspect profiles",
        description="A profile is one account on this device: keys + local store.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    c = actions.add_parser(
        "create",
        help="generate keys and register a handle on a relay",
        epilog="examples:\n  sealpost account create --profile alice --handle alice "
        "--relay http://127.0.0.1:8700 --country +39\n  sealpost account create "
        "--profile shop --handle acme --relay http://127.0.0.1:8700 --business "
        "--name 'ACME Shoes'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--profile", required=True, help="local profile name")
    c.add_argument("--handle", required=True, help="public handle: 3-32 of a-z 0-9 _ . -")
    c.add_argument("--relay", required=True, help="relay URL, e.g. http://127.0.0.1:8700")
    c.add_argument(
        "--shuffler",
        help="shuffler URL for anonymous reports, e.g. http://127.0.0.1:8710 (else "
        "$SEALPOST_SHUFFLER_URL; with neither they go straight to the relay, which sees when "
        "and from where each came)",
    )
    c.add_argument(
        "--other-relay",
        action="append",
        default=[],
        metavar="URL",
        help="another relay of the same deployment (sharing its PostgreSQL), tried in turn "
        "when --relay cannot be reached; repeat for more",
    )
    c.add_argument("--country", help="country calling code, e.g. +39 (required for persons)")
    c.add_argument("--business", action="store_true", help="register a business account")
    c.add_argument("--name", help="display name (default: the handle)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(run=create)

    s = actions.add_parser("show", help="print a profile's identity and public keys")
    s.add_argument("--profile", required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=show)

    r = actions.add_parser(
        "relays",
        help="the other relays a profile falls back to",
        description="A deployment may run several relays over one PostgreSQL (docs/deploy.md). "
        "A profile uses its own relay first and, when that cannot be reached, the others in "
        "turn: a campaign's submission, for one, carries on through them.",
        epilog="examples:\n  sealpost account relays --profile shop\n"
        "  sealpost account relays --profile shop --add http://10.0.0.2:8700\n"
        "  sealpost account relays --profile shop --remove http://10.0.0.2:8700",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--profile", required=True)
    r.add_argument("--add", action="append", default=[], metavar="URL")
    r.add_argument("--remove", action="append", default=[], metavar="URL")
    r.add_argument("--json", action="store_true")
    r.set_defaults(run=relays)

    ls = actions.add_parser("list", help="list profiles in --home")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=list_)


def _describe(messenger: Any) -> dict[str, Any]:
    info = messenger.profile.info
    public = messenger.profile.keys.public
    return {
        **info.model_dump(),
        "sign_key": public.sign_b64,
        "box_key": public.box_b64,
        "dir": str(messenger.profile.dir),
    }


def create(args: Any) -> int:
    from client.messenger import Messenger

    if not re.match(HANDLE_PATTERN, args.handle):
        from sealpost.commands.output import fail

        return fail(
            f"'{args.handle}' is not a valid handle: 3 to 32 characters of lowercase "
            "letters, digits, _ . - (starting with a letter or digit).",
            2,
        )
    for url in (args.relay, *args.other_relay):
        if not re.match(r"^https?://[^\s/]+", url):
            from sealpost.commands.output import fail

            return fail(
                f"'{url}' is not a relay URL: write http:// or https://, the host and the port, "
                "e.g. http://127.0.0.1:8700",
                2,
            )
    if not args.business and not args.country:
        from sealpost.commands.output import fail

        return fail(
            "a person account needs --country (a calling code such as +39); "
            "businesses pass --business instead.",
            2,
        )

    async def go() -> int:
        messenger = await Messenger.create_account(
            home_of(args),
            args.profile,
            args.handle,
            args.relay,
            country=args.country,
            business=args.business,
            display_name=args.name,
            other_relays=args.other_relay,
        )
        if args.shuffler:
            from client.profile import set_shuffler_url

            url = args.shuffler.rstrip("/")
            messenger.profile.info = set_shuffler_url(home_of(args), args.profile, url)
            messenger.signals.shuffler_url = url
        async with messenger:
            data = _describe(messenger)
        if args.json:
            print_json(data)
        else:
            print(
                f"created profile '{args.profile}': {data['kind']} @{args.handle} on "
                f"{args.relay}\n  keys in {data['dir']}/keys.json (mode 0600)"
            )
        return 0

    return guarded(go)


def show(args: Any) -> int:
    async def body(messenger: Any) -> int:
        data = _describe(messenger)
        if args.json:
            print_json(data)
        else:
            for key, value in data.items():
                # The display name came back from the relay: printed as any untrusted text.
                print(f"{key:>13}: {terminal_safe(str(value))}")
        return 0

    return run_client(args, body)


def relays(args: Any) -> int:
    from client.profile import ProfileError, load_profile, set_other_relays
    from sealpost.commands.output import fail

    try:
        info = load_profile(home_of(args), args.profile).info
        if args.add or args.remove:
            gone = {u.rstrip("/") for u in args.remove}
            wanted = [u for u in info.other_relays + args.add if u.rstrip("/") not in gone]
            info = set_other_relays(home_of(args), args.profile, wanted)
    except ProfileError as exc:
        return fail(str(exc), 2)
    if args.json:
        print_json({"relay_url": info.relay_url, "other_relays": info.other_relays})
    else:
        print(f"{info.relay_url}  (first)")
        for url in info.other_relays:
            print(f"{url}  (when the ones above cannot be reached)")
    return 0


def list_(args: Any) -> int:
    from client.profile import list_profiles

    names = list_profiles(home_of(args))
    if args.json:
        print_json(names)
    else:
        print("\n".join(names) if names else f"no profiles in {home_of(args)}")
    return 0
