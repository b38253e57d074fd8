"""``sealpost business ...``: the business console (templates, campaigns, budget, pricing)."""

import argparse
import json
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from sealpost.commands.context import run_client
from sealpost.commands.output import fail, print_json, terminal_safe

EPILOG = """\
examples:
  sealpost business --profile shop budget top-up 50
  sealpost business --profile shop template add --name spring_offer --category marketing \\
      --body 'Hi {{name}}, use {{code}} for 20% off' --example name=Ana --example code=SPRING20 \\
      --button 'url: Shop now | https://acme.example' --button 'code: Copy code'
  sealpost business --profile shop campaign create --template spring_offer \\
      --audience customers.csv --budget 10 --at 2026-12-01T09:00
  sealpost business --profile shop campaign status cmp_...

The audience CSV has a header row with a 'handle' column and one column per template variable
(e.g. name, code). It never leaves this machine: each copy is personalised and sealed here.
Amounts are in the relay's currency (see `pricing`), e.g. 12.50.
"""
WIDTH = 96  # wrap long report lines for a terminal


def register(sub: Any) -> None:
    b = sub.add_parser(
        "business",
        help="business console: templates, campaigns, budget",
        description="Run marketing as a business profile.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("--profile", help="the business profile")
    groups = b.add_subparsers(dest="area", metavar="AREA", required=True)

    def leaf(parent: Any, name: str, help_: str, run: Any) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=help_)
        # --profile may come before the area or after the action, whichever reads better.
        p.add_argument("--profile", default=argparse.SUPPRESS, help="the business profile")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(run=run)
        return p

    t = groups.add_parser("template", help="register and list templates").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    add = leaf(
        t,
        "add",
        "register a template (validated; promotional utility becomes marketing)",
        template_add,
    )
    add.add_argument("--file", type=Path, help="a JSON template (fields as in docs/protocol.md)")
    add.add_argument("--name", help="lowercase name, e.g. spring_offer")
    add.add_argument("--category", choices=["marketing", "utility", "authentication"])
    add.add_argument("--language", default="en")
    add.add_argument("--header")
    add.add_argument(
        "--body",
        help="text with {{placeholders}}, up to 1,024 characters "
        "(authentication: leave it out, the platform writes it)",
    )
    add.add_argument("--footer")
    add.add_argument(
        "--button",
        action="append",
        default=[],
        metavar="KIND:TEXT[|EXTRA]",
        help="'url: Shop now | https://…', 'code: Copy code | SPRING20' or 'reply: Yes please' "
        "(repeatable; the app's syntax; url:TEXT:URL also works)",
    )
    add.add_argument(
        "--example",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="example value for a placeholder (one per placeholder)",
    )
    add.add_argument(
        "--variable",
        action="append",
        default=[],
        metavar="NAME=TYPE[:[MIN-]MAX][:CHARSET]",
        help="a placeholder's type: name, number, currency, date, code, url or text, its "
        "length bounds and, for a code, digits, alphanumeric or alphanumeric_dash; e.g. "
        "code=code:6-6:digits (undeclared: text of at most 60, or a code if copied)",
    )
    add.add_argument(
        "--code-expiry",
        type=int,
        metavar="MINUTES",
        help="authentication only: add 'This code expires in N minutes.' (1 to 90)",
    )
    leaf(t, "list", "list this business's templates", template_list)

    c = groups.add_parser("campaign", help="create, follow and cancel campaigns").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    create = leaf(c, "create", "personalise, seal and submit a campaign", campaign_create)
    create.add_argument("--template", required=True, help="template id or name")
    create.add_argument("--audience", required=True, type=Path, help="CSV: handle + variables")
    create.add_argument("--budget", required=True, help="most this campaign may spend, e.g. 25")
    create.add_argument(
        "--at",
        help="send time: now (the default), or ISO 8601 (e.g. 2026-12-01T09:00; local time "
        "unless it has an offset)",
    )
    create.add_argument("--name", default="", help="a name for reports")
    create.add_argument(
        "--on-bad-row",
        choices=["skip", "stop"],
        default="skip",
        help="skip bad CSV rows (reported by line) or stop before sending",
    )
    create.add_argument(
        "--expires-days", type=int, help="copies still undelivered after N days expire (default 30)"
    )
    leaf(c, "list", "all campaigns with their figures", campaign_list)
    for name, help_, run in (
        ("status", "one campaign: what was sent and spent, and its figures", campaign_status),
        ("cancel", "cancel unsent copies and refund them", campaign_cancel),
        (
            "resume",
            "finish a campaign cut short (the relay went away): nobody gets a second copy",
            campaign_resume,
        ),
    ):
        leaf(c, name, help_, run).add_argument("campaign", help="campaign id (cmp_...)")

    m = groups.add_parser("budget", help="balance and ledger").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    leaf(m, "show", "balance and every ledger movement", budget_show)
    leaf(m, "top-up", "add money (simulated payment)", budget_top_up).add_argument(
        "amount", help="e.g. 50 or 12.50"
    )
    leaf(groups, "pricing", "price per message sent, by country", pricing)
    leaf(groups, "features", "platform features open to this business yet", features)
    leaf(groups, "quality", "each template's quality rating, and any pause", template_quality)


def _needs_profile(args: Any) -> int | None:
    if not getattr(args, "profile", None):
        return fail("which business? pass --profile NAME", 2)
    return None


def _money(micro: int, currency: str = "") -> str:
    from client.business.money import format_amount

    return format_amount(micro, currency)


def _draft_from_args(args: Any) -> Any:
    from client.business.drafts import parse_buttons, parse_examples
    from shared.templates import TemplateDraft

    if args.file:
        return TemplateDraft.model_validate_json(args.file.read_text())
    body = args.body if args.body is not None else ""
    if not (args.name and args.category and (body or args.category == "authentication")):
        raise ValueError("give --file, or --name, --category and --body")
    # The app's parser: the same syntax and the same errors (client/business/drafts.py).
    buttons, problems = parse_buttons(args.button, "--button")
    examples, more = parse_examples(args.example, "--example")
    if problems or more:
        raise ValueError("; ".join(problems + more))
    return TemplateDraft(
        name=args.name,
        category=args.category,
        language=args.language,
        header=args.header,
        body=body,
        footer=args.footer,
        buttons=buttons,
        examples=examples,
        variables=dict(_variable(v) for v in args.variable),
        code_expiry_minutes=args.code_expiry,
    )


def _variable(text: str) -> tuple[str, Any]:
    """``NAME=TYPE[:[MIN-]MAX][:CHARSET]`` as a name and its VariableSpec."""
    from shared.templates import VariableSpec

    name, sep, rest = text.partition("=")
    if not sep:
        raise ValueError(f"--variable {text}: write NAME=TYPE, e.g. code=code:6-6:digits")
    kind, *more = rest.split(":")
    bounds: dict[str, Any] = {"type": kind}
    for part in more:
        low, dash, high = part.partition("-")
        if part.replace("-", "").isdigit():
            bounds["min_length"] = int(low) if dash else None
            bounds["max_length"] = int(high if dash else low)
        else:
            bounds["charset"] = part
    return name, VariableSpec.model_validate(bounds)


def template_add(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code
    from pydantic import ValidationError

    from client.business.drafts import pydantic_problems
    from shared.templates import finalize, validate_draft

    try:
        draft = _draft_from_args(args)
    except ValidationError as exc:
        return fail(f"template: {'; '.join(pydantic_problems(exc))}", 2)
    except (ValueError, OSError) as exc:
        return fail(f"template: {exc}", 2)
    problems = validate_draft(finalize(draft)[0])
    if problems:  # the relay would say the same; say it without a round trip
        for p in problems:
            print(f"  [{p.rule}] {p.message}", file=sys.stderr)
        return fail(f"the template breaks {len(problems)} rule(s); nothing was registered")

    async def body(m: Any) -> int:
        info = await m.api.register_template(draft)
        if args.json:
            print_json(info.model_dump())
            return 0
        print(f"registered {info.template.name} as {info.id} ({info.category})")
        if info.reclassified_reason:
            print(f"  note: {info.reclassified_reason}")
        return 0

    return run_client(args, body)


def template_list(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code

    async def body(m: Any) -> int:
        templates = (await m.api.templates_of(m.profile.handle)).templates
        if args.json:
            print_json([t.model_dump() for t in templates])
        elif not templates:
            print("no templates yet; add one with `sealpost business template add`")
        for t in templates if not args.json else []:
            print(f"{t.id}  {t.template.name:<24} {t.category:<14} {t.template.language}")
        return 0

    return run_client(args, body)


def _progress(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        if done == total or done % 5000 == 0:
            print(f"submitted {done}/{total}", file=sys.stderr)
        return
    width = 30
    filled = width * done // max(total, 1)
    print(
        f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if done == total:
        print(file=sys.stderr)


def campaign_create(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code
    from client.business.audience import AudienceError, read_audience
    from client.business.campaigns import CampaignError, CampaignInterrupted, run_campaign
    from client.business.journal import CampaignJournal
    from client.business.money import parse_amount
    from client.business.send_time import parse_send_at
    from shared.templates import variable_names

    try:
        budget = parse_amount(args.budget)
        send_at = parse_send_at(args.at)
    except ValueError as exc:
        return fail(str(exc), 2)

    async def body(m: Any) -> int:
        templates = (await m.api.templates_of(m.profile.handle)).templates
        matches = [t for t in templates if args.template in (t.id, t.template.name)]
        if not matches:
            return fail(f"no template '{args.template}'; see `sealpost business template list`")
        template = matches[-1]
        try:
            audience = read_audience(args.audience, variable_names(template.template))
            for line, why in audience.problems:
                print(f"{args.audience}:{line}: {why}", file=sys.stderr)
            if audience.unused_columns:
                print(
                    f"note: columns not used by the template: {', '.join(audience.unused_columns)}",
                    file=sys.stderr,
                )
            journal = CampaignJournal(m.profile.dir / "campaigns.db")
            try:
                run = await run_campaign(
                    m.api,
                    m.profile.keys,
                    m.profile.handle,
                    template,
                    audience,
                    budget=budget,
                    send_at=send_at,
                    name=args.name,
                    policy=args.on_bad_row,
                    expires_in_days=args.expires_days,
                    on_progress=_progress,
                    journal=journal,
                )
            finally:
                journal.close()
        except (AudienceError, CampaignError) as exc:
            return fail(str(exc))
        except CampaignInterrupted as exc:
            return _interrupted(args, exc)
        if args.json:
            print_json(
                {
                    "campaign": run.campaign.model_dump(),
                    "submitted": run.submitted,
                    "accepted": run.accepted,
                    "rejected": dict(run.rejected),
                    "stopped": run.stopped,
                    "skipped_rows": run.skipped_rows,
                }
            )
        else:
            print(
                f"campaign {run.campaign.id}: {run.accepted} of {run.submitted} copies "
                f"accepted, {run.campaign.status}"
            )
            for code_, n in run.rejected.items():
                print(f"  {n} refused: {code_}")
            if run.skipped_rows:
                print(f"  {len(run.skipped_rows)} audience rows skipped (listed above)")
        if run.stopped:
            print(f"stopped: {run.stopped}", file=sys.stderr)
            return 3
        return 0

    return run_client(args, body)


def _interrupted(args: Any, exc: Any) -> int:
    """What a run cut short says: the campaign, the counts, and the command that finishes it."""
    profile = getattr(args, "profile", "NAME")
    return fail(
        f"{exc}\n  the campaign is journalled on this device; nobody will get it twice. "
        "When the relay is back, finish it with:\n"
        f"  sealpost business --profile {profile} campaign resume {exc.run.campaign.id}",
        4,
    )


def campaign_resume(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code
    from client.business.campaigns import CampaignError, CampaignInterrupted, resume_campaign
    from client.business.journal import CampaignJournal

    async def body(m: Any) -> int:
        journal = CampaignJournal(m.profile.dir / "campaigns.db")
        try:
            found = journal.load(args.campaign)
            if found is None:
                unfinished = ", ".join(journal.unfinished()) or "none"
                return fail(
                    f"no journal of campaign {args.campaign} in this profile "
                    f"(campaigns cut short here: {unfinished})"
                )
            template = await m.api.template(found.template_id)
            run = await resume_campaign(
                m.api,
                m.profile.keys,
                m.profile.handle,
                template,
                journal,
                args.campaign,
                on_progress=_progress,
            )
        except CampaignError as exc:
            return fail(str(exc))
        except CampaignInterrupted as exc:
            return _interrupted(args, exc)
        finally:
            journal.close()
        if args.json:
            print_json(
                {
                    "campaign": run.campaign.model_dump(),
                    "submitted": run.submitted,
                    "accepted": run.accepted,
                    "duplicate": run.duplicate,
                    "rejected": dict(run.rejected),
                    "stopped": run.stopped,
                }
            )
        else:
            print(
                f"campaign {run.campaign.id} resumed: {run.accepted} copies newly accepted, "
                f"{run.duplicate} already held by the relay; {run.campaign.accepted} of "
                f"{run.campaign.targeted} in all, {run.campaign.status}"
            )
        if run.stopped:
            print(f"stopped: {run.stopped}", file=sys.stderr)
            return 3
        return 0

    return run_client(args, body)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def _print_report(r: Any, currency: str = "", explain: bool = False) -> None:
    """One campaign: what the business did and paid, exactly, then the figures about people
    as published; ``explain`` adds what those figures are (for one campaign's status)."""
    from client.business.figures import FIGURES_NOTE, about, estimate, reason_words

    print(
        f"{r.id}  {r.name}  [{r.status}]" + (f"  stopped: {r.stop_reason}" if r.stop_reason else "")
    )
    if r.held_until is not None:
        print(
            f"  held until {_when(r.held_until)}: its template is paused because its quality "
            "fell to low (`sealpost business quality` says why)"
        )
    print(
        f"  targeted {r.targeted}  accepted {r.accepted}  sent {r.sent}  scheduled {r.scheduled}"
        f"  cancelled {r.cancelled}"
    )
    print(
        f"  spend {_money(r.spend, currency)} of {_money(r.budget, currency)}  reserved "
        f"{_money(r.reserved, currency)}  given back {_money(r.refunded, currency)}"
    )
    figures = r.figures
    if figures is None:
        print(f"  figures: {terminal_safe(r.figures_note)}")
    else:
        print(
            f"  figures, published {_when(figures.published_at)} with deliberate noise "
            "(± is the 95 % margin):"
        )
        _print_items(
            about(figures.delivered, "delivered"),
            about(figures.refused, "refused"),
            about(figures.not_delivered, "not delivered"),
        )
        _print_items(
            "refused by reason:",
            *(f"{reason_words(k)} {about(v)}" for k, v in figures.refused_by_reason.items()),
        )
        _print_items(
            f"outcomes, from {about(figures.signal_reports, 'anonymous reports')}"
            + (f" ({about(figures.no_signal, 'with no signal')})" if figures.no_signal else "")
            + ", with 95 % ranges:",
            *(estimate(v, k.replace("_", " ")) for k, v in figures.interactions.items()),
        )
        if figures.rebate:
            _print_items(
                f"rebate: {_money(figures.rebate, currency)} given back for the copies these "
                "figures estimate were not delivered"
            )
    if explain:
        print(textwrap.fill(FIGURES_NOTE, width=WIDTH, initial_indent="  ", subsequent_indent="  "))


def _print_items(*items: str) -> None:
    """Comma-separated figures, as many to a line as fit: a figure and its margin are never
    split over two lines. A heading (ending in ':') takes no comma."""
    line = "   "
    for n, item in enumerate(items):
        piece = item if item.endswith(":") or n == len(items) - 1 else item + ","
        if n and len(line) + 1 + len(piece) > WIDTH:
            print(line)
            line = "     "
        line += " " + piece
    print(line)


def campaign_list(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code

    async def body(m: Any) -> int:
        campaigns = (await m.api.campaigns()).campaigns
        if args.json:
            print_json([c.model_dump() for c in campaigns])
            return 0
        if not campaigns:
            print("no campaigns yet")
        currency = (await m.api.budget()).currency if campaigns else ""
        for c in campaigns:
            _print_report(c, currency)
        return 0

    return run_client(args, body)


def campaign_status(args: Any) -> int:
    return _one_campaign(args, cancel=False)


def campaign_cancel(args: Any) -> int:
    return _one_campaign(args, cancel=True)


def _one_campaign(args: Any, cancel: bool) -> int:
    if (code := _needs_profile(args)) is not None:
        return code

    async def body(m: Any) -> int:
        call = m.api.cancel_campaign if cancel else m.api.campaign
        report = await call(args.campaign)
        if args.json:
            print_json(report.model_dump())
        else:
            _print_report(report, (await m.api.budget()).currency, explain=True)
            if not cancel:
                _print_quality(await m.api.request("GET", "/v1/quality"), report.template_id)
        return 0

    return run_client(args, body)


def _print_quality(found: dict[str, Any], template_id: str) -> None:
    """The template's rating and the business's tier, with the limit left and why."""
    from client.business.quality import business_line, template_line

    print(f"  quality: {business_line(found)}")
    if (line := template_line(found, template_id)) is not None:
        print(f"  {line}")


def budget_show(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code

    async def body(m: Any) -> int:
        view = await m.api.budget()
        _print_budget(view, args.json)
        return 0

    return run_client(args, body)


def budget_top_up(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code
    from client.business.money import parse_amount

    try:
        amount = parse_amount(args.amount)
    except ValueError as exc:
        return fail(str(exc), 2)
    if amount == 0:
        return fail("top up by more than zero", 2)

    async def body(m: Any) -> int:
        _print_budget(await m.api.top_up(amount), args.json)
        return 0

    return run_client(args, body)


def _print_budget(view: Any, as_json: bool) -> None:
    from client.business.figures import MONEY_NOTE, privacy_left, privacy_note

    if as_json:
        print_json(view.model_dump())
        return
    cur = view.currency
    print(
        f"available {_money(view.available, cur)}  reserved {_money(view.reserved, cur)}  "
        f"spent {_money(view.spent, cur)}  (topped up {_money(view.topped_up, cur)})"
    )
    print(f"privacy budget: {privacy_left(view.privacy, _when)}")
    print(f"  {privacy_note(view.privacy)}")
    for e in view.ledger:
        what = f"{e.messages} msg " if e.messages else ""
        print(
            f"  {_when(e.at)}  {e.kind:<7} {_money(e.amount, cur):>12}  {what}"
            f"{e.campaign_id or ''} {e.note}".rstrip()
        )
    if any(e.kind in ("charge", "rebate") for e in view.ledger):
        print(textwrap.fill(MONEY_NOTE, width=WIDTH))


def pricing(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code

    async def body(m: Any) -> int:
        table = await m.api.pricing()
        if args.json:
            print(json.dumps(table.model_dump(), indent=2))
            return 0
        print(
            f"price per message sent ({table.currency}); copies not delivered come back as a "
            "rebate once a campaign's figures are published; service replies are free"
        )
        print(f"  {'country':<28} {'marketing':>10} {'utility':>10} {'auth':>10}")
        rows = [(f"{code_} {row.name or ''}", row) for code_, row in table.countries.items()]
        rows.append(("other countries", table.default))
        for label, row in rows:
            print(
                f"  {label:<28} {_money(row.marketing):>10} {_money(row.utility):>10} "
                f"{_money(row.authentication):>10}"
            )
        return 0

    return run_client(args, body)


def features(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code

    async def body(m: Any) -> int:
        found = await m.api.features()
        if args.json:
            print(json.dumps({k: v.model_dump() for k, v in found.items()}, indent=2))
            return 0
        for feature, access in found.items():
            print(f"{feature}: {'open' if access.available else 'not yet'}. {access.note}")
        return 0

    return run_client(args, body)


def template_quality(args: Any) -> int:
    if (code := _needs_profile(args)) is not None:
        return code

    async def body(m: Any) -> int:
        found = await m.api.request("GET", "/v1/quality")
        if args.json:
            print(json.dumps(found, indent=2))
            return 0
        business = found["business"]
        print(f"your business: {business['note']}; used {business['used_24h']:,} in 24 hours")
        if not found["templates"]:
            print("no templates yet")
        for entry in found["templates"]:
            print(f"{entry['name']} ({entry['template_id']}): {entry['note']}")
        return 0

    return run_client(args, body)
