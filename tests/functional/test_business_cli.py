"""The business console and a person's choices, as a tester scripts them."""

import json
import math
import re

import pytest

from sealpost.commands.desk import FINGERPRINT_ENV
from tests.helpers import run_cli

# "about 2 delivered (± 75)": a published figure always comes with its margin.
ABOUT = r"about -?[\d,]+ {} \(± [\d,]+\)"


sealpost = run_cli  # every command in this process


def test_campaign_from_the_command_line(clocked_relay, clock, home, tmp_path, monkeypatch):
    url = clocked_relay.url
    relay_db = clocked_relay.settings.db
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
    for name, country in (("ana", "+39"), ("ben", "+44"), ("cyd", "+49")):
        sealpost(
            home,
            "account",
            "create",
            "--profile",
            name,
            "--handle",
            name,
            "--relay",
            url,
            "--country",
            country,
        )
    top = json.loads(
        sealpost(home, "business", "--profile", "shop", "budget", "top-up", "5", "--json").stdout
    )
    assert top["available"] == 5_000_000

    bad = sealpost(
        home,
        "business",
        "--profile",
        "shop",
        "template",
        "add",
        "--name",
        "x",
        "--category",
        "marketing",
        "--body",
        "Hi {{name}} and {{ oops }}",
        check=False,
    )
    assert bad.returncode == 1
    assert "[malformed_placeholder]" in bad.stderr and "[missing_example]" in bad.stderr

    added = json.loads(
        sealpost(
            home,
            "business",
            "template",
            "add",
            "--profile",
            "shop",
            "--name",
            "spring_offer",
            "--category",
            "utility",
            "--body",
            "Hi {{name}}, use {{code}} for 20% off!",
            "--example",
            "name=Ana",
            "--example",
            "code=SPRING20",
            "--button",
            "url:Shop now:https://acme.example/shop",
            "--json",
        ).stdout
    )
    assert added["category"] == "marketing" and "20% off" in added["reclassified_reason"]

    sealpost(home, "prefs", "--profile", "ben", "block", "acme")
    shown = json.loads(sealpost(home, "prefs", "--profile", "ben", "show", "--json").stdout)
    assert shown["blocked"] == ["acme"]
    # What ben's anonymous reports have cost him: kept on his device, shown with the choices.
    budget = shown["signal_budget"]
    assert budget["signals"] == "on" and budget["by_business"] == {}
    assert budget["epsilon_per_report"] == pytest.approx(math.log(3))
    assert budget["today"] == {"spent": 0.0, "cap": pytest.approx(4 * math.log(3))}
    text = sealpost(home, "prefs", "--profile", "ben", "show").stdout
    assert "interaction reports: signals on, ε = 1.10 a report; spent today 0.0 of 4.4" in text

    csv = tmp_path / "customers.csv"
    csv.write_text(
        "handle,name,code,city\nana,Ana Rossi,ANA-7731,Rome\nben,Ben,BEN-1,Leeds\n"
        "not a handle,X,Y,Z\ncyd,Cy,CY-9,Berlin\n"
    )
    created = sealpost(
        home,
        "business",
        "--profile",
        "shop",
        "campaign",
        "create",
        "--template",
        "spring_offer",
        "--audience",
        str(csv),
        "--budget",
        "1",
        "--json",
    )
    assert f"{csv}:4:" in created.stderr and "city" in created.stderr
    result = json.loads(created.stdout)
    assert result["accepted"] == 3 and result["skipped_rows"][0][0] == 4
    campaign_id = result["campaign"]["id"]
    # Journalled as it went, and finished: there is nothing to resume.
    resumed = sealpost(home, "business", "--profile", "shop", "campaign", "resume", campaign_id)
    assert "0 copies newly accepted, 3 already held by the relay" in resumed.stdout
    nothing = sealpost(
        home,
        "business",
        "--profile",
        "shop",
        "campaign",
        "resume",
        "cmp_0000000000000000",
        check=False,
    )
    assert (
        nothing.returncode == 1 and "no journal of campaign cmp_0000000000000000" in nothing.stderr
    )

    inbox = sealpost(home, "inbox", "--profile", "ana").stdout
    assert "[Marketing] Hi Ana Rossi, use ANA-7731 for 20% off!" in inbox

    # The operator sets up the desk; the person's client pins its fingerprint.
    made = sealpost(
        home, "desk", "create", "--db", relay_db, "--profile", "desk", "--relay", url, "--json"
    )
    monkeypatch.setenv(FINGERPRINT_ENV, json.loads(made.stdout)["fingerprint"])
    reported = sealpost(home, "report", "--profile", "ana", "acme", "--yes").stdout
    assert "ANA-7731" in reported and "report sent" in reported
    desk = json.loads(sealpost(home, "inbox", "--profile", "desk", "--json").stdout)
    [sent] = desk["conversations"][0]["messages"]
    body = json.loads(sent["text"])["report"]
    assert body["business"] == "acme" and "ANA-7731" in body["messages"][0]["text"]
    # Scripts get the same as JSON (and must say --yes: there is no prompt to answer).
    refused = sealpost(home, "report", "--profile", "ana", "@acme", "--json", check=False)
    assert refused.returncode == 2
    assert "--yes" in json.loads(refused.stdout)["error"]["message"]  # as JSON: it asked for it
    again = json.loads(
        sealpost(home, "report", "--profile", "ana", "@acme", "--yes", "--json").stdout
    )
    assert again["business"] == "acme" and again["status"] == "sent"
    assert "ANA-7731" in again["messages"][0]["text"]
    assert "no conversations" in sealpost(home, "inbox", "--profile", "ben").stdout
    sealpost(home, "inbox", "--profile", "cyd")

    def status() -> dict:
        return json.loads(
            sealpost(
                home, "business", "--profile", "shop", "campaign", "status", campaign_id, "--json"
            ).stdout
        )

    # What acme did and paid is exact: every copy sent is charged, whatever each person chose
    # (Italy + United Kingdom + Germany marketing), and nothing says who took or refused one.
    sent = status()
    assert (sent["status"], sent["sent"], sent["figures"]) == ("sent", 3, None)
    assert sent["spend"] == 69_100 + 52_900 + 136_500
    assert not {"delivered", "refused", "refused_by_reason", "interactions"} & set(sent)
    human = sealpost(home, "business", "--profile", "shop", "campaign", "status", campaign_id)
    assert "sent 3" in human.stdout and "figures: due at" in human.stdout
    # Its quality and tier beside it, with the room left (tiers are off on this relay).
    assert "quality: your business medium; tier 1 of 5" in human.stdout
    assert "247 of 250 people left in 24 hours (not enforced by this relay)" in human.stdout
    assert "no published figures yet: rated medium" in human.stdout
    budget = sealpost(home, "business", "--profile", "shop", "budget", "show").stdout
    assert "charge" in budget and "reserve" in budget and "charged when it is sent" in budget
    assert "privacy budget: 1.0 of 1.0 left this 30 days — 5 more campaign reports" in budget

    # Past the due time the relay publishes the figures, once, with noise; a rebate gives back
    # the copies they estimate were not delivered.
    clock.advance(sent["figures_at"] - clock.now_ms())
    clocked_relay.app.state.dispatcher.run_once()
    done = status()
    figures = done["figures"]
    assert done["status"] == "done" and figures["epsilon"] == 0.2
    assert (done["refunded"], done["spend"]) == (
        figures["rebate"],
        sent["spend"] - figures["rebate"],
    )
    human = sealpost(home, "business", "--profile", "shop", "campaign", "status", campaign_id)
    delivered = figures["delivered"]
    assert f"about {delivered['value']:,} delivered (± {delivered['margin']:,})" in human.stdout
    for what in ("refused", "not delivered", "anonymous reports"):
        assert re.search(ABOUT.format(what), human.stdout), what
    assert ("rebate: " in human.stdout) == (figures["rebate"] > 0)
    listed = sealpost(home, "business", "--profile", "shop", "campaign", "list").stdout
    assert re.search(ABOUT.format("delivered"), listed)
    view = json.loads(
        sealpost(home, "business", "--profile", "shop", "budget", "show", "--json").stdout
    )
    rebates = [line["amount"] for line in view["ledger"] if line["kind"] == "rebate"]
    assert rebates == ([figures["rebate"]] if figures["rebate"] else [])
    assert view["privacy"]["campaigns_left"] == 4
    budget = sealpost(home, "business", "--profile", "shop", "budget", "show").stdout
    assert "privacy budget: 0.8 of 1.0 left this 30 days — 4 more campaign reports" in budget
    assert "Italy" in sealpost(home, "business", "--profile", "shop", "pricing").stdout

    past = sealpost(
        home,
        "business",
        "--profile",
        "shop",
        "campaign",
        "create",
        "--template",
        "spring_offer",
        "--audience",
        str(csv),
        "--budget",
        "1",
        "--at",
        "2020-01-01T00:00",
        check=False,
    )
    assert past.returncode == 1 and "in the past" in past.stderr
    negative = sealpost(
        home,
        "business",
        "--profile",
        "shop",
        "campaign",
        "create",
        "--template",
        "spring_offer",
        "--audience",
        str(csv),
        "--budget",
        "-3",
        check=False,
    )
    assert negative.returncode == 2 and "zero or more" in negative.stderr
    unknown = sealpost(
        home,
        "business",
        "--profile",
        "shop",
        "campaign",
        "create",
        "--template",
        "nope",
        "--audience",
        str(csv),
        "--budget",
        "1",
        check=False,
    )
    assert unknown.returncode == 1 and "no template 'nope'" in unknown.stderr
