"""One parser for a draft's buttons and examples, the app's and the console's."""

from client.business.drafts import parse_buttons, parse_examples


def test_both_button_syntaxes_read_the_same():
    app, problems = parse_buttons(
        ["url: Shop now | https://acme.example", "code: Copy code | SPRING20", "", "reply: Yes"]
    )
    assert problems == []
    console, problems = parse_buttons(["url:Shop now:https://acme.example", "copy_code:Copy code"])
    assert problems == []
    assert (
        [(b.type, b.text, b.url) for b in app[:1]]
        == [(b.type, b.text, b.url) for b in console[:1]]
        == [("url", "Shop now", "https://acme.example")]
    )
    assert (app[1].type, app[1].example) == ("copy_code", "SPRING20")
    assert (app[2].type, app[2].text) == ("quick_reply", "Yes")


def test_every_bad_line_is_named():
    _, problems = parse_buttons(["reply: Yes | extra", "call: Ring us"], "--button")
    assert problems == [
        "--button 1: reply buttons take only a text",
        "--button 2: start with url:, code: or reply: (url: Shop now | https://…, code: Copy "
        "code | EXAMPLE or reply: Yes please)",
    ]
    examples, problems = parse_examples(["name=Ana", "code"], "--example")
    assert examples == {"name": "Ana"} and problems == [
        "--example 2: write name=value, e.g. name=Ana"
    ]
