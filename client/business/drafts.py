"""Reading a template draft's buttons and example values as people write them: one parser for
the app's Business tools (a line each) and the console (`--button`, `--example`), with the
same syntax and the same errors.

A button is ``KIND: TEXT`` or ``KIND: TEXT | EXTRA``: ``url: Shop now | https://acme.example``,
``code: Copy code | SPRING20`` (an example code), ``reply: Yes please``. The console's older
``url:Shop now:https://acme.example`` is read too. An example is ``name=value``.
"""

from pydantic import ValidationError

from shared.templates import Button

BUTTON_KINDS = {
    "url": "url",
    "code": "copy_code",
    "copy_code": "copy_code",
    "reply": "quick_reply",
    "quick_reply": "quick_reply",
}
BUTTON_SYNTAX = "url: Shop now | https://…, code: Copy code | EXAMPLE or reply: Yes please"


def pydantic_problems(exc: ValidationError, where: str = "") -> list[str]:
    """A validation error's problems, one sentence each, prefixed with ``where``."""
    out = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if field == "name" and error["type"] == "string_pattern_mismatch":
            message = "use 1 to 64 lowercase letters, digits and underscores"
        out.append(f"{where}{field + ': ' if field else ''}{message}")
    return out


def parse_button(line: str, where: str) -> tuple[Button | None, list[str]]:
    """One button, or the problems with it (each starting with ``where``)."""
    kind_text, sep, rest = line.strip().partition(":")
    kind = BUTTON_KINDS.get(kind_text.strip().lower(), "")
    if not (sep and kind):
        return None, [f"{where}start with url:, code: or reply: ({BUTTON_SYNTAX})"]
    if "|" in rest:
        label, _, extra = (part.strip() for part in rest.partition("|"))
    elif kind == "url" and ":http" in rest:  # the console's url:TEXT:URL
        label, _, url = rest.partition(":http")
        label, extra = label.strip(), "http" + url.strip()
    else:
        label, extra = rest.strip(), ""
    fields: dict[str, object] = {"type": kind, "text": label}
    if kind == "url":
        fields["url"] = extra or None
    elif kind == "copy_code" and extra:
        fields["example"] = extra
    elif extra:
        return None, [f"{where}reply buttons take only a text"]
    try:
        return Button.model_validate(fields), []
    except ValidationError as exc:
        return None, pydantic_problems(exc, where)


def parse_buttons(lines: list[str], what: str = "button line") -> tuple[list[Button], list[str]]:
    """Buttons from lines (blank ones skipped), with every problem, numbered."""
    buttons: list[Button] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        button, found = parse_button(line, f"{what} {number}: ")
        problems += found
        if button is not None:
            buttons.append(button)
    return buttons, problems


def parse_examples(
    lines: list[str], what: str = "example line"
) -> tuple[dict[str, str], list[str]]:
    """``name=value`` lines as example values, with every malformed one named."""
    examples: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            problems.append(f"{what} {number}: write name=value, e.g. name=Ana")
            continue
        examples[name.strip()] = value.strip()
    return examples, problems
