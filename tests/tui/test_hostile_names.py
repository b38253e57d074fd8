"""Hostile names and text against the app: one escaping function for everything another party
wrote, a verified badge no name can draw, and a warning for names that look like a verified
business's. Real relay on loopback, real clients, the app under Textual's pilot."""

import unicodedata
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Label

from client.store import Contact, Conversation
from client.tui.app import SealpostApp
from client.tui.text import one_line, plain, safe
from client.tui.widgets.chat_list import ChatRow, row_prompt
from sealpost.commands.output import terminal_safe
from server.embedded import EmbeddedRelay
from tests.conftest import PersonFactory
from tests.helpers import legacy_account
from tests.tui.conftest import SIZE, chat_list, make_app, toasts, until_online, wait_for

# What must never reach the terminal raw: it is obeyed (C0, C1), reorders text (bidi), hides
# text (zero-width, format) or breaks a line where the app did not (U+2028/9).
C1_CSI = "\x9b"
HOSTILE_CHARS = [
    "\x00", "\x07", "\x1b", "\r", "\x7f",  # C0 and DEL
    "\x85", C1_CSI, "\x9d",  # C1: next line, CSI, OSC
    "\u202a", "\u202b", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",  # bidi
    "\u200e", "\u200f", "\u061c",  # direction marks
    "\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad",  # zero-width and soft hyphen
    "\u2028", "\u2029",  # line and paragraph separators
    "\ue000", "\U000e0041",  # private use, tag
]  # fmt: skip

CYRILLIC_ACME = "\u0410\u0421\u041c\u0415 Shoes"  # "ACME Shoes" with Cyrillic capitals


def raw_hostile(text: str) -> list[str]:
    """The hostile characters in ``text`` (drawn text must have none)."""
    found = [ch for ch in text if ch in HOSTILE_CHARS]
    found += [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]
    return [f"U+{ord(ch):04X}" for ch in found if ch != "\n"]


# --- the escaping function ----------------------------------------------------------------


@pytest.mark.parametrize("ch", HOSTILE_CHARS)
def test_safe_makes_every_hostile_character_visible(ch: str) -> None:
    shown = safe(f"a{ch}b")
    assert ch not in shown and shown.startswith("a\\") and shown.endswith("b")
    assert raw_hostile(shown) == []
    assert safe(shown) == shown  # escaping twice changes nothing: it is safe to nest
    assert ch not in one_line(f"a{ch}b") and ch not in terminal_safe(f"a{ch}b")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        (f"{C1_CSI}31m", "\\x9b31m"),
        ("a\u202eb", "a\\u202eb"),
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),
        ("a\u200bb", "a\\u200bb"),
        ("\U000e0041", "\\U000e0041"),
        ("two\nlines", "two\nlines"),
        ("tab\there", "tab    here"),
        ("[bold]x[/bold] [link=https://evil.example]y[/link]", None),  # unchanged, and literal
        ("👨\u200d👩\u200d👧", None),  # a joiner inside an emoji is kept
        ("Zoë 山田 مخبز", None),
    ],
)
def test_safe_table(raw: str, shown: str | None) -> None:
    assert safe(raw) == (raw if shown is None else shown)


def test_markup_stays_literal_and_newlines_go_in_one_line_text() -> None:
    markup = "[bold]x[/bold] [link=https://evil.example]click[/link]"
    assert plain(markup).plain == markup and not plain(markup).spans
    assert safe("a\nb", keep_newlines=False) == "a\\x0ab"
    assert safe("a\u200db") == "a\\u200db"  # a joiner between letters is made visible


def test_overlong_text_is_cut_and_cheap() -> None:
    huge = ("\u202e" + "x" * 99) * 10_000  # a megabyte
    assert len(one_line(huge, 60)) == 60 and one_line(huge, 60).endswith("…")
    assert safe(huge).count("\\u202e") == 10_000


def test_a_chat_row_with_a_hostile_name_is_drawn_escaped() -> None:
    # Only reachable with a store written before the rules; the row draws whatever it is given.
    row = ChatRow(
        peer="mallory", name="ACME\x9b\u202e", business=False, verified=False, unread=1,
        preview="hi\u2028there [b]x[/b]",
    )  # fmt: skip
    drawn = row_prompt(row).plain
    assert raw_hostile(drawn) == [] and "[b]x[/b]" in drawn and "@mallory" in drawn


# --- the app ---------------------------------------------------------------------------------


def screen_text(app: SealpostApp) -> str:
    """Every cell the screen would draw now, toasts included."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def header(app: SealpostApp) -> Text:
    """The header's name line, with its styles."""
    content = app.main.query_one("#peer-name", Label).content
    assert isinstance(content, Text)
    return content


def header_warning(app: SealpostApp) -> str:
    """The header's look-alike warning line, "" when it is hidden."""
    label = app.main.query_one("#peer-warning", Label)
    content = label.content
    return content.plain if label.display and isinstance(content, Text) else ""


def row_text(app: SealpostApp, peer: str) -> str:
    rows = chat_list(app).options
    return next(
        rows.get_option_at_index(i).prompt.plain  # type: ignore[union-attr]
        for i in range(rows.option_count)
        if rows.get_option_at_index(i).id == peer
    )


async def test_a_hostile_directory_name_never_reaches_the_screen(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    """A relay serves names that break the rules (registered before them, or a lying relay):
    toast, chat list and header show the handle instead, and nothing raw is drawn."""
    bob = await make_account("bob", sqlite_relay)
    trudy = legacy_account(sqlite_relay, home, "trudy", f"ACME {C1_CSI}31m\u202eseohS ✔")
    await bob.accept_request("trudy")  # a contact, so her message gets a toast to attack
    try:
        app = make_app(home, "bob")
        async with app.run_test(size=SIZE) as pilot:
            await until_online(app)
            await trudy.send_text("bob", f"pay here{C1_CSI}2J \u202etxet\u2028next [b]x[/b]")
            await wait_for(pilot, lambda: "trudy" in chat_list(app).visible_peers())
            await wait_for(pilot, lambda: any("trudy" in t for t in toasts(app)))
            app.main.open_conversation("trudy")
            await pilot.pause()

            [toast] = [n for n in app._notifications if "trudy" in n.title]
            assert raw_hostile(toast.title) == [] and raw_hostile(toast.message) == []
            assert toast.title == "New message · trudy"
            assert "\\x9b2J" in toast.message and "[b]x[/b]" in toast.message
            assert header(app).plain.startswith("trudy")
            assert "ACME" not in row_text(app, "trudy")
            drawn = screen_text(app)
            assert raw_hostile(drawn) == [], raw_hostile(drawn)
            assert "seohS" not in drawn and "✔" not in drawn
    finally:
        await trudy.aclose()


async def test_a_hostile_name_pinned_by_an_older_version_is_shown_by_handle(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    bob = await make_account("bob", sqlite_relay)
    hostile = f"ACME Shoes ✔{C1_CSI}\u2066"
    bob.store.save_contact(
        Contact(handle="oldie", kind="person", display_name=hostile, sign_key="A", box_key="A")
    )
    with bob.store.session() as s:
        s.add(Conversation(peer="oldie", display_name=hostile, last_at=1))
        s.commit()
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "oldie" in chat_list(app).visible_peers())
        app.main.open_conversation("oldie")
        await pilot.pause()
        app.set_notify_mode("oldie", "bell")
        await pilot.pause()
        assert header(app).plain.startswith("oldie")
        assert row_text(app, "oldie").startswith("oldie")
        assert all("ACME" not in t for t in toasts(app))
        assert raw_hostile(screen_text(app)) == []


async def test_the_verified_badge_is_drawn_apart_and_look_alikes_are_flagged(
    sqlite_relay: EmbeddedRelay, make_account: PersonFactory, home: Path
) -> None:
    """The name ACME Shoes in Cyrillic capitals, and "ACME Shoes Support" under another handle,
    next to the verified ACME Shoes the person already wrote to."""
    bob = await make_account("bob", sqlite_relay)
    await make_account("acme", sqlite_relay, business=True, display_name="ACME Shoes")
    cyrillic = await make_account("mallory", sqlite_relay, display_name=CYRILLIC_ACME)
    latin = await make_account("trudy", sqlite_relay, display_name="ACME Shoes Support")
    await bob.send_text("acme", "where is my order?")  # pins acme: a verified contact
    app = make_app(home, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until_online(app)
        await cyrillic.send_text("bob", "Your order is held: pay the customs fee")
        await latin.send_text("bob", "Support here, log in at acme-help.example")
        await wait_for(pilot, lambda: {"mallory", "trudy"} <= set(chat_list(app).visible_peers()))
        warning = "looks like ACME Shoes (@acme) — not the same account"

        for peer in ("mallory", "trudy"):
            assert warning in row_text(app, peer)
            assert f"@{peer}" in row_text(app, peer)  # a non-contact's handle is always shown
            app.main.open_conversation(peer)
            await pilot.pause()
            assert warning in header_warning(app) and f"@{peer}" in header(app).plain
            assert "verified" not in header(app).plain
            assert warning in screen_text(app)  # on its own line: nothing pushes it away
        # Strangers' first messages are message requests: listed apart, and never a toast.
        assert {r.peer for r in chat_list(app).rows if r.request} == {"mallory", "trudy"}
        assert not [t for t in toasts(app) if "allory" in t or "trudy" in t]

        # The genuine business: the badge, and no warning.
        assert warning not in row_text(app, "acme")
        app.main.open_conversation("acme")
        await pilot.pause()
        shown = header(app)
        assert header_warning(app) == ""
        assert "looks like" not in screen_text(app).split("\n", 2)[1]  # the header's row
        badges = [shown.plain[s.start : s.end] for s in shown.spans if "reverse" in str(s.style)]
        assert any("verified" in b for b in badges), shown.spans
        # Drawn apart from the name: no span over the name's own characters carries the badge.
        name_start = shown.plain.index("ACME Shoes")
        name_end = name_start + len("ACME Shoes")
        reversed_spans = [s for s in shown.spans if "reverse" in str(s.style)]
        assert all(s.end <= name_start or s.start >= name_end for s in reversed_spans)
        assert "@acme" in shown.plain
