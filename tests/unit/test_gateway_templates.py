"""Cloud API templates and Sealpost templates in each other's terms (client/gateway/templates.py):
pure translation, no relay."""

import pytest

from client.gateway.errors import GraphError
from client.gateway.shapes import SendComponent, TemplateCreate
from client.gateway.templates import cloud_template, draft_from_cloud, fill
from shared.api import TemplateInfo
from shared.templates import finalize, template_hash, validate_draft

POSITIONAL = TemplateCreate.model_validate(
    {
        "name": "restock",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Back at {{1}}",
             "example": {"header_text": ["ACME"]}},
            {"type": "BODY", "text": "Hi {{1}}, the {{2}} is back.",
             "example": {"body_text": [["Ana", "Blue Runner"]]}},
            {"type": "FOOTER", "text": "ACME Shoes"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Hold one for me"},
                {"type": "URL", "text": "Shop", "url": "https://acme.example"},
                {"type": "COPY_CODE", "example": "BACK10"},
            ]},
        ],
    }
)  # fmt: skip


def registered(create: TemplateCreate) -> TemplateInfo:
    translation = draft_from_cloud(create)
    assert translation.draft is not None, translation.problems
    final, reason = finalize(translation.draft)
    assert validate_draft(final) == []
    return TemplateInfo(
        id="tpl_0123456789abcdef",
        business="acme",
        hash=template_hash("acme", final),
        category=final.category,
        requested_category=translation.draft.category,
        reclassified_reason=reason,
        template=final,
        created_at=0,
    )


def test_a_positional_template_reads_back_as_it_was_written():
    found = cloud_template(registered(POSITIONAL))
    assert found["parameter_format"] == "POSITIONAL"
    header, body, footer, buttons = found["components"]
    assert header == {"type": "HEADER", "format": "TEXT", "text": "Back at {{1}}",
                      "example": {"header_text": ["ACME"]}}  # fmt: skip
    assert body["text"] == "Hi {{1}}, the {{2}} is back."
    assert body["example"] == {"body_text": [["Ana", "Blue Runner"]]}
    assert footer == {"type": "FOOTER", "text": "ACME Shoes"}
    # Sealpost's own opt-out button comes last, as every marketing template carries it.
    assert [b["type"] for b in buttons["buttons"]] == ["QUICK_REPLY", "URL", "COPY_CODE",
                                                       "QUICK_REPLY"]  # fmt: skip
    assert buttons["buttons"][-1]["text"] == "Stop promotions"


def test_header_and_body_each_count_from_one_and_buttons_take_their_parameters():
    draft = registered(POSITIONAL).template
    components = [
        SendComponent.model_validate(c)
        for c in [
            {"type": "HEADER", "parameters": [{"type": "text", "text": "ACME Milano"}]},
            {"type": "BODY", "parameters": [
                {"type": "text", "text": "Dora"},
                {"type": "currency", "currency": {"fallback_value": "EUR 89", "code": "EUR",
                                                  "amount_1000": 89000}},
            ]},
            {"type": "button", "sub_type": "QUICK_REPLY", "index": "0",
             "parameters": [{"type": "payload", "payload": "hold-blue-38"}]},
            {"type": "button", "sub_type": "COPY_CODE", "index": 2,
             "parameters": [{"type": "coupon_code", "coupon_code": "DORA10"}]},
        ]
    ]  # fmt: skip
    filled = fill(draft, components)
    assert filled.variables == {
        "_h1": "ACME Milano",
        "_b1": "Dora",
        "_b2": "EUR 89",
        "coupon_code": "DORA10",
    }
    assert filled.payloads == {0: "hold-blue-38"}


@pytest.mark.parametrize(
    ("components", "code", "says"),
    [
        ([{"type": "body", "parameters": [{"type": "text", "text": "Dora"}]}], 132000,
         "missing header {{1}}"),
        ([{"type": "body", "parameters": [{"type": "text", "text": "D", "parameter_name": "n"}]}],
         132012, "named parameters for a template created with parameter_format POSITIONAL"),
        ([{"type": "button", "sub_type": "url", "index": 1,
           "parameters": [{"type": "text", "text": "?ref=dora"}]}], 131009, "same for everyone"),
        ([{"type": "header", "parameters": [{"type": "image", "image": {"link": "x"}}]}], 131009,
         "text, currency and date_time"),
    ],
)  # fmt: skip
def test_what_does_not_fit_is_named_in_the_cloud_api_terms(components, code, says):
    draft = registered(POSITIONAL).template
    with pytest.raises(GraphError) as caught:
        fill(draft, [SendComponent.model_validate(c) for c in components])
    assert caught.value.code == code
    assert says in caught.value.details


def test_what_sealpost_cannot_carry_is_refused_with_the_reason():
    create = POSITIONAL.model_copy(deep=True)
    create.components[0].format = "IMAGE"
    create.components[3].buttons[1].url = "https://acme.example/{{1}}"  # type: ignore[index]
    problems = draft_from_cloud(create).problems
    assert [p.rule for p in problems] == ["gateway_media", "gateway_dynamic_url"]
    assert "cannot carry a tracker" in problems[1].message


def test_a_promotional_utility_template_comes_back_marketing():
    create = TemplateCreate.model_validate(
        {
            "name": "order_note",
            "language": "en",
            "category": "utility",
            "parameter_format": "NAMED",
            "components": [{"type": "BODY", "text": "Your order is ready. 30% off today only!"}],
        }
    )
    found = cloud_template(registered(create))
    assert (found["category"], found["previous_category"]) == ("MARKETING", "UTILITY")
    assert found["parameter_format"] == "NAMED"


def test_a_templates_quality_is_listed_as_meta_lists_it():
    from client.gateway.templates import cloud_status

    assert cloud_status(None, 0) == ("APPROVED", {"score": "UNKNOWN"})
    unrated = {"rating": "medium", "campaigns": 0, "paused_until": None, "disabled": False}
    assert cloud_status(unrated, 0) == ("APPROVED", {"score": "UNKNOWN"})
    paused = {"rating": "low", "campaigns": 2, "paused_until": 5_000, "disabled": False}
    assert cloud_status(paused, 1_000) == ("PAUSED", {"score": "RED"})
    assert cloud_status(paused, 6_000) == ("APPROVED", {"score": "RED"})
    disabled = {**paused, "disabled": True}
    assert cloud_status(disabled, 6_000) == ("DISABLED", {"score": "RED"})
    good = {"rating": "high", "campaigns": 3, "paused_until": None, "disabled": False}
    assert cloud_status(good, 0) == ("APPROVED", {"score": "GREEN"})
