"""Business tools: templates, campaigns, budget and analytics, for business profiles.

Everything another party could influence (template texts come back from the relay, audience
files from anywhere) is shown as plain Text, never parsed as markup. Every request runs in a
worker; the audience is personalised and sealed on this machine (client.business).
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from client.business.audience import AudienceError, read_audience
from client.business.campaigns import CampaignError, CampaignRun, run_campaign
from client.business.drafts import parse_buttons, parse_examples, pydantic_problems
from client.business.figures import (
    FIGURES_NOTE,
    MONEY_NOTE,
    about,
    epsilon,
    privacy_left,
    privacy_note,
    reason_words,
    whole,
)
from client.business.money import format_amount, parse_amount
from client.business.quality import business_line
from client.business.send_time import parse_send_at
from client.relay_api import RelayError, RelayUnavailable
from client.tui.text import TimeFormat, follow_cursor_blink, one_line, safe
from client.tui.widgets.bar_chart import Bar, BarChart
from shared.api import BudgetView, CampaignReport, FeatureAccess, TemplateInfo
from shared.signals import OUTCOMES
from shared.templates import (
    STOP_PROMOTIONS,
    RenderedTemplate,
    TemplateDraft,
    TemplateRenderError,
    example_variables,
    finalize,
    render,
    validate_draft,
    variable_names,
)

if TYPE_CHECKING:
    from client.tui.app import SealpostApp

T = TypeVar("T")
CATEGORIES = ("marketing", "utility", "authentication")
BUTTONS_HELP = (
    "Buttons, one per line:  url: Shop now | https://…   code: Copy code | EXAMPLE   "
    "reply: Yes please"
)
EXAMPLES_HELP = "Example values, one per line: name=Ana (the preview and reviewers use them)"
AUDIENCE_HELP = (
    "The audience CSV stays on this machine: each copy is personalised and sealed here; the "
    "relay only sees sealed envelopes and counts."
)
ANALYTICS_NOTE = (
    f"{FIGURES_NOTE} Interactions are estimated from anonymous reports, at most one per "
    "recipient, each shown with its 95 % range."
)
FIRST_FOCUS = {
    "tab-templates": "#tpl-name",
    "tab-campaigns": "#cmp-template",
    "tab-budget": "#topup-amount",
    "tab-analytics": "#cmp-table",
}
REFRESH_S = 15.0  # the analytics tab refreshes itself this often while it is shown


@dataclass
class DraftCheck:
    """What the live validation found for the form as typed."""

    draft: TemplateDraft | None
    problems: list[str]
    final: TemplateDraft | None = None
    reclassified: str | None = None
    preview: RenderedTemplate | None = None


def check_draft(
    name: str,
    category: str,
    header: str,
    body: str,
    footer: str,
    buttons_text: str,
    examples_text: str,
) -> DraftCheck:
    """The live validation behind the form: the relay's own rules, run locally."""
    buttons, problems = parse_buttons(buttons_text.splitlines())
    examples, example_problems = parse_examples(examples_text.splitlines())
    problems += example_problems
    try:
        draft = TemplateDraft(
            name=name.strip(),
            category=category,  # type: ignore[arg-type]
            header=header.strip() or None,
            body=body,
            footer=footer.strip() or None,
            buttons=buttons,
            examples=examples,
        )
    except ValidationError as exc:
        return DraftCheck(None, pydantic_problems(exc) + problems)
    problems += [p.message for p in validate_draft(draft)]
    final, reclassified = finalize(draft)
    check = DraftCheck(draft, problems, final, reclassified)
    try:
        check.preview = render(final, example_variables(final))
    except TemplateRenderError as exc:
        if not problems:
            check.problems.append(f"preview: {exc}")
    return check


def preview_text(final: TemplateDraft, rendered: RenderedTemplate) -> Text:
    out = Text(end="")
    out.append(f" {final.category.capitalize()} ", "bold reverse")
    out.append("\n")
    if rendered.header:
        out.append(safe(rendered.header), "bold")
        out.append("\n")
    out.append(safe(rendered.body))
    if rendered.footer:
        out.append("\n")
        out.append(safe(rendered.footer), "dim")
    if rendered.buttons:
        out.append("\n")
        for button in rendered.buttons:
            icon = {"url": "↗", "copy_code": "⧉"}.get(button.type, "↩")
            out.append(f"[ {safe(button.text, keep_newlines=False)} {icon} ] ", "bold")
    return out


def figures_state(report: CampaignReport, time_format: TimeFormat) -> str:
    """Where a campaign's figures stand, in a few words (a table cell)."""
    if report.figures is not None:
        return f"published {time_format(report.figures.published_at)}"
    if report.status == "withheld":
        return "withheld: privacy budget"
    if report.status == "cancelled" and not report.sent:
        return "none: nothing sent"
    return f"due {time_format(report.figures_at)}"


def campaign_bars(report: CampaignReport) -> list[Bar]:
    """The exact copies sent, then what became of them as published (each with its margin)."""
    bars = [Bar("sent", report.sent, "exact")]
    figures = report.figures
    if figures is None:
        bars += [
            Bar(label, value, "exact")
            for label, value in (("scheduled", report.scheduled), ("cancelled", report.cancelled))
            if value
        ]
        return bars
    bars.append(Bar("delivered", figures.delivered.value, f"± {figures.delivered.margin:,}"))
    for reason, count in figures.refused_by_reason.items():
        bars.append(Bar(f"refused: {reason_words(reason)}", count.value, f"± {count.margin:,}"))
    bars.append(
        Bar("not delivered", figures.not_delivered.value, f"± {figures.not_delivered.margin:,}")
    )
    return bars


def quality_cell(found: dict[str, Any] | None) -> Text:
    """A template's rating as the table shows it: ``low · paused``, in the rating's colour."""
    if found is None:
        return Text("—", "dim")
    rating = found["rating"]
    style = {"high": "green", "medium": "", "low": "bold red"}[rating]
    if found["disabled"]:
        return Text(f"{rating} · disabled", "bold red")
    if found["paused_until"] is not None and "paused" in found["note"]:
        return Text(f"{rating} · paused", "bold red")
    return Text(rating, style)


def interaction_bars(report: CampaignReport) -> list[Bar]:
    if report.figures is None:
        return []
    figures = report.figures
    bars = [
        Bar(
            event.replace("_", " "),
            whole(value.value),
            f"{whole(value.low):,} to {whole(value.high):,}",
        )
        for event in OUTCOMES
        if (value := figures.interactions.get(event)) is not None
    ]
    # Reports of devices with signals off or their budget spent: counted, never estimated.
    if figures.no_signal is not None:  # None: published before report format 2
        bars.append(Bar("no signal", figures.no_signal.value, f"± {figures.no_signal.margin:,}"))
    return bars


class BusinessToolsScreen(Screen[None]):
    """Templates, campaigns, budget and analytics of this business profile."""

    app: "SealpostApp"

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f5", "refresh", "Refresh", id="sealpost.business.refresh"),
        Binding("ctrl+s", "register", "Register template", id="sealpost.business.register"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.templates: list[TemplateInfo] = []
        self.campaigns: list[CampaignReport] = []
        self.budget: BudgetView | None = None
        self.check: DraftCheck | None = None
        self.last_run: CampaignRun | None = None
        self.selected_campaign: str | None = None
        self.running = False

    @property
    def currency(self) -> str:
        return self.budget.currency if self.budget else ""

    def money(self, micro: int | None) -> str:
        return "-" if micro is None else format_amount(micro, self.currency)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="business-tabs"):
            with TabPane("Templates", id="tab-templates"):
                yield from self._compose_templates()
            with TabPane("Campaigns", id="tab-campaigns"):
                yield from self._compose_campaigns()
            with TabPane("Budget", id="tab-budget"):
                yield from self._compose_budget()
            with TabPane("Analytics", id="tab-analytics"):
                yield from self._compose_analytics()
        yield Footer()

    def _compose_templates(self) -> ComposeResult:
        with Horizontal(id="tpl-main"):
            with Vertical(id="tpl-list"):
                yield Label("Registered templates", classes="section")
                yield DataTable(id="tpl-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="tpl-form"):
                yield Label("New template (checked as you type)", classes="section")
                with Horizontal(classes="form-row"):
                    yield Input(placeholder="name, e.g. spring_offer", id="tpl-name")
                    yield Select(
                        [(Text(c), c) for c in CATEGORIES],
                        value="marketing",
                        allow_blank=False,
                        id="tpl-category",
                    )
                yield Input(placeholder="Header (optional)", id="tpl-header")
                yield TextArea(id="tpl-body", placeholder="Body, e.g. Hi {{name}}, …")
                yield Input(placeholder="Footer (optional)", id="tpl-footer")
                yield TextArea(id="tpl-buttons", placeholder=BUTTONS_HELP)
                yield TextArea(id="tpl-examples", placeholder=EXAMPLES_HELP)
                yield Static("", id="tpl-problems")
                yield Label("Preview, with the example values", classes="section")
                yield Static("", id="tpl-preview")
                yield Button("Register template", id="tpl-register", variant="primary")

    def _compose_campaigns(self) -> ComposeResult:
        with VerticalScroll(id="cmp-form"):
            yield Label("New campaign", classes="section")
            # Shown while marketing messages are not open to this business yet (a rollout).
            yield Static("", id="cmp-availability", classes="setting-note")
            # The business's rating and tier, and the people its marketing may still reach.
            yield Static("", id="cmp-quality", classes="setting-note")
            yield Select([], prompt="Template…", id="cmp-template")
            yield Static("", id="cmp-columns", classes="setting-note")
            yield Input(placeholder="Audience CSV file (handle, name, …)", id="cmp-audience")
            with Horizontal(classes="form-row"):
                yield Input(placeholder="Campaign name (optional)", id="cmp-name")
                yield Input(placeholder="When: now, or e.g. 2026-12-01T09:00", id="cmp-at")
                yield Input(placeholder="Budget, e.g. 10", id="cmp-budget")
            yield Static(Text(AUDIENCE_HELP, "italic"), classes="setting-note")
            yield Button("Run campaign", id="cmp-run", variant="primary")
            yield ProgressBar(id="cmp-progress", show_eta=False)
            yield Static("", id="cmp-result")

    def _compose_budget(self) -> ComposeResult:
        with Vertical(id="budget-pane"):
            yield Static("", id="budget-summary")
            with Horizontal(classes="form-row"):
                yield Input(placeholder="Amount, e.g. 25", id="topup-amount")
                yield Button("Top up", id="topup", variant="primary")
            yield DataTable(id="budget-ledger", cursor_type="row", zebra_stripes=True)

    def _compose_analytics(self) -> ComposeResult:
        with Vertical(id="analytics-pane"):
            yield DataTable(id="cmp-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="cmp-detail-pane"):
                yield Static("", id="cmp-detail")
                with Horizontal(id="cmp-charts"):
                    yield BarChart("Delivery (about, ± its margin)", id="chart-delivery")
                    yield BarChart("Interactions (about, 95 % range)", id="chart-interactions")
                yield Static(Text(ANALYTICS_NOTE, "italic"), classes="setting-note")

    def on_mount(self) -> None:
        follow_cursor_blink(self)
        self.title = "Business tools"
        self.sub_title = f"@{self.app.messenger.profile.handle}"
        self.query_one("#cmp-availability", Static).display = False
        self.query_one("#tpl-table", DataTable).add_columns("Name", "Category", "Quality", "Id")
        self.query_one("#budget-ledger", DataTable).add_columns(
            "Time", "Kind", "Amount", "Messages", "Campaign", "Note"
        )
        self.query_one("#cmp-table", DataTable).add_columns(
            "Campaign", "Status", "Sent", "Spend", "Delivered (about)", "Figures"
        )
        self.query_one("#cmp-progress", ProgressBar).display = False
        self.validate_form()
        self.action_refresh()
        self.set_interval(REFRESH_S, self._auto_refresh)

    # --- loading ----------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load_templates()
        self.load_budget()
        self.load_campaigns()

    @on(TabbedContent.TabActivated)
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Keyboard users land in the tab they picked (and focus never pulls them back)."""
        event.stop()
        self.refresh_bindings()
        first = FIRST_FOCUS.get(event.pane.id or "")
        # A late message (the first tab's, from mounting, handled after the user or a test
        # already moved on) must not focus into its pane: that would switch back to it.
        if first and self.query_one(TabbedContent).active == event.pane.id:
            self.query_one(first).focus()
        if event.pane.id == "tab-analytics":
            self.load_campaigns()

    def _auto_refresh(self) -> None:
        tabs = self.query_one(TabbedContent)
        if self.app.screen is self and tabs.active == "tab-analytics":
            self.load_campaigns()

    async def _request(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await call()
        except RelayUnavailable:
            self.notify(f"{what}: the relay is unreachable; try again later.", severity="warning")
        except RelayError as exc:
            self.notify(f"{what}: {exc.message}", severity="error", markup=False)
        return None

    @work(exit_on_error=False, group="business-templates", exclusive=True)
    async def load_templates(self) -> None:
        api = self.app.messenger.api
        handle = self.app.messenger.profile.handle
        found = await self._request("Templates", lambda: api.templates_of(handle))
        quality = await self._request("Quality", lambda: api.request("GET", "/v1/quality"))
        if found is not None:
            rated = {q["template_id"]: q for q in (quality or {}).get("templates", [])}
            self.show_templates(found.templates, rated)
        if quality is not None:
            note = Text(safe(business_line(quality), keep_newlines=False))
            self.query_one("#cmp-quality", Static).update(note)

    @work(exit_on_error=False, group="business-budget", exclusive=True)
    async def load_budget(self) -> None:
        view = await self._request("Budget", self.app.messenger.api.budget)
        if view is not None:
            self.show_budget(view)

    @work(exit_on_error=False, group="business-campaigns", exclusive=True)
    async def load_campaigns(self) -> None:
        found = await self._request("Campaigns", self.app.messenger.api.campaigns)
        if found is not None:
            self.show_campaigns(found.campaigns)
        features = await self._request("Features", self.app.messenger.api.features)
        if features is not None:
            self.show_availability(features.get("marketing"))

    def show_availability(self, marketing: FeatureAccess | None) -> None:
        """Say so, above the form, while marketing campaigns are not open to this business."""
        note = self.query_one("#cmp-availability", Static)
        closed = marketing is not None and not marketing.available
        note.update(Text(marketing.note, "bold yellow") if closed and marketing else "")
        note.display = closed

    # --- templates ----------------------------------------------------------------------------

    def show_templates(
        self, templates: list[TemplateInfo], quality: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.templates = templates
        table = self.query_one("#tpl-table", DataTable)
        table.clear()
        for t in templates:
            table.add_row(
                Text(safe(t.template.name, keep_newlines=False)),
                Text(t.category + (" *" if t.reclassified_reason else "")),
                quality_cell((quality or {}).get(t.id)),
                Text(t.id, "dim"),
                key=t.id,
            )
        select = self.query_one("#cmp-template", Select)
        chosen = select.value
        select.set_options(
            (Text(f"{safe(t.template.name, keep_newlines=False)} ({t.category})"), t.id)
            for t in templates
        )
        if chosen != Select.NULL and any(t.id == chosen for t in templates):
            select.value = chosen
        self._show_columns()

    @on(DataTable.RowSelected, "#tpl-table")
    def template_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a registered template: copy it into the form, to start a new one from it."""
        event.stop()
        found = next((t for t in self.templates if t.id == event.row_key.value), None)
        if found is not None:
            self.load_into_form(found.template)

    def load_into_form(self, draft: TemplateDraft) -> None:
        lines = []
        for b in draft.buttons:
            if b.type == "url":
                lines.append(f"url: {b.text} | {b.url}")
            elif b.type == "copy_code":
                lines.append(f"code: {b.text}" + (f" | {b.example}" if b.example else ""))
            elif b.text != STOP_PROMOTIONS:  # added again for marketing templates
                lines.append(f"reply: {b.text}")
        self.query_one("#tpl-name", Input).value = f"{draft.name}_v2"[:64]
        self.query_one("#tpl-category", Select).value = draft.category
        self.query_one("#tpl-header", Input).value = draft.header or ""
        self.query_one("#tpl-body", TextArea).load_text(draft.body)
        self.query_one("#tpl-footer", Input).value = draft.footer or ""
        self.query_one("#tpl-buttons", TextArea).load_text("\n".join(lines))
        self.query_one("#tpl-examples", TextArea).load_text(
            "\n".join(f"{k}={v}" for k, v in draft.examples.items())
        )
        self.query_one("#tpl-name", Input).focus()

    def form_values(self) -> tuple[str, str, str, str, str, str, str]:
        category = self.query_one("#tpl-category", Select).value
        return (
            self.query_one("#tpl-name", Input).value,
            str(category) if category != Select.NULL else "marketing",
            self.query_one("#tpl-header", Input).value,
            self.query_one("#tpl-body", TextArea).text,
            self.query_one("#tpl-footer", Input).value,
            self.query_one("#tpl-buttons", TextArea).text,
            self.query_one("#tpl-examples", TextArea).text,
        )

    def validate_form(self) -> DraftCheck:
        values = self.form_values()
        pristine = not any(v.strip() for v in (values[0], values[3]))
        check = check_draft(*values)
        self.check = check
        problems = self.query_one("#tpl-problems", Static)
        if pristine:
            problems.update(Text("Give the template a name and a body.", "dim"))
        elif check.problems:
            text = Text(f"{len(check.problems)} problem(s):", "bold red", end="")
            for problem in check.problems:
                text.append("\n• ")
                text.append(safe(problem), "red")
            problems.update(text)
        else:
            text = Text("✓ ready to register", "bold green", end="")
            if check.reclassified:
                text.append(f"\nnote: {safe(check.reclassified)}", "yellow")
            problems.update(text)
        problems.set_class(bool(check.problems) and not pristine, "-problems")
        preview = self.query_one("#tpl-preview", Static)
        if check.final and check.preview:
            preview.update(preview_text(check.final, check.preview))
        else:
            preview.update(Text("(the preview appears once the template is valid)", "dim"))
        self.query_one("#tpl-register", Button).disabled = pristine or bool(check.problems)
        return check

    @on(Input.Changed, "#tpl-form Input")
    @on(TextArea.Changed, "#tpl-form TextArea")
    @on(Select.Changed, "#tpl-category")
    def form_changed(self, event: Input.Changed | TextArea.Changed | Select.Changed) -> None:
        event.stop()
        self.validate_form()

    @on(Button.Pressed, "#tpl-register")
    def register_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_register()

    def action_register(self) -> None:
        check = self.validate_form()
        if check.draft is None or check.problems:
            self.notify("Fix the problems listed first.", severity="warning")
            return
        self.register(check.draft)

    @work(exit_on_error=False, group="business-register", exclusive=True)
    async def register(self, draft: TemplateDraft) -> None:
        api = self.app.messenger.api
        info = await self._request("Register template", lambda: api.register_template(draft))
        if info is None:
            return
        note = f" (note: {info.reclassified_reason})" if info.reclassified_reason else ""
        self.notify(
            f"Registered {info.template.name} as {info.id}, {info.category}{note}",
            title="Template",
            markup=False,
        )
        self.show_templates([*[t for t in self.templates if t.id != info.id], info])
        self.load_templates()  # and its quality rating, from the relay

    # --- campaigns ----------------------------------------------------------------------------

    def chosen_template(self) -> TemplateInfo | None:
        value = self.query_one("#cmp-template", Select).value
        return next((t for t in self.templates if t.id == value), None)

    def _show_columns(self) -> None:
        template = self.chosen_template()
        note = self.query_one("#cmp-columns", Static)
        if template is None:
            note.update(Text("Pick a template (register one in the Templates tab).", "dim"))
            return
        columns = ", ".join(["handle", *variable_names(template.template)])
        note.update(Text(f"The audience CSV needs the columns: {safe(columns)}", end=""))

    @on(Select.Changed, "#cmp-template")
    def template_chosen(self, event: Select.Changed) -> None:
        event.stop()
        self._show_columns()

    @on(Button.Pressed, "#cmp-run")
    def run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.start_campaign()

    def start_campaign(self) -> None:
        if self.running:
            self.notify("A campaign is being sent already.", severity="warning")
            return
        template = self.chosen_template()
        raw_path = self.query_one("#cmp-audience", Input).value.strip()
        try:
            if template is None:
                raise ValueError("pick a template first")
            if not raw_path:
                raise ValueError("give the audience CSV file")
            budget_text = self.query_one("#cmp-budget", Input).value
            if not budget_text.strip():
                raise ValueError("give a budget, e.g. 10")
            budget = parse_amount(budget_text)
            send_at = parse_send_at(self.query_one("#cmp-at", Input).value)
        except ValueError as exc:
            self._result(Text(str(exc), "red"))
            return
        name = self.query_one("#cmp-name", Input).value.strip()
        self.running = True
        self.query_one("#cmp-run", Button).disabled = True
        progress = self.query_one("#cmp-progress", ProgressBar)
        progress.update(total=None, progress=0)
        progress.display = True
        self._result(Text("Reading the audience and sealing copies…", "dim"))
        self.send_campaign(template, Path(raw_path).expanduser(), budget, send_at, name)

    def _result(self, text: Text) -> None:
        self.query_one("#cmp-result", Static).update(text)

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#cmp-progress", ProgressBar).update(total=total, progress=done)

    @work(exit_on_error=False, group="business-campaign")
    async def send_campaign(
        self, template: TemplateInfo, path: Path, budget: int, send_at: int | None, name: str
    ) -> None:
        messenger = self.app.messenger
        try:
            audience = await asyncio.to_thread(
                read_audience, path, variable_names(template.template)
            )
            run = await run_campaign(
                messenger.api,
                messenger.profile.keys,
                messenger.profile.handle,
                template,
                audience,
                budget=budget,
                send_at=send_at,
                name=name,
                on_progress=self._progress,
            )
        except (AudienceError, CampaignError) as exc:
            self._result(Text(str(exc), "red"))
            return
        except RelayUnavailable:
            self._result(Text("The relay is unreachable; nothing more was sent.", "red"))
            return
        except RelayError as exc:
            self._result(Text(f"The relay refused the campaign: {exc.message}", "red"))
            return
        finally:
            self.running = False
            self.query_one("#cmp-run", Button).disabled = False
        self.last_run = run
        self._progress(run.submitted, max(run.submitted, 1))
        self._result(run_summary(run, self.money))
        self.notify(
            f"Campaign {run.campaign.id}: {run.accepted} of {run.submitted} copies accepted",
            title="Campaign",
            markup=False,
        )
        self.selected_campaign = run.campaign.id
        self.load_campaigns()
        self.load_budget()

    # --- budget -------------------------------------------------------------------------------

    def show_budget(self, view: BudgetView) -> None:
        self.budget = view
        summary = Text(end="")
        for label, value in (
            ("Available", view.available),
            ("Reserved for campaigns", view.reserved),
            ("Spent", view.spent),
            ("Topped up", view.topped_up),
        ):
            summary.append(f"{label}: ", "bold")
            summary.append(self.money(value))
            summary.append("   ")
        summary.append("\nPrivacy budget: ", "bold")
        summary.append(privacy_left(view.privacy, self.app.time_format))
        summary.append(f"\n{privacy_note(view.privacy)} {MONEY_NOTE}", "dim")
        self.query_one("#budget-summary", Static).update(summary)
        table = self.query_one("#budget-ledger", DataTable)
        table.clear()
        time_format = self.app.time_format
        for line in reversed(view.ledger):
            table.add_row(
                Text(time_format(line.at)),
                Text(line.kind),
                Text(self.money(line.amount), "bold" if line.kind in ("topup", "rebate") else ""),
                Text(str(line.messages)),
                Text(line.campaign_id or "", "dim"),
                Text(one_line(line.note, 60), "dim"),
            )
        if self.campaigns:
            self.show_campaigns(self.campaigns)  # amounts now carry the currency

    @on(Button.Pressed, "#topup")
    @on(Input.Submitted, "#topup-amount")
    def topup_pressed(self, event: Button.Pressed | Input.Submitted) -> None:
        event.stop()
        field = self.query_one("#topup-amount", Input)
        try:
            amount = parse_amount(field.value)
            if amount <= 0:
                raise ValueError("the amount must be more than zero")
        except ValueError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        field.value = ""
        self.top_up(amount)

    @work(exit_on_error=False, group="business-budget")
    async def top_up(self, amount: int) -> None:
        api = self.app.messenger.api
        view = await self._request("Top-up", lambda: api.top_up(amount))
        if view is not None:
            self.show_budget(view)
            self.notify(f"Topped up {self.money(amount)}", markup=False)

    # --- analytics ----------------------------------------------------------------------------

    def show_campaigns(self, campaigns: list[CampaignReport]) -> None:
        self.campaigns = sorted(campaigns, key=lambda c: c.send_at, reverse=True)
        table = self.query_one("#cmp-table", DataTable)
        table.clear()
        time_format = self.app.time_format
        for c in self.campaigns:
            delivered = c.figures.delivered if c.figures else None
            table.add_row(
                Text(safe(c.name or c.id, keep_newlines=False)),
                Text(c.status),
                Text(f"{c.sent:,}"),
                Text(self.money(c.spend)),
                Text(f"{delivered.value:,} ± {delivered.margin:,}")
                if delivered
                else Text("—", "dim"),
                Text(figures_state(c, time_format), "" if c.figures else "dim"),
                key=c.id,
            )
        ids = [c.id for c in self.campaigns]
        if self.selected_campaign not in ids:
            self.selected_campaign = ids[0] if ids else None
        if self.selected_campaign:
            table.move_cursor(row=ids.index(self.selected_campaign), animate=False)
        self.show_detail()

    @on(DataTable.RowHighlighted, "#cmp-table")
    def campaign_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value if event.row_key else None
        if key and key != self.selected_campaign:
            self.selected_campaign = key
            self.show_detail()

    def campaign(self) -> CampaignReport | None:
        return next((c for c in self.campaigns if c.id == self.selected_campaign), None)

    def show_detail(self) -> None:
        detail = self.query_one("#cmp-detail", Static)
        delivery = self.query_one("#chart-delivery", BarChart)
        interactions = self.query_one("#chart-interactions", BarChart)
        report = self.campaign()
        if report is None:
            detail.update(Text("No campaign yet: run one from the Campaigns tab.", "dim"))
            delivery.set_bars([])
            interactions.set_bars([])
            return
        detail.update(campaign_detail(report, self.money, self.app.time_format))
        delivery.set_bars(campaign_bars(report))
        interactions.set_bars(interaction_bars(report), "published with the figures")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "register":
            return self.query_one(TabbedContent).active == "tab-templates"
        return True

    def action_close(self) -> None:
        self.dismiss(None)


def run_summary(run: CampaignRun, money: Callable[[int | None], str]) -> Text:
    text = Text(end="")
    text.append(f"Campaign {run.campaign.id}: ", "bold")
    text.append(f"{run.accepted} of {run.submitted} copies accepted, {run.campaign.status}")
    if run.duplicate:
        text.append(f", {run.duplicate} duplicate")
    for code, n in sorted(run.rejected.items()):
        text.append(f"\n{n} refused: {safe(code)}", "yellow")
    for line, why in run.skipped_rows[:10]:
        text.append(f"\nline {line} skipped: {safe(why)}", "yellow")
    if len(run.skipped_rows) > 10:
        text.append(f"\n… {len(run.skipped_rows) - 10} more rows skipped", "yellow")
    if run.stopped:
        text.append(f"\nstopped: {safe(run.stopped)}", "bold red")
    text.append(f"\nreserved {money(run.campaign.reserved)} of {money(run.campaign.budget)}")
    return text


def campaign_detail(
    report: CampaignReport, money: Callable[[int | None], str], time_format: TimeFormat
) -> Text:
    text = Text(end="")
    text.append(safe(report.name or report.id, keep_newlines=False), "bold")
    text.append(f"  {report.id}  [{report.status}]", "dim")
    if report.stop_reason:
        text.append(f"  stopped: {safe(report.stop_reason)}", "red")
    if report.held_until is not None:
        text.append(
            f"\nheld until {time_format(report.held_until)}: its template is paused because its "
            "quality fell to low (its Quality column in Templates says why)",
            "yellow",
        )
    text.append(
        f"\nsend at {time_format(report.send_at)}  ·  template {report.template_id}  ·  "
        f"{report.category}"
    )
    text.append(
        f"\ntargeted {report.targeted:,}  ·  accepted {report.accepted:,}  ·  "
        f"sent {report.sent:,}  ·  scheduled {report.scheduled:,}  ·  "
        f"cancelled {report.cancelled:,}"
    )
    text.append(
        f"\nspend {money(report.spend)} of budget {money(report.budget)}  ·  reserved "
        f"{money(report.reserved)}  ·  given back {money(report.refunded)}"
    )
    figures = report.figures
    if figures is None:
        text.append("\nFigures: ", "bold")
        text.append(safe(report.figures_note), "yellow" if report.status == "withheld" else "")
        return text
    text.append(f"\nFigures published {time_format(figures.published_at)}", "bold")
    text.append(
        f", with deliberate noise (cost {epsilon(figures.epsilon)} of your privacy budget):"
    )
    text.append(
        f"\n{about(figures.delivered, 'delivered')}  ·  {about(figures.refused, 'refused')}  ·  "
        f"{about(figures.not_delivered, 'not delivered')}"
    )
    no_signal = (
        f", {about(figures.no_signal, 'with no signal')}" if figures.no_signal is not None else ""
    )
    text.append(
        f"\noutcomes estimated from {about(figures.signal_reports, 'anonymous reports')}{no_signal}"
    )
    if figures.rebate:
        text.append(
            f"\nrebate: {money(figures.rebate)} given back for the copies these figures "
            "estimate were not delivered",
            "green",
        )
    return text
