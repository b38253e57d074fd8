"""Message templates: the rules the relay registers them by and the client previews them with.

A business registers a template (texts with ``{{name}}`` placeholders, buttons, a category) in
the clear; each message then carries only the template's hash and the personal variables, sealed.
The relay and the client import the same rules so that what the client shows as valid is what the
relay accepts, and both render a template the same way.
"""

import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.encoding import canonical_json
from shared.promotional import promotional_terms, skeleton

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

# Authentication templates: the code's length may be declared within these bounds, and the
# expiry sentence within these minutes (WhatsApp's range).
AUTH_CODE_MIN_CHARS = 4
AUTH_CODE_MAX_CHARS = 12
MAX_CODE_EXPIRY_MINUTES = 90

ButtonType = Literal["quick_reply", "url", "copy_code"]
VariableType = Literal["name", "number", "currency", "date", "code", "url", "text"]
CodeCharset = Literal["digits", "alphanumeric", "alphanumeric_dash"]
# Variables that can hold any words, so any promotion the relay cannot see.
FREE_TEXT_TYPES: tuple[VariableType, ...] = ("text", "url")
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


class VariableSpec(BaseModel):
    """The declared type of one variable and the bounds of its length (in characters).

    ``min_length``, ``max_length`` and a code's ``charset`` may be left out of a draft:
    :func:`finalize` fills them in (see :func:`default_spec`), so that a registered template
    states every bound. ``charset`` belongs to codes only.
    """

    model_config = ConfigDict(extra="forbid")

    type: VariableType
    min_length: int | None = Field(default=None, ge=1, le=MAX_URL_CHARS)
    max_length: int | None = Field(default=None, ge=1, le=MAX_URL_CHARS)
    charset: CodeCharset | None = None


class TemplateDraft(BaseModel):
    """A template as a business writes it.

    Text lengths are deliberately unconstrained here: :func:`validate_draft` reports them as
    readable problems instead of a pydantic error. ``examples`` maps each placeholder name to a
    sample value for reviewers and previews; it is not part of the registered template.
    ``variables`` declares each variable's type (undeclared ones get a default in
    :func:`finalize`); ``code_expiry_minutes`` belongs to authentication templates only.
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
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    code_expiry_minutes: int | None = Field(default=None, ge=1, le=MAX_CODE_EXPIRY_MINUTES)


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


# --- typed variables --------------------------------------------------------------------------


class TypeRule(NamedTuple):
    default_max: int  # max_length when the draft leaves it out
    ceiling: int  # the largest max_length that may be declared
    shape: str  # what a value looks like, for people


VARIABLE_TYPES: dict[str, TypeRule] = {
    "name": TypeRule(40, 64, "letters, with spaces, apostrophes, hyphens or dots between words"),
    "number": TypeRule(20, 32, "digits, with an optional sign and . , ' or spaces between groups"),
    "currency": TypeRule(
        24, 32, "a number with one currency symbol or three-letter code (EUR) before or after it"
    ),
    "date": TypeRule(40, 64, "digits, letters, spaces and / - . , : (at least one digit)"),
    "code": TypeRule(32, 32, "the characters of its charset only"),
    "url": TypeRule(200, MAX_URL_CHARS, "http:// or https://, a host, then no spaces"),
    "text": TypeRule(60, 200, "one line of text"),
}
_TYPE_NOUNS = {
    "name": "a name",
    "number": "a number",
    "currency": "an amount",
    "date": "a date",
    "code": "a code",
    "url": "a URL",
    "text": "short text",
}
CODE_CHARSETS: dict[str, tuple[str, re.Pattern[str]]] = {
    "digits": ("0-9", re.compile(r"[0-9]+")),
    "alphanumeric": ("A-Z a-z 0-9", re.compile(r"[A-Za-z0-9]+")),
    "alphanumeric_dash": ("A-Z a-z 0-9 -", re.compile(r"[A-Za-z0-9-]+")),
}
DEFAULT_CODE_CHARSET: CodeCharset = "alphanumeric_dash"
# An authentication code the business did not bound: a one-time code of 4 to 8 digits.
AUTH_CODE_DEFAULT = VariableSpec(type="code", min_length=4, max_length=8, charset="digits")

# A value never holds these: controls a terminal obeys, invisible characters that hide or
# reorder text, line breaks, and code points with no agreed glyph.
_REFUSED_IN_VALUES = ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn")
_NUMBER = r"[+-]?[0-9]+(?:[.,' \u00a0\u202f][0-9]+)*"
_NUMBER_RE = re.compile(_NUMBER)
_MARK = r"[A-Z]{3}|[^\s\w.,'+-]"  # a currency code or one sign (checked to be a currency sign)
_CURRENCY_RE = re.compile(
    r"(?:(?P<before>" + _MARK + r")\s?)?" + _NUMBER + r"(?:\s?(?P<after>" + _MARK + r"))?"
)
_NAME_JOINERS = frozenset(" '\u2019-.")  # the apostrophe, typed or typographic
_DATE_SIGNS = frozenset(" /-.,:")
_LINK_RE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][!-~]*)?")


def default_spec(draft: TemplateDraft, name: str) -> VariableSpec:
    """The type a variable gets when the draft does not declare one, bounds filled in: the code
    of an authentication template is :data:`AUTH_CODE_DEFAULT`; a variable a copy-code button
    copies is a code; any other is short text."""
    if draft.category == "authentication" and name == DEFAULT_COPY_VARIABLE:
        return AUTH_CODE_DEFAULT
    copied = any(b.type == "copy_code" and b.variable == name for b in draft.buttons)
    return _filled(draft, name, VariableSpec(type="code" if copied else "text"))


def _filled(draft: TemplateDraft, name: str, spec: VariableSpec) -> VariableSpec:
    """``spec`` with every bound it leaves out filled in."""
    if spec.min_length and spec.max_length and (spec.charset or spec.type != "code"):
        return spec  # a registered template's: nothing to fill
    auth_code = (
        draft.category == "authentication" and name == DEFAULT_COPY_VARIABLE and spec.type == "code"
    )
    default = AUTH_CODE_DEFAULT if auth_code else None
    min_length = spec.min_length or (default.min_length if default else 1)
    max_length = spec.max_length or (
        default.max_length if default else VARIABLE_TYPES[spec.type].default_max
    )
    charset = spec.charset
    if spec.type == "code" and charset is None:
        charset = default.charset if default else DEFAULT_CODE_CHARSET
    return VariableSpec(
        type=spec.type, min_length=min_length, max_length=max_length, charset=charset
    )


def spec_of(draft: TemplateDraft, name: str) -> VariableSpec:
    """The type a value of ``name`` must have, bounds filled in: as declared, else the default.
    (A registered template declares every variable; older ones may not.)"""
    declared = draft.variables.get(name)
    return _filled(draft, name, declared) if declared else default_spec(draft, name)


def describe(spec: VariableSpec) -> str:
    """``spec`` for people: "a code of 4 to 8 characters (0-9)"."""
    low, high = spec.min_length or 1, spec.max_length or VARIABLE_TYPES[spec.type].default_max
    size = f"{high} character" + ("s" if high != 1 else "")
    if low > 1:
        size = f"{low} to {high} characters" if low < high else f"exactly {size}"
    else:
        size = f"at most {size}"
    if spec.type == "code" and spec.charset:
        return f"a code of {size} ({CODE_CHARSETS[spec.charset][0]})"
    return f"{_TYPE_NOUNS[spec.type]} of {size}"


def value_problem(spec: VariableSpec, value: str) -> str | None:
    """Why ``value`` is not a value of type ``spec``, or None if it is one.

    The answer never quotes the value: it may be exactly what the sender wanted on screen.
    """
    low, high = spec.min_length or 1, spec.max_length or VARIABLE_TYPES[spec.type].default_max
    if not low <= len(value) <= high:
        return f"it has {len(value):,} characters"
    if not (value.isascii() and value.isprintable()):  # printable ASCII holds none of them
        for ch in value:
            if unicodedata.category(ch) in _REFUSED_IN_VALUES:
                return f"it holds U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')})"
    if spec.type == "code":
        charset = spec.charset or DEFAULT_CODE_CHARSET
        if not CODE_CHARSETS[charset][1].fullmatch(value):
            return f"it holds characters other than {CODE_CHARSETS[charset][0]}"
    elif spec.type == "number":
        if not _NUMBER_RE.fullmatch(value):
            return f"it is not a number ({VARIABLE_TYPES['number'].shape})"
    elif spec.type == "currency":
        match = _CURRENCY_RE.fullmatch(value)
        marks = [m for m in (match.group("before"), match.group("after")) if m] if match else []
        if len(marks) != 1 or not all(
            len(m) == 3 or unicodedata.category(m) == "Sc" for m in marks
        ):
            return f"it is not an amount ({VARIABLE_TYPES['currency'].shape})"
    elif spec.type == "name":
        first = unicodedata.category(value[0])
        if not first.startswith("L") or any(
            not unicodedata.category(ch).startswith(("L", "M")) and ch not in _NAME_JOINERS
            for ch in value
        ):
            return f"it is not a name ({VARIABLE_TYPES['name'].shape})"
    elif spec.type == "date":
        if not any("0" <= ch <= "9" for ch in value) or any(
            not unicodedata.category(ch).startswith(("L", "M"))
            and not "0" <= ch <= "9"
            and ch not in _DATE_SIGNS
            for ch in value
        ):
            return f"it is not a date or time ({VARIABLE_TYPES['date'].shape})"
    elif spec.type == "url":
        if not _LINK_RE.fullmatch(value):
            return f"it is not a link ({VARIABLE_TYPES['url'].shape}, in ASCII)"
    return None


def variable_problems(draft: TemplateDraft, variables: dict[str, str]) -> list[str]:
    """Every variable of ``variables`` whose value is not of its declared type, as sentences
    that name the variable and its type but never quote the value. Whether the names are the
    template's is :func:`render`'s to check (an unknown one gets the default type here)."""
    problems = []
    for name, value in variables.items():
        spec = spec_of(draft, name)
        why = value_problem(spec, value)
        if why:
            problems.append(f"'{name}' must be {describe(spec)}, but {why}")
    return problems


# --- authentication ---------------------------------------------------------------------------

# The whole text of an authentication template, by language: the platform writes it, so a code
# is all the business can put in one (WhatsApp's authentication templates work the same way).
# Each entry: the body, the expiry sentence (one minute, N minutes) and the copy button's text.
AUTH_TEXTS: dict[str, tuple[str, tuple[str, str], str]] = {
    "en": (
        "{{code}} is your verification code.",
        ("This code expires in 1 minute.", "This code expires in {n} minutes."),
        "Copy code",
    ),
    "it": (
        "{{code}} è il tuo codice di verifica.",
        ("Il codice scade tra 1 minuto.", "Il codice scade tra {n} minuti."),
        "Copia codice",
    ),
    "es": (
        "{{code}} es tu código de verificación.",
        ("Este código caduca en 1 minuto.", "Este código caduca en {n} minutos."),
        "Copiar código",
    ),
    "fr": (
        "{{code}} est votre code de vérification.",
        ("Ce code expire dans 1 minute.", "Ce code expire dans {n} minutes."),
        "Copier le code",
    ),
    "de": (
        "{{code}} ist dein Bestätigungscode.",
        ("Dieser Code läuft in 1 Minute ab.", "Dieser Code läuft in {n} Minuten ab."),
        "Code kopieren",
    ),
}


def authentication_body(language: str, expiry_minutes: int | None) -> str | None:
    """The body the platform writes for an authentication template, or None if it has no text
    in ``language`` (its first two letters: "pt_BR" is "pt")."""
    texts = AUTH_TEXTS.get(language[:2])
    if texts is None:
        return None
    body, (one, many), _ = texts
    if expiry_minutes is None:
        return body
    return body + " " + (one if expiry_minutes == 1 else many.format(n=expiry_minutes))


def authentication_problems(draft: TemplateDraft) -> list[str]:
    """How an authentication template departs from the platform's fixed shape, as sentences
    (empty if it does not): no header or footer; the body exactly :func:`authentication_body`;
    one variable, ``code``, a code of 4 to 12 characters; at most one button, a copy-code
    button with the platform's text that copies the code. URL buttons are left to the
    ``auth_url_button`` rule."""
    problems = []
    languages = ", ".join(AUTH_TEXTS)
    expected = authentication_body(draft.language, draft.code_expiry_minutes)
    if expected is None:
        problems.append(
            f"the platform writes authentication templates in {languages}; "
            f"it has no text in '{draft.language}'"
        )
    elif draft.body != expected:
        problems.append(
            "the platform writes the body of an authentication template: leave the body empty "
            f"or write exactly '{expected}' (set code_expiry_minutes for the expiry sentence)"
        )
    for part in ("header", "footer"):
        if getattr(draft, part) is not None:
            problems.append(f"authentication templates have no {part}: remove it")
    names = variable_names(draft)
    others = [n for n in names if n != DEFAULT_COPY_VARIABLE]
    if others:
        listed = ", ".join(f"'{n}'" for n in others)
        problems.append(f"an authentication template carries one variable, 'code'; remove {listed}")
    spec = spec_of(draft, DEFAULT_COPY_VARIABLE)
    low, high = spec.min_length or 1, spec.max_length or 0
    if spec.type != "code" or low < AUTH_CODE_MIN_CHARS or high > AUTH_CODE_MAX_CHARS:
        problems.append(
            f"the code of an authentication template must be a code of {AUTH_CODE_MIN_CHARS} "
            f"to {AUTH_CODE_MAX_CHARS} characters (declare it as "
            f'{{"type": "code", "min_length": ..., "max_length": ..., "charset": ...}}); '
            f"it is declared as {describe(spec)}"
        )
    copy_text = AUTH_TEXTS[draft.language[:2]][2] if expected is not None else None
    for button in draft.buttons:
        if button.type == "url":
            continue  # rule auth_url_button
        if button.type != "copy_code":
            problems.append(
                f"authentication templates have no quick replies: remove '{button.text}'"
            )
        elif copy_text is not None and button.text != copy_text:
            problems.append(
                f"the copy-code button of an authentication template reads '{copy_text}': "
                f"change '{button.text}'"
            )
    return problems


# --- registration -----------------------------------------------------------------------------


# The app's own controls, in the languages templates come in: a business's button that reads
# like one (after confusables, case, accents and spacing are folded away) could make a person
# press the business's button thinking it is the platform's.
PLATFORM_ACTIONS: dict[str, tuple[str, ...]] = {
    "Stop promotions": (
        "stop promotions",
        "stop promotion",
        "unsubscribe",
        "opt out",
        "stop promozioni",
        "interrompi promozioni",
        "detener promociones",
        "parar promociones",
        "arreter les promotions",
        "stop aux promotions",
        "werbung stoppen",
        "werbung beenden",
    ),
    "Block": ("block", "blocca", "bloquear", "bloquer", "blockieren", "sperren"),
    "Report": ("report", "report spam", "segnala", "denunciar", "reportar", "signaler", "melden"),
}


_READ_AS = str.maketrans({"0": "o", "1": "l", "i": "l", "3": "e", "4": "a", "5": "s", "7": "t"})


def _as_read(text: str) -> str:
    """Lower-case letters as they read (0 as o, 1 and i as l), words apart, nothing else."""
    letters = "".join(c if c.isalpha() else " " for c in text.translate(_READ_AS))
    return " ".join(letters.split())


def platform_action(text: str) -> str | None:
    """The app's control that ``text`` reads like, or None."""
    folded = _as_read(skeleton(text))
    for action, phrases in PLATFORM_ACTIONS.items():
        if folded in {_as_read(p) for p in phrases}:
            return action
    return None


def _is_stop_button(button: Button) -> bool:
    return button.type == "quick_reply" and button.text == STOP_PROMOTIONS


def finalize(draft: TemplateDraft) -> tuple[TemplateDraft, str | None]:
    """The template as it will be registered, and why it was reclassified (None if it was not).

    A utility or authentication template that promotes (promotional terms in its header, body,
    footer, button texts or example values; for utility also a copy_code button, i.e. a coupon)
    becomes marketing. Every marketing template carries a quick reply :data:`STOP_PROMOTIONS`,
    appended if missing. An authentication template with an empty body gets the platform's
    (:func:`authentication_body`). Every variable gets its type, bounds filled in
    (:func:`spec_of`), so that the registered template states them all. Idempotent; ``draft``
    is not modified.
    """
    category = draft.category
    reason = None
    if category in ("utility", "authentication"):
        texts = [draft.header or "", draft.body, draft.footer or ""]
        texts += [b.text for b in draft.buttons]
        # Examples are published with the template: one that promotes shows what the
        # variables are for.
        texts += list(draft.examples.values())
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
    body = draft.body
    if category == "authentication" and body == "":
        body = authentication_body(draft.language, draft.code_expiry_minutes) or body
    final = draft.model_copy(
        update={"category": category, "buttons": buttons, "body": body}, deep=True
    )
    variables = {name: spec_of(final, name) for name in variable_names(final)}
    # A declaration for a name the template does not have stays, for validate_draft to report.
    variables |= {n: spec for n, spec in final.variables.items() if n not in variables}
    return final.model_copy(update={"variables": variables}), reason


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
    for button in final.buttons:
        action = platform_action(button.text)
        if action is not None and not _is_stop_button(button):
            add(
                "platform_button",
                f"button '{button.text}' reads like the app's own '{action}' control; a "
                "business's button must not pass for the platform's: choose another text",
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
        elif button.type == "copy_code" and button.variable is not None:
            spec = final.variables.get(button.variable)
            if spec is not None and spec.type != "code":
                add(
                    "copy_code_variable",
                    f"copy-code button '{button.text}' copies '{button.variable}', declared as "
                    f"{spec.type}: a copied variable is a code",
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
    _check_variables(final, add)
    if final.category == "authentication":
        for sentence in authentication_problems(final):
            add("auth_shape", sentence)
    elif final.code_expiry_minutes is not None:
        add(
            "code_expiry",
            f"only authentication templates have code_expiry_minutes; remove it from this "
            f"{final.category} template",
        )
    return problems


def _check_variables(final: TemplateDraft, add: Callable[[str, str], None]) -> None:
    """The rules about declared types: ``unknown_variable``, ``variable_type``,
    ``example_type``."""
    names = variable_names(final)
    for name, spec in final.variables.items():
        if name not in names:
            add(
                "unknown_variable",
                f"variables declares '{name}', which is neither a placeholder nor copied by a "
                f"copy-code button: remove it or use {{{{{name}}}}} in the text",
            )
            continue
        rule = VARIABLE_TYPES[spec.type]
        low, high = spec.min_length or 1, spec.max_length or rule.default_max
        if high > rule.ceiling:
            add(
                "variable_type",
                f"'{name}' may be at most {high:,} characters long; a {spec.type} may be at "
                f"most {rule.ceiling:,}",
            )
        if low > high:
            add(
                "variable_type",
                f"'{name}' has min_length {low:,} above its max_length {high:,}",
            )
        if spec.charset is not None and spec.type != "code":
            add(
                "variable_type",
                f"'{name}' is a {spec.type}: only codes have a charset; remove it",
            )
    values = example_variables(final)
    for name in names:
        if name not in values or not values[name].strip():
            continue  # rule missing_example
        spec = spec_of(final, name)
        why = value_problem(spec, values[name])
        if why:
            add(
                "example_type",
                f"the example for '{name}' must be {describe(spec)}, but {why}",
            )


def template_hash(business: str, draft: TemplateDraft) -> str:
    """SHA-256, lowercase hex, of the canonical JSON (shared.encoding) of exactly this object::

        {"business": business, "name": ..., "language": ..., "category": ...,
         "header": str or null, "body": str, "footer": str or null,
         "buttons": [{"type": ..., "text": ...,
                      "url": ...,        # url buttons only
                      "variable": ...},  # copy_code buttons only
                     ...],
         "variables": {name: {"type": ..., "min_length": ..., "max_length": ...,
                              "charset": ...}},  # only if any; null fields left out
         "code_expiry_minutes": ...}            # only if not null

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
    document: dict[str, object] = {
        "business": business,
        "name": draft.name,
        "language": draft.language,
        "category": draft.category,
        "header": draft.header,
        "body": draft.body,
        "footer": draft.footer,
        "buttons": buttons,
    }
    # Left out when empty or null, so that a template registered before types and expiry
    # existed keeps its hash.
    if draft.variables:
        document["variables"] = {
            name: spec.model_dump(exclude_none=True) for name, spec in draft.variables.items()
        }
    if draft.code_expiry_minutes is not None:
        document["code_expiry_minutes"] = draft.code_expiry_minutes
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


def priced_category(category: str, template: "TemplateDraft") -> str:
    """The category a copy of ``template`` is priced as: its own, except that a utility
    template with a free-text or URL variable pays the marketing price. The relay cannot read
    what a copy's variables say, so it prices what they could say: passing a promotion off
    as utility never pays. (Authentication templates have a fixed shape, a code only.)"""
    if category == "utility" and any(
        spec.type in FREE_TEXT_TYPES for spec in template.variables.values()
    ):
        return "marketing"
    return category
