"""Message templates: the rules the relay registers them by and the client previews them with.

A business registers a template (texts with ``{{name}}`` placeholders, buttons, a category) in
the clear; each message then carries only the template's hash and the personal variables, sealed.
The relay and the client import the same rules so that what the client shows as valid is what the
relay accepts, and both render a template the same way.
"""

import hashlib
import re
import unicodedata
from typing import Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.encoding import canonical_json

MAX_TEMPLATES_PER_BUSINESS = 250
MAX_BODY_CHARS = 1024
MAX_HEADER_CHARS = 60
MAX_FOOTER_CHARS = 60
MAX_BUTTONS = 10
MAX_URL_BUTTONS = 2
MAX_COPY_CODE_BUTTONS = 1
MAX_BUTTON_TEXT_CHARS = 25
MAX_URL_CHARS = 2000
MAX_COPY_CODE_EXAMPLE_CHARS = 15

# Text of the quick reply every marketing template carries, so recipients can always opt out.
STOP_PROMOTIONS = "Stop promotions"
DEFAULT_COPY_VARIABLE = "code"

ButtonType = Literal["quick_reply", "url", "copy_code"]
# The template subset of shared.envelope.Category ("service" is free-form chat, not a template).
Category = Literal["marketing", "utility", "authentication"]

PLACEHOLDER_NAME_PATTERN = r"[a-z_][a-z0-9_]{0,31}"
# One well-formed placeholder. The lookarounds keep "{{{name}}}" from counting; nesting such as
# "{{a {{b}} c}}" still needs the scanner below, so use placeholders() rather than finditer.
PLACEHOLDER_RE = re.compile(r"(?<!\{)\{\{(" + PLACEHOLDER_NAME_PATTERN + r")\}\}(?!\})")
_NAME_RE = re.compile(PLACEHOLDER_NAME_PATTERN)
# Only doubled braces are template syntax; a single "{" or "}" is plain text.
_BRACE_RUN_RE = re.compile(r"\{{2,}|\}{2,}")
_URL_RE = re.compile(r"^https?://\S+$")

_NAME_RULE = (
    "lowercase letters, digits and underscores, starting with a letter or underscore "
    "(at most 32 characters)"
)


class Button(BaseModel):
    """A button under the message.

    ``url`` belongs to url buttons only. ``variable`` and ``example`` belong to copy_code buttons
    only: the button copies the value of the sealed variable ``variable`` (default "code"), and
    ``example`` is a sample code shown to reviewers.
    """

    model_config = ConfigDict(extra="forbid")

    type: ButtonType
    text: str = Field(min_length=1, max_length=MAX_BUTTON_TEXT_CHARS)
    url: str | None = Field(default=None, max_length=MAX_URL_CHARS)
    variable: str | None = None
    example: str | None = Field(default=None, max_length=MAX_COPY_CODE_EXAMPLE_CHARS)

    @model_validator(mode="after")
    def _fields_match_type(self) -> Self:
        if self.type == "url":
            if self.url is None:
                raise ValueError("url buttons need a url")
            if not _URL_RE.match(self.url):
                raise ValueError("url must start with https:// or http:// and contain no spaces")
        elif self.url is not None:
            raise ValueError(f"only url buttons have a url; remove it from this {self.type} button")
        if self.type == "copy_code":
            # Filled in here so that an omitted and an explicit "code" hash the same.
            if self.variable is None:
                self.variable = DEFAULT_COPY_VARIABLE
        elif self.variable is not None or self.example is not None:
            raise ValueError(
                f"only copy_code buttons have a variable or an example; "
                f"remove them from this {self.type} button"
            )
        return self


class TemplateDraft(BaseModel):
    """A template as a business writes it.

    Text lengths are deliberately unconstrained here: :func:`validate_draft` reports them as
    readable problems instead of a pydantic error. ``examples`` maps each placeholder name to a
    sample value for reviewers and previews; it is not part of the registered template.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    language: str = Field(default="en", pattern=r"^[a-z]{2}(_[A-Z]{2})?$")
    category: Category
    header: str | None = None
    body: str
    footer: str | None = None
    buttons: list[Button] = Field(default_factory=list)
    examples: dict[str, str] = Field(default_factory=dict)


class TemplateProblem(BaseModel):
    """One broken rule: a stable code for programs and a sentence for people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    message: str


class RenderedButton(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ButtonType
    text: str
    url: str | None = None
    copy_value: str | None = None


class RenderedTemplate(BaseModel):
    """A template filled in with one recipient's variables: what the recipient sees."""

    model_config = ConfigDict(extra="forbid")

    header: str | None
    body: str
    footer: str | None
    buttons: list[RenderedButton]


class TemplateRenderError(ValueError):
    """The variables do not match the template's placeholders exactly."""


# --- placeholders -----------------------------------------------------------------------------


class _Segment(NamedTuple):
    kind: Literal["text", "placeholder", "malformed"]
    text: str  # as written in the template
    name: str | None = None  # placeholder name, for kind == "placeholder"


def _balancing_run(runs: list[re.Match[str]], i: int) -> int | None:
    """Index of the closing run that balances the opening run ``runs[i]``, if any."""
    depth = 0
    for j in range(i, len(runs)):
        depth += 1 if runs[j].group()[0] == "{" else -1
        if depth == 0:
            return j
    return None


def _segments(text: str) -> list[_Segment]:
    """Split ``text`` into plain text, well-formed placeholders and malformed fragments.

    The single source of truth for what a placeholder is: placeholders(), find_malformed() and
    render() all read this, so they never disagree about a piece of text.
    """
    segments: list[_Segment] = []
    runs = list(_BRACE_RUN_RE.finditer(text))
    pos = 0  # everything before pos is already segmented
    i = 0
    while i < len(runs):
        run = runs[i]
        if run.start() < pos:  # swallowed by an unbalanced fragment
            i += 1
            continue
        name = None
        if run.group()[0] == "}":
            # A stray "}}": report it with the word it closes, e.g. "name}}".
            start, end = run.start(), run.end()
            while start > pos and not text[start - 1].isspace():
                start -= 1
            i += 1
        else:
            j = _balancing_run(runs, i)
            start = run.start()
            if j is None:
                # A "{{" that is never closed: report it with the word it opens, e.g. "{{name".
                end = run.end()
                while end < len(text) and not text[end].isspace():
                    end += 1
                i += 1
            else:
                end = runs[j].end()
                match = PLACEHOLDER_RE.fullmatch(text[start:end]) if j == i + 1 else None
                name = match.group(1) if match else None
                i = j + 1
        if start > pos:
            segments.append(_Segment("text", text[pos:start]))
        kind: Literal["placeholder", "malformed"] = "placeholder" if name else "malformed"
        segments.append(_Segment(kind, text[start:end], name))
        pos = end
    if pos < len(text):
        segments.append(_Segment("text", text[pos:]))
    return segments


def placeholders(text: str) -> list[str]:
    """Names of the well-formed ``{{name}}`` placeholders in ``text``, unique, in order of first
    appearance."""
    names = (s.name for s in _segments(text) if s.kind == "placeholder")
    return list(dict.fromkeys(n for n in names if n is not None))


def find_malformed(text: str) -> list[str]:
    """Fragments that look like placeholders but are not well formed, unique, in order.

    Catches "{{}}", "{{ name }}", "{{1abc}}", "{{Name}}", "{{{name}}}", nesting, and an unclosed
    "{{" or unopened "}}" (reported with the word next to it). Single braces are plain text.
    """
    return list(dict.fromkeys(s.text for s in _segments(text) if s.kind == "malformed"))


def variable_names(draft: TemplateDraft) -> list[str]:
    """The variables a message of this template must carry, exactly: the placeholders of header,
    body and footer, then the variables copy_code buttons copy; unique, in that order."""
    names = [
        *placeholders(draft.header or ""),
        *placeholders(draft.body),
        *placeholders(draft.footer or ""),
        *(b.variable for b in draft.buttons if b.type == "copy_code" and b.variable is not None),
    ]
    return list(dict.fromkeys(names))


def example_variables(draft: TemplateDraft) -> dict[str, str]:
    """Variables for a preview: ``draft.examples`` plus the copy_code buttons' example codes.

    A name that is both a placeholder and a copied variable takes its value from ``examples``,
    as one variable has one value. Pass the result to :func:`render`.
    """
    values = dict(draft.examples)
    for button in draft.buttons:
        if button.type == "copy_code" and button.variable is not None:
            if button.example is not None:
                values.setdefault(button.variable, button.example)
    return values


# --- promotional language ---------------------------------------------------------------------

_PROMOTIONAL_PATTERNS = (
    # English
    r"(?:\d+(?:[.,]\d+)?\s?)?%\s?off",
    r"save\s+[$€£]?\s?\d+(?:[.,]\d+)?\s?%?",
    r"free\s+gifts?",
    r"free\s+shipping",
    r"limited[\s-]+time",
    r"buy\s+now",
    r"shop\s+now",
    r"special\s+prices?",
    r"black\s+friday",
    r"cyber\s+monday",
    r"clearance",
    r"discounts?",
    r"discounted",
    r"coupons?",
    r"promos?",
    r"promotions?",
    r"promotional",
    r"offers?",
    r"sale",
    r"deals?",
    r"vouchers?",
    # Italian
    r"scont[oi]",
    r"offert[ae]",
    r"saldi",
    r"promozion[ei]",
    # Spanish
    r"descuentos?",
    r"ofertas?",
    r"rebajas",
    r"promoci[oó]n(?:es)?",
    r"cup[oó]n(?:es)?",
    # German
    r"rabatte?",
    r"angebote?",
    r"sonderangebote?",
    r"gutscheine?",
    r"ausverkauf",
    # French
    r"r[ée]ductions?",
    r"soldes",
    r"offres?",
)
# (?<!\w)/(?!\w) rather than \b: some terms start or end with "%" or "€", which \b would miss.
_PROMOTIONAL_RE = re.compile(
    r"(?<!\w)(?:" + "|".join(_PROMOTIONAL_PATTERNS) + r")(?!\w)", re.IGNORECASE
)


def promotional_terms(text: str) -> list[str]:
    """Promotional words and phrases in ``text`` (English, Italian, Spanish, German, French),
    matched case-insensitively on word boundaries; distinct, as written, in order."""
    # NFC so that a decomposed "réduction" (e + combining accent) is still found.
    found: dict[str, str] = {}
    for match in _PROMOTIONAL_RE.finditer(unicodedata.normalize("NFC", text)):
        found.setdefault(" ".join(match.group().split()).casefold(), match.group())
    return list(found.values())


# --- registration -----------------------------------------------------------------------------


def _is_stop_button(button: Button) -> bool:
    return button.type == "quick_reply" and button.text == STOP_PROMOTIONS


def finalize(draft: TemplateDraft) -> tuple[TemplateDraft, str | None]:
    """The template as it will be registered, and why it was reclassified (None if it was not).

    A utility or authentication template that promotes (promotional terms in its header, body,
    footer or button texts; for utility also a copy_code button, i.e. a coupon) becomes
    marketing. Every marketing template
    carries a quick reply :data:`STOP_PROMOTIONS`, appended if missing. Idempotent; ``draft`` is
    not modified.
    """
    category = draft.category
    reason = None
    if category in ("utility", "authentication"):
        texts = [draft.header or "", draft.body, draft.footer or ""]
        texts += [b.text for b in draft.buttons]
        found = [f"'{term}'" for term in promotional_terms("\n".join(texts))]
        # A copy-code button is a coupon in a utility message, but a one-time code in an
        # authentication one.
        if category == "utility" and any(b.type == "copy_code" for b in draft.buttons):
            found.append("a copy-code button")
        if found:
            terms = ", ".join(found)
            reason = f"{category} templates may not promote; found {terms}: registered as marketing"
            category = "marketing"
    buttons = list(draft.buttons)
    if category == "marketing" and not any(_is_stop_button(b) for b in buttons):
        buttons.append(Button(type="quick_reply", text=STOP_PROMOTIONS))
    final = draft.model_copy(update={"category": category, "buttons": buttons}, deep=True)
    return final, reason


def validate_draft(draft: TemplateDraft) -> list[TemplateProblem]:
    """Every rule the template breaks, in a stable order; an empty list means it may be registered.

    Checks the template as :func:`finalize` will register it, so a marketing template's
    "Stop promotions" button counts toward the button limit whether or not it was added yet (the
    client validating a draft live and the relay validating the finalized one agree).
    """
    final, _ = finalize(draft)
    problems: list[TemplateProblem] = []

    def add(rule: str, message: str) -> None:
        problems.append(TemplateProblem(rule=rule, message=message))

    if not final.body.strip():
        add(
            "body_length",
            f"body is empty; write the message text (1 to {MAX_BODY_CHARS:,} characters)",
        )
    elif len(final.body) > MAX_BODY_CHARS:
        n = len(final.body)
        add(
            "body_length",
            f"body is {n:,} characters; the limit is {MAX_BODY_CHARS:,}: "
            f"shorten it by {n - MAX_BODY_CHARS:,}",
        )
    for part, text, limit in (
        ("header", final.header, MAX_HEADER_CHARS),
        ("footer", final.footer, MAX_FOOTER_CHARS),
    ):
        if text is not None and len(text) > limit:
            add(
                f"{part}_length",
                f"{part} is {len(text):,} characters; the limit is {limit:,}: "
                f"shorten it by {len(text) - limit:,}",
            )
    for name in placeholders(final.footer or ""):
        add(
            "footer_placeholder",
            f"footer has the placeholder {{{{{name}}}}}; footers are the same for every "
            "recipient: move it to the header or body",
        )

    n_buttons = len(final.buttons)
    if n_buttons > MAX_BUTTONS:
        stop = (
            f", counting the '{STOP_PROMOTIONS}' quick reply every marketing template carries"
            if final.category == "marketing"
            else ""
        )
        add(
            "too_many_buttons",
            f"the template has {n_buttons} buttons{stop}; the limit is {MAX_BUTTONS}: "
            f"remove {n_buttons - MAX_BUTTONS}",
        )
    for rule, kind, label, limit in (
        ("too_many_url_buttons", "url", "URL", MAX_URL_BUTTONS),
        ("too_many_copy_code_buttons", "copy_code", "copy-code", MAX_COPY_CODE_BUTTONS),
    ):
        count = sum(b.type == kind for b in final.buttons)
        if count > limit:
            add(
                rule,
                f"the template has {count} {label} buttons; the limit is {limit}: "
                f"remove {count - limit}",
            )

    parts = (("header", final.header or ""), ("body", final.body), ("footer", final.footer or ""))
    for part, text in parts:
        for fragment in find_malformed(text):
            add(
                "malformed_placeholder",
                f"{part} has a malformed placeholder '{fragment}': write placeholders as "
                f"{{{{name}}}}, the name in {_NAME_RULE}, or remove the braces",
            )

    names = list(dict.fromkeys(placeholders(final.header or "") + placeholders(final.body)))
    for name in names:
        if not final.examples.get(name, "").strip():
            add(
                "missing_example",
                f"placeholder {{{{{name}}}}} has no example value: add one to examples "
                "so reviewers can see the message filled in",
            )
    for button in final.buttons:
        if button.type != "copy_code" or button.variable in names:
            continue
        if not (button.example or "").strip():
            add(
                "missing_example",
                f"copy-code button '{button.text}' has no example code: set its example "
                f"(at most {MAX_COPY_CODE_EXAMPLE_CHARS} characters)",
            )
    for name in final.examples:
        if name not in names:
            add(
                "unused_example",
                f"examples has a value for '{name}', which is not a placeholder in the header "
                f"or body: remove it or use {{{{{name}}}}} in the text",
            )

    for button in final.buttons:
        if button.type == "copy_code" and not _NAME_RE.fullmatch(button.variable or ""):
            add(
                "copy_code_variable",
                f"copy-code button '{button.text}' copies the variable '{button.variable}', "
                f"which is not a valid name: use {_NAME_RULE}",
            )
    if final.category == "authentication":
        for button in final.buttons:
            if button.type == "url":
                add(
                    "auth_url_button",
                    f"authentication templates may not have URL buttons: remove the "
                    f"'{button.text}' button, or register the template as utility or marketing",
                )
    counts: dict[str, int] = {}
    for button in final.buttons:
        key = button.text.strip().casefold()
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 2:
            hint = (
                f" (marketing templates get a '{STOP_PROMOTIONS}' quick reply automatically)"
                if key == STOP_PROMOTIONS.casefold()
                else ""
            )
            add(
                "duplicate_button",
                f"more than one button reads '{button.text}': give each button its own text{hint}",
            )
    return problems


def template_hash(business: str, draft: TemplateDraft) -> str:
    """SHA-256, lowercase hex, of the canonical JSON (shared.encoding) of exactly this object::

        {"business": business, "name": ..., "language": ..., "category": ...,
         "header": str or null, "body": str, "footer": str or null,
         "buttons": [{"type": ..., "text": ...,
                      "url": ...,        # url buttons only
                      "variable": ...},  # copy_code buttons only
                     ...]}

    Examples (the draft's and the buttons') are left out: recipients never see them, so they do
    not change the template. Hash the finalized draft, as that is the one registered.
    """
    buttons = []
    for button in draft.buttons:
        form = {"type": button.type, "text": button.text}
        if button.url is not None:
            form["url"] = button.url
        if button.variable is not None:
            form["variable"] = button.variable
        buttons.append(form)
    document = {
        "business": business,
        "name": draft.name,
        "language": draft.language,
        "category": draft.category,
        "header": draft.header,
        "body": draft.body,
        "footer": draft.footer,
        "buttons": buttons,
    }
    return hashlib.sha256(canonical_json(document)).hexdigest()


# --- rendering --------------------------------------------------------------------------------


def _substitute(text: str, variables: dict[str, str]) -> str:
    # One pass over the template's own segments: a value that contains "{{x}}" stays as written.
    # Malformed fragments are kept as plain text (validate_draft keeps them out of registration).
    return "".join(
        variables[s.name] if s.kind == "placeholder" and s.name is not None else s.text
        for s in _segments(text)
    )


def render(draft: TemplateDraft, variables: dict[str, str]) -> RenderedTemplate:
    """Fill the template in with ``variables``, which must name exactly :func:`variable_names`.

    Values are plain text, substituted once. Raises :class:`TemplateRenderError` when a variable
    is missing or one is not used by the template: a sealed variable set must match exactly.
    """
    expected = variable_names(draft)
    missing = [name for name in expected if name not in variables]
    unexpected = sorted(set(variables) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing variables: " + ", ".join(f"'{n}'" for n in missing))
        if unexpected:
            parts.append("unexpected variables: " + ", ".join(f"'{n}'" for n in unexpected))
        raise TemplateRenderError("; ".join(parts))
    return RenderedTemplate(
        header=None if draft.header is None else _substitute(draft.header, variables),
        body=_substitute(draft.body, variables),
        footer=None if draft.footer is None else _substitute(draft.footer, variables),
        buttons=[
            RenderedButton(
                type=b.type,
                text=b.text,
                url=b.url,
                copy_value=variables[b.variable]
                if b.type == "copy_code" and b.variable is not None
                else None,
            )
            for b in draft.buttons
        ],
    )
