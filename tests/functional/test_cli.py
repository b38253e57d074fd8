"""The scriptable commands testers use, run as real processes against a real relay."""

import json
import re
import stat
import subprocess
import sys

import pytest

from tests.helpers import sealpost


def test_account_send_inbox_round_trip(sqlite_relay, home):
    url = sqlite_relay.url
    created = json.loads(
        sealpost(
            home,
            "account",
            "create",
            "--profile",
            "alice",
            "--handle",
            "alice",
            "--relay",
            url,
            "--country",
            "+39",
            "--json",
        ).stdout
    )
    assert created["handle"] == "alice" and created["kind"] == "person"
    sealpost(
        home,
        "account",
        "create",
        "--profile",
        "shop",
        "--handle",
        "acme",
        "--relay",
        url,
        "--business",
        "--name",
        "ACME Shoes",
    )
    sealpost(
        home,
        "account",
        "create",
        "--profile",
        "bob",
        "--handle",
        "bob",
        "--relay",
        url,
        "--country",
        "+44",
    )
    keys = home / "profiles" / "alice" / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600

    sent = json.loads(
        sealpost(
            home,
            "send",
            "--profile",
            "alice",
            "--to",
            "bob",
            "ciao [bold]Bob[/bold] \x1b[31mred",
            "--json",
        ).stdout
    )
    assert sent["status"] == "sent"
    inbox = json.loads(sealpost(home, "inbox", "--profile", "bob", "--json").stdout)
    assert inbox["synced"] == {"new": 1, "duplicates": 0, "quarantined": 0}
    [convo] = inbox["conversations"]
    assert convo["peer"] == "alice"
    assert [(m["text"], m["status"]) for m in convo["messages"]] == [
        ("ciao [bold]Bob[/bold] \x1b[31mred", "verified")
    ]

    human = sealpost(home, "inbox", "--profile", "bob", "--no-sync").stdout
    assert "\x1b" not in human and "\\x1b[31mred" in human
    listed = json.loads(sealpost(home, "account", "list", "--json").stdout)
    assert listed == ["alice", "bob", "shop"]


def test_clear_errors(sqlite_relay, home):
    missing = sealpost(home, "inbox", "--profile", "ghost", check=False)
    assert missing.returncode == 1
    assert "No profile 'ghost'" in missing.stderr and "account create" in missing.stderr

    no_country = sealpost(
        home,
        "account",
        "create",
        "--profile",
        "p",
        "--handle",
        "pat",
        "--relay",
        sqlite_relay.url,
        check=False,
    )
    assert no_country.returncode == 2 and "--country" in no_country.stderr

    sealpost(
        home,
        "account",
        "create",
        "--profile",
        "alice",
        "--handle",
        "alice",
        "--relay",
        sqlite_relay.url,
        "--country",
        "+39",
    )
    taken = sealpost(
        home,
        "account",
        "create",
        "--profile",
        "alice2",
        "--handle",
        "alice",
        "--relay",
        sqlite_relay.url,
        "--country",
        "+39",
        check=False,
    )
    assert taken.returncode == 1 and "handle_taken" in taken.stderr
    assert not (home / "profiles" / "alice2").exists()  # nothing half-written

    unknown = sealpost(home, "send", "--profile", "alice", "--to", "nobody", "hi", check=False)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr

    down = sealpost(
        home,
        "account",
        "create",
        "--profile",
        "x",
        "--handle",
        "xavier",
        "--relay",
        "http://127.0.0.1:9",
        "--country",
        "+1",
        check=False,
    )
    assert down.returncode == 3 and "Is the relay running?" in down.stderr


def test_help_teaches(home):
    top = sealpost(home, "--help").stdout
    for command in ("relay", "account", "send", "inbox", "demo", "quick tour"):
        assert command in top
    assert "example" in sealpost(home, "send", "--help").stdout


def test_demo_runs_end_to_end(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sealpost", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Alice: Hi Bob!" in result.stdout
    assert "alice got [Marketing] Hi Signora Rossi" in result.stdout
    assert "carol: nothing arrived" in result.stdout
    # A promotion smuggled into a utility variable is hidden by carol's own choice, with why.
    assert (
        "carol's device hid it (hidden_by_choice): hidden: promotional text in a utility "
        "message, and you stopped promotions from acme" in result.stdout
    )
    # Three days on, by the relay's clock: acme's figures, once, each with its margin.
    assert "3 copies sent and 0.2585 EUR spent, exactly" in result.stdout
    for what in ("delivered", "refused", "not delivered"):
        assert re.search(rf"about -?[\d,]+ {what} \(± [\d,]+\)", result.stdout), what
    assert "privacy budget: 0.8 of 1.0 left this 30 days — 4 more campaign reports" in result.stdout
    assert "none found" in result.stdout


def test_send_refuses_an_empty_message_takes_an_at_handle_and_inbox_works_offline(tmp_path):
    from server.embedded import EmbeddedRelay
    from tests.conftest import relay_settings

    home = tmp_path / "home"
    with EmbeddedRelay(relay_settings(f"sqlite:///{tmp_path}/relay.db")) as relay:
        for handle in ("alice", "bob"):
            sealpost(
                home,
                "account",
                "create",
                "--profile",
                handle,
                "--handle",
                handle,
                "--relay",
                relay.url,
                "--country",
                "+39",
            )
        empty = sealpost(home, "send", "--profile", "alice", "--to", "bob", "  ", check=False)
        assert empty.returncode == 2 and "empty" in empty.stderr
        sent = sealpost(home, "send", "--profile", "alice", "--to", "@bob", "hi", "--json")
        assert json.loads(sent.stdout)["to"] == "bob"  # "@bob" as people write it
        typo = sealpost(home, "send", "--profile", "alice", "--to", "bobb", "hi", check=False)
        assert typo.returncode == 1 and "no account @bobb" in typo.stderr
        assert "did you mean @bob?" in typo.stderr
        chats = json.loads(sealpost(home, "inbox", "--profile", "alice", "--json").stdout)
        assert [c["peer"] for c in chats["conversations"]] == ["bob"]  # no "bobb" left behind
        sealpost(home, "inbox", "--profile", "bob")
    # The relay is gone: the inbox still shows what this device holds, and says why no more.
    offline = sealpost(home, "inbox", "--profile", "bob", check=False)
    assert offline.returncode == 0
    assert "hi" in offline.stdout
    assert "relay unreachable" in offline.stderr and "local store" in offline.stderr
    as_json = json.loads(sealpost(home, "inbox", "--profile", "bob", "--json").stdout)
    assert as_json["synced"] is None and as_json["offline"]


def test_a_profile_knows_the_deployments_other_relays(sqlite_relay, home):
    from tests.helpers import run_cli

    other = "http://10.9.9.9:8700/"
    run_cli(
        home,
        *("account", "create", "--profile", "shop", "--handle", "acme", "--business"),
        *("--relay", sqlite_relay.url, "--other-relay", other),
    )
    shown = json.loads(run_cli(home, "account", "relays", "--profile", "shop", "--json").stdout)
    assert shown == {"relay_url": sqlite_relay.url, "other_relays": ["http://10.9.9.9:8700"]}
    run_cli(home, "account", "relays", "--profile", "shop", "--add", "http://10.9.9.8:8700")
    run_cli(home, "account", "relays", "--profile", "shop", "--remove", other)
    listed = run_cli(home, "account", "relays", "--profile", "shop").stdout.splitlines()
    assert listed == [
        f"{sqlite_relay.url}  (first)",
        "http://10.9.9.8:8700  (when the ones above cannot be reached)",
    ]
    missing = run_cli(home, "account", "relays", "--profile", "nobody", check=False)
    assert missing.returncode == 2 and "nobody" in missing.stderr


# Each bad input: its arguments, the exit status, and what the error says. Run as people
# run it and with --json, where the same error is JSON on stdout.
BAD_INPUTS = [
    (
        ["account", "create", "--profile", "c", "--handle", "carol", "--country", "39"],
        2,
        "country '39' is not valid: a country calling code is + and 1 to 4 digits",
    ),
    (
        [
            "account",
            "create",
            "--profile",
            "c",
            "--handle",
            "carol",
            "--country",
            "+39",
            "--relay",
            "notaurl",
        ],
        2,
        "'notaurl' is not a relay URL",
    ),
    (
        ["account", "create", "--profile", "c", "--handle", "Carol!", "--country", "+39"],
        2,
        "'Carol!' is not a valid handle",
    ),
    (
        [
            "account",
            "create",
            "--profile",
            "c",
            "--handle",
            "carol",
            "--country",
            "+39",
            "--relay",
            "http://127.0.0.1:9",
        ],
        3,
        "Is the relay running?",
    ),
    (["send", "--profile", "ghost", "--to", "bob", "hi"], 1, "No profile 'ghost'"),
    (["send", "--profile", "alice", "--to", "bob", "   "], 2, "empty"),
    (["send", "--profile", "alice", "--to", "bobb", "hi"], 1, "did you mean @bob?"),
    (["send", "--profile", "alice", "--to", "@bob"], 2, "the following arguments are required"),
    # Templates: the app's parser and its errors (client/business/drafts.py).
    (
        [
            *("business", "--profile", "alice", "template", "add", "--name", "offer"),
            *("--category", "marketing", "--body", "Hi {{name}}", "--example", "name"),
        ],
        2,
        "--example 1: write name=value, e.g. name=Ana",
    ),
    (
        [
            *("business", "--profile", "alice", "template", "add", "--name", "offer"),
            *("--category", "marketing", "--body", "Hi", "--button", "call: Ring us"),
        ],
        2,
        "--button 1: start with url:, code: or reply:",
    ),
    (
        [
            *("business", "--profile", "alice", "template", "add", "--name", "Spring Offer"),
            *("--category", "marketing", "--body", "Hi"),
        ],
        2,
        "name: use 1 to 64 lowercase letters, digits and underscores",
    ),
]


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):  # type: ignore[no-untyped-def]
    from server.embedded import EmbeddedRelay
    from tests.conftest import relay_settings
    from tests.helpers import run_cli

    root = tmp_path_factory.mktemp("cli-table")
    with EmbeddedRelay(relay_settings(f"sqlite:///{root}/relay.db")) as relay:
        for handle in ("alice", "bob"):
            run_cli(
                root / "home",
                *("account", "create", "--profile", handle, "--handle", handle),
                *("--relay", relay.url, "--country", "+39"),
            )
        run_cli(root / "home", "send", "--profile", "alice", "--to", "bob", "hello")  # a contact
        yield root / "home", relay.url


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("args", "status", "says"), BAD_INPUTS, ids=lambda v: None)
def test_each_bad_input_has_its_human_error_and_exit_status(
    two_people, args, status, says, as_json
):  # type: ignore[no-untyped-def]
    from tests.helpers import run_cli

    home, relay_url = two_people
    if "--relay" not in args and args[:2] == ["account", "create"]:
        args = [*args, "--relay", relay_url]
    result = run_cli(home, *args, *(["--json"] if as_json else []), check=False)
    assert result.returncode == status, (result.stdout, result.stderr)
    if as_json:
        error = json.loads(result.stdout)["error"]
        assert says in error["message"] and error["code"]
        assert "error:" not in result.stderr
    else:
        assert says in result.stderr and result.stdout == ""
