"""Settings: the marketing level (enforced by the relay), this business, and local options."""

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static, Switch

from client.tui.state import NOTIFY_MODES, NotifyMode
from client.tui.text import follow_cursor_blink, safe
from shared.api import Preferences, SetLevel

LEVELS = [
    ("all", "All marketing"),
    ("chatted", "Only from businesses I have chatted with"),
    ("weekly", "At most N marketing messages a week"),
    ("none", "No marketing at all"),
]

NOTIFY_CHOICES: list[tuple[NotifyMode, str]] = [
    ("toast", "Toast (a note in the corner naming the sender; the default)"),
    ("bell", "Toast and terminal bell"),
    ("off", "Off: no toast, no bell; the unread count still shows"),
]

SIGNALS_HELP = (
    "When on, the one anonymous report sent per campaign says, with random noise, whether you "
    "read, clicked or dismissed it (when off, it is pure noise). Blocking and stopping "
    "promotions are explicit choices: they still reach the relay as your preferences."
)

NOTIFY_HELP = (
    "Marketing messages are never silent: they always raise a toast labelled 'Marketing', "
    "unless you set that conversation to Off here yourself."
)


class SettingsScreen(ModalScreen[None]):
    """Changes go to the relay at once (through the app's workers); Escape closes."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(
        self,
        prefs: Preferences | None,
        business: str | None,
        bell: bool,
        *,
        peer: str | None = None,
        peer_name: str | None = None,
        notify: NotifyMode = "toast",
        signals: bool = True,
    ) -> None:
        super().__init__(classes="sealpost-modal")
        self.prefs = prefs
        self.business = business
        self.bell = bell
        self.peer = peer
        self.peer_name = peer_name or peer
        self.notify_mode = notify
        self.signals = signals

    def compose(self) -> ComposeResult:
        prefs = self.prefs
        level = prefs.level if prefs else "all"
        with Vertical(classes="modal-body", id="settings"):
            yield Label("Settings", classes="modal-title")
            with VerticalScroll():
                yield Label("Marketing level (the relay enforces it)", classes="section")
                if prefs is None:
                    yield Static(Text("Offline: current choices unknown until the relay answers."))
                with RadioSet(id="level"):
                    for value, title in LEVELS:
                        yield RadioButton(title, value=value == level, id=f"level-{value}")
                with Horizontal(classes="setting-row"):
                    yield Label("N per week:")
                    yield Input(
                        str(prefs.weekly_limit)
                        if prefs and prefs.weekly_limit is not None
                        else "3",
                        id="weekly-limit",
                        type="integer",
                        compact=True,
                    )
                    yield Button("Apply level", id="apply-level", compact=True, variant="primary")
                if self.business:
                    blocked = bool(prefs and self.business in prefs.blocked)
                    stopped = bool(prefs and self.business in prefs.promotions_stopped)
                    yield Label(
                        Text(f"This business: @{safe(self.business)}", end=""), classes="section"
                    )
                    with Horizontal(classes="setting-row"):
                        yield Switch(blocked, id="blocked")
                        yield Label("Blocked (no messages at all)")
                    with Horizontal(classes="setting-row"):
                        yield Switch(stopped, id="promotions-stopped")
                        yield Label("Promotions stopped (utility messages still arrive)")
                if self.peer:
                    yield Label(
                        Text(
                            f"Notifications for {safe(self.peer_name, keep_newlines=False)} "
                            f"(@{safe(self.peer)}), on this device",
                            end="",
                        ),
                        classes="section",
                    )
                    with RadioSet(id="notify"):
                        for value, title in NOTIFY_CHOICES:
                            yield RadioButton(
                                title, value=value == self.notify_mode, id=f"notify-{value}"
                            )
                    yield Static(Text(NOTIFY_HELP, "italic"), classes="setting-note")
                yield Label("Privacy signals", classes="section")
                with Horizontal(classes="setting-row"):
                    yield Switch(self.signals, id="signals")
                    yield Label("Send optional interaction signals")
                yield Static(Text(SIGNALS_HELP, "italic"), classes="setting-note")
                yield Label("On this device", classes="section")
                with Horizontal(classes="setting-row"):
                    yield Switch(self.bell, id="bell")
                    yield Label("Terminal bell on every new message (except chats set to Off)")
                with Horizontal(classes="setting-row"):
                    yield Switch(self.app.theme != "textual-light", id="dark")
                    yield Label("Dark theme")
            yield Button("Close", id="close")

    def on_mount(self) -> None:
        follow_cursor_blink(self)

    def selected_level(self) -> SetLevel | None:
        radio = self.query_one("#level", RadioSet).pressed_button
        value = (radio.id or "level-all").removeprefix("level-") if radio else "all"
        if value != "weekly":
            return SetLevel(level=value)  # type: ignore[arg-type]
        raw = self.query_one("#weekly-limit", Input).value.strip()
        if not raw.isdigit() or int(raw) > 1000:
            self.notify("N per week must be a whole number from 0 to 1000", severity="error")
            return None
        return SetLevel(level="weekly", weekly_limit=int(raw))

    @on(Button.Pressed, "#apply-level")
    def apply_level(self) -> None:
        level = self.selected_level()
        if level is not None:
            self.app.set_level(level)  # type: ignore[attr-defined]

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss(None)

    @on(Switch.Changed, "#blocked")
    def toggle_block(self, event: Switch.Changed) -> None:
        if self.business:
            self.app.set_choice("blocked", self.business, event.value)  # type: ignore[attr-defined]

    @on(Switch.Changed, "#promotions-stopped")
    def toggle_promotions(self, event: Switch.Changed) -> None:
        if self.business:
            self.app.set_choice(  # type: ignore[attr-defined]
                "promotions-stopped", self.business, event.value
            )

    @on(RadioSet.Changed, "#notify")
    def notify_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        mode = (event.pressed.id or "").removeprefix("notify-")
        if self.peer and mode in NOTIFY_MODES and mode != self.notify_mode:
            self.notify_mode = mode  # type: ignore[assignment]
            self.app.set_notify_mode(self.peer, mode)  # type: ignore[attr-defined]

    @on(Switch.Changed, "#signals")
    def toggle_signals(self, event: Switch.Changed) -> None:
        if event.value != self.signals:
            self.signals = event.value
            self.app.set_signals_enabled(event.value)  # type: ignore[attr-defined]

    @on(Switch.Changed, "#bell")
    def toggle_bell(self, event: Switch.Changed) -> None:
        self.app.set_bell(event.value)  # type: ignore[attr-defined]

    @on(Switch.Changed, "#dark")
    def toggle_dark(self, event: Switch.Changed) -> None:
        self.app.set_theme_name("textual-dark" if event.value else "textual-light")  # type: ignore[attr-defined]
