"""Cloud API templates and Sealpost templates, each in the other's terms.

Sealpost names every placeholder (``{{name}}``) and shares a name between header and body; the
Cloud API also numbers them (``{{1}}``), header and body each from 1. A positional template is
registered with ``{{_h1}}``, ``{{_b1}}``...: names no named Cloud API parameter can take (they
start with a letter), so the registered template says which format it was written in, and the
text a person reads is the same either way.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from client.gateway.errors import (
    INVALID_PARAMETER_VALUE,
    PARAMETER_COUNT,
    PARAMETER_FORMAT,
    GraphError,
)
from client.gateway.shapes import Parameter, SendComponent, TemplateCreate
from shared.api import TemplateInfo
from shared.templates import (
    Button,
    TemplateDraft,
    TemplateProblem,
    variable_names,
    variable_problems,
)

COPY_CODE_VARIABLE = "coupon_code"
COPY_CODE_TEXT = "Copy code"  # the Cloud API's copy-code button has no text of its own
_POSITIONAL = re.compile(r"\{\{\s*([0-9]+)\s*\}\}")
_REGISTERED_POSITIONAL = re.compile(r"\{\{_([hb])([0-9]+)\}\}")
_PART = {"HEADER": "h", "BODY": "b"}


def _numbered(text: str, part: str) -> str:
    """``{{1}}`` in a header or body as the name it is registered under."""
    return _POSITIONAL.sub(lambda m: "{{_" + part + m.group(1) + "}}", text)


def _unnumbered(text: str) -> str:
    return _REGISTERED_POSITIONAL.sub(lambda m: "{{" + m.group(2) + "}}", text)


def is_positional(draft: TemplateDraft) -> bool:
    return any(re.fullmatch(r"_[hb][0-9]+", name) for name in variable_names(draft))


@dataclass
class Translation:
    draft: TemplateDraft | None
    problems: list[TemplateProblem] = field(default_factory=list)


def _problem(rule: str, message: str) -> TemplateProblem:
    return TemplateProblem(rule=rule, message=message)


def draft_from_cloud(create: TemplateCreate) -> Translation:
    """The Sealpost draft a Cloud API template creation stands for, or why it cannot be one
    (what Sealpost has no equivalent of; the rules Sealpost checks come later, from
    ``validate_draft``, exactly as the relay applies them)."""
    problems: list[TemplateProblem] = []
    category = create.category.lower()
    if category not in ("marketing", "utility"):
        problems.append(
            _problem(
                "gateway_category",
                f"category {create.category}: the gateway registers MARKETING and UTILITY "
                "templates; authentication templates have the platform's fixed text "
                "(`sealpost business template add --category authentication`)",
            )
        )
    if create.parameter_format not in ("POSITIONAL", "NAMED"):
        problems.append(
            _problem(
                "gateway_parameter_format",
                f"parameter_format {create.parameter_format}: use POSITIONAL or NAMED",
            )
        )
    positional = create.parameter_format == "POSITIONAL"
    header = body = footer = None
    buttons: list[Button] = []
    examples: dict[str, str] = {}
    for component in create.components:
        kind = component.type
        if kind in _PART:
            if kind == "HEADER" and (component.format or "TEXT") != "TEXT":
                problems.append(
                    _problem(
                        "gateway_media",
                        f"a {component.format} header: Sealpost messages carry text only",
                    )
                )
                continue
            text = component.text or ""
            part = _PART[kind]
            examples |= _examples(component.example, kind, positional)
            if positional:
                text = _numbered(text, part)
            if kind == "HEADER":
                header = text
            else:
                body = text
        elif kind == "FOOTER":
            footer = component.text
        elif kind == "BUTTONS":
            for button in component.buttons or []:
                made = _button(button.type, button.text, button.url, button.example)
                if isinstance(made, TemplateProblem):
                    problems.append(made)
                else:
                    buttons.append(made)
        else:
            problems.append(
                _problem("gateway_component", f"a {kind} component: not supported by Sealpost")
            )
    if body is None:
        problems.append(_problem("body_length", "the template has no BODY component"))
    if problems:
        return Translation(None, problems)
    try:
        draft = TemplateDraft(
            name=create.name,
            language=create.language,
            category=category,  # type: ignore[arg-type]  # checked above
            header=header,
            body=body or "",
            footer=footer,
            buttons=buttons,
            examples=examples,
        )
    except ValueError as exc:
        return Translation(None, [_problem("gateway_invalid", str(exc))])
    return Translation(draft)


def _examples(example: Any, kind: str, positional: bool) -> dict[str, str]:
    if example is None:
        return {}
    part = _PART[kind]
    if positional:
        values = (example.header_text or []) if kind == "HEADER" else (example.body_text or [[]])[0]
        return {f"_{part}{n}": str(v) for n, v in enumerate(values, start=1)}
    named = example.header_text_named_params if kind == "HEADER" else example.body_text_named_params
    return {item.param_name: item.example for item in named or []}


def _button(kind: str, text: str | None, url: str | None, example: Any) -> Button | TemplateProblem:
    try:
        if kind == "QUICK_REPLY":
            return Button(type="quick_reply", text=text or "")
        if kind == "URL":
            if url and "{{" in url:
                return _problem(
                    "gateway_dynamic_url",
                    f"URL button '{text}': a per-person URL suffix is not supported; a "
                    "Sealpost link is the same for everyone, so it cannot carry a tracker",
                )
            return Button(type="url", text=text or "", url=url)
        if kind == "COPY_CODE":
            sample = example[0] if isinstance(example, list) and example else example
            return Button(
                type="copy_code",
                text=COPY_CODE_TEXT,
                variable=COPY_CODE_VARIABLE,
                example=str(sample) if sample else None,
            )
    except ValueError as exc:
        return _problem("gateway_button", f"{kind} button '{text}': {exc}")
    return _problem(
        "gateway_button",
        f"a {kind} button: Sealpost has quick replies, URL and copy-code buttons only",
    )


# Sealpost's ratings (server/quality.py) as Meta names a template's quality.
QUALITY_SCORES = {"high": "GREEN", "medium": "YELLOW", "low": "RED"}


def cloud_status(quality: dict[str, Any] | None, now_ms: int) -> tuple[str, dict[str, Any]]:
    """A template's status and ``quality_score`` from what the relay says of its quality
    (``GET /v1/quality``): PAUSED while paused, DISABLED once disabled, as Meta's; UNKNOWN
    until its campaigns published figures."""
    if quality is None or not quality.get("campaigns"):
        return "APPROVED", {"score": "UNKNOWN"}
    score = {"score": QUALITY_SCORES.get(quality["rating"], "UNKNOWN")}
    if quality.get("disabled"):
        return "DISABLED", score
    paused_until = quality.get("paused_until")
    if paused_until is not None and paused_until > now_ms:
        return "PAUSED", score
    return "APPROVED", score


def cloud_template(
    info: TemplateInfo, status: str = "APPROVED", quality_score: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A registered template as ``GET /{waba-id}/message_templates`` lists it."""
    draft = info.template
    positional = is_positional(draft)
    components: list[dict[str, Any]] = []
    for kind, text in (("HEADER", draft.header), ("BODY", draft.body)):
        if text is None:
            continue
        component: dict[str, Any] = {"type": kind}
        if kind == "HEADER":
            component["format"] = "TEXT"
        component["text"] = _unnumbered(text) if positional else text
        example = _cloud_example(draft, kind, positional)
        if example:
            component["example"] = example
        components.append(component)
    if draft.footer is not None:
        components.append({"type": "FOOTER", "text": draft.footer})
    if draft.buttons:
        components.append({"type": "BUTTONS", "buttons": [_cloud_button(b) for b in draft.buttons]})
    found: dict[str, Any] = {
        "id": info.id,
        "name": draft.name,
        "language": draft.language,
        "status": status,
        "category": info.category.upper(),
        "parameter_format": "POSITIONAL" if positional else "NAMED",
        "components": components,
        "quality_score": quality_score or {"score": "UNKNOWN"},
    }
    if info.category != info.requested_category:
        # As Meta reports a recategorised template; the reason is Sealpost's own sentence.
        found["previous_category"] = info.requested_category.upper()
        found["sealpost_reclassified_reason"] = info.reclassified_reason
    return found


def _cloud_example(draft: TemplateDraft, kind: str, positional: bool) -> dict[str, Any]:
    text = draft.header if kind == "HEADER" else draft.body
    names = [n for n in variable_names(draft) if "{{" + n + "}}" in (text or "")]
    if not names:
        return {}
    values = [draft.examples.get(n, "") for n in names]
    key = kind.lower() + "_text"
    if positional:
        return {key: values if kind == "HEADER" else [values]}
    return {
        key + "_named_params": [
            {"param_name": n, "example": v} for n, v in zip(names, values, strict=True)
        ]
    }


def _cloud_button(button: Button) -> dict[str, Any]:
    if button.type == "copy_code":
        return {"type": "COPY_CODE", "example": button.example or ""}
    if button.type == "url":
        return {"type": "URL", "text": button.text, "url": button.url}
    return {"type": "QUICK_REPLY", "text": button.text}


# --- sending ---------------------------------------------------------------------------------


@dataclass
class Filled:
    """One message's variables, and the payloads its quick replies answer with."""

    variables: dict[str, str]
    payloads: dict[int, str]  # button index -> payload (default: the button's text)


def _value(parameter: Parameter) -> str:
    if parameter.type == "text" and parameter.text is not None:
        return parameter.text
    if parameter.type == "currency" and parameter.currency is not None:
        return parameter.currency.fallback_value
    if parameter.type == "date_time" and parameter.date_time is not None:
        return parameter.date_time.fallback_value
    raise GraphError(
        INVALID_PARAMETER_VALUE,
        "Parameter value is not valid",
        f"a {parameter.type} parameter: Sealpost messages carry text, currency and date_time "
        "parameters (shown as their fallback_value)",
    )


def fill(draft: TemplateDraft, components: list[SendComponent]) -> Filled:
    """The variables ``components`` give ``draft``, checked as the person's device will check
    them; a :class:`GraphError` naming what is wrong (never quoting a value) otherwise."""
    positional = is_positional(draft)
    variables: dict[str, str] = {}
    payloads: dict[int, str] = {}
    for component in components:
        if component.type in ("header", "body"):
            part = "h" if component.type == "header" else "b"
            for n, parameter in enumerate(component.parameters, start=1):
                named = parameter.parameter_name
                if positional and named:
                    raise _format_mismatch("named", "POSITIONAL")
                if not positional and not named:
                    raise _format_mismatch("positional", "NAMED")
                variables[named or f"_{part}{n}"] = _value(parameter)
        elif component.type == "button":
            index = _index(component, draft)
            button = draft.buttons[index]
            for parameter in component.parameters:
                if component.sub_type == "quick_reply" and button.type == "quick_reply":
                    payloads[index] = parameter.payload or parameter.text or button.text
                elif component.sub_type == "copy_code" and button.type == "copy_code":
                    variables[button.variable or COPY_CODE_VARIABLE] = (
                        parameter.coupon_code or parameter.text or ""
                    )
                else:
                    raise GraphError(
                        INVALID_PARAMETER_VALUE,
                        "Parameter value is not valid",
                        f"button {index} is a {button.type} button; a {component.sub_type} "
                        "parameter does not fit it (URL buttons take none: their link is the "
                        "same for everyone)",
                    )
        else:
            raise GraphError(
                INVALID_PARAMETER_VALUE,
                "Parameter value is not valid",
                f"a {component.type} component: templates take header, body and button parameters",
            )
    expected = variable_names(draft)
    missing = [n for n in expected if n not in variables]
    unexpected = [n for n in variables if n not in expected]
    if missing or unexpected:
        said = []
        if missing:
            said.append(_listed("missing", missing))
        if unexpected:
            said.append(_listed("unexpected", unexpected))
        raise GraphError(
            PARAMETER_COUNT,
            "Number of parameters does not match the expected number of params",
            f"template {draft.name} ({draft.language}) takes {len(expected)} parameters: "
            + "; ".join(said),
        )
    wrong = variable_problems(draft, variables)
    if wrong:
        raise GraphError(
            PARAMETER_FORMAT,
            "Parameter format does not match format in the created template",
            "; ".join(_unnumbered_names(w) for w in wrong),
        )
    return Filled(variables, payloads)


def _index(component: SendComponent, draft: TemplateDraft) -> int:
    try:
        index = int(component.index if component.index is not None else -1)
    except ValueError:
        index = -1
    if not 0 <= index < len(draft.buttons):
        raise GraphError(
            INVALID_PARAMETER_VALUE,
            "Parameter value is not valid",
            f"button index {component.index}: template {draft.name} has "
            f"{len(draft.buttons)} buttons (0 to {len(draft.buttons) - 1})",
        )
    return index


def _format_mismatch(given: str, registered: str) -> GraphError:
    return GraphError(
        PARAMETER_FORMAT,
        "Parameter format does not match format in the created template",
        f"{given} parameters for a template created with parameter_format {registered}",
    )


# Names listed in an answer at most: a request with thousands of parameters would otherwise get
# them all back, an answer as long as the request.
_NAMES_LISTED = 5


def _listed(what: str, names: list[str]) -> str:
    """``unexpected body {{2}}, body {{3}}``; past a few, how many and the first few."""
    shown = ", ".join(_shown(n) for n in names[:_NAMES_LISTED])
    if len(names) <= _NAMES_LISTED:
        return f"{what} {shown}"
    return f"{len(names):,} {what}: {shown}, ..."


def _shown(name: str) -> str:
    """A variable as the integration named it: ``body {{1}}``, ``{{name}}``."""
    match = re.fullmatch(r"_([hb])([0-9]+)", name)
    if match:
        return ("header" if match.group(1) == "h" else "body") + " {{" + match.group(2) + "}}"
    if name == COPY_CODE_VARIABLE:
        return "the copy-code button's coupon_code"
    return "{{" + name + "}}"


def _unnumbered_names(sentence: str) -> str:
    return re.sub(r"'(_[hb][0-9]+)'", lambda m: _shown(m.group(1)), sentence)
