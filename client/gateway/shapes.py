"""The Cloud API's JSON shapes the gateway reads and writes, as pydantic models.

Requests are read leniently where the Cloud API is (upper- or lower-case component types,
fields Sealpost has no use for are ignored and listed in docs/gateway.md); answers are written
exactly as the Cloud API writes them, so a client library parses them unchanged.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Lenient(BaseModel):
    # The Cloud API accepts fields this gateway has no use for (e.g. biz_opaque_callback_data
    # on a template); they are ignored rather than refused, as docs/gateway.md lists.
    model_config = ConfigDict(extra="ignore")


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# --- sending ---------------------------------------------------------------------------------


class Currency(_Lenient):
    fallback_value: str
    code: str | None = None
    amount_1000: int | None = None


class DateTime(_Lenient):
    fallback_value: str


class Parameter(_Lenient):
    """One parameter of a template component: text (positional, or named with
    ``parameter_name``), currency and date_time (their fallback_value is what is shown),
    a quick reply's payload, a copy-code button's coupon_code."""

    type: str
    text: str | None = None
    parameter_name: str | None = None
    currency: Currency | None = None
    date_time: DateTime | None = None
    payload: str | None = None
    coupon_code: str | None = None

    _type = field_validator("type", mode="before")(classmethod(lambda cls, v: _lower(v)))


class SendComponent(_Lenient):
    type: str
    sub_type: str | None = None
    index: int | str | None = None
    parameters: list[Parameter] = Field(default_factory=list)

    _type = field_validator("type", "sub_type", mode="before")(
        classmethod(lambda cls, v: _lower(v))
    )


class Language(_Lenient):
    code: str
    policy: str | None = None


class TemplateMessage(_Lenient):
    name: str
    language: Language
    components: list[SendComponent] = Field(default_factory=list)


class TextMessage(_Lenient):
    body: str = Field(min_length=1, max_length=4096)
    preview_url: bool = False


class ReplyId(_Lenient):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=20)


class ReplyButton(_Lenient):
    type: Literal["reply"] = "reply"
    reply: ReplyId


class InteractiveAction(_Lenient):
    buttons: list[ReplyButton] = Field(default_factory=list, max_length=3)


class InteractiveText(_Lenient):
    text: str = Field(min_length=1, max_length=1024)


class InteractiveHeader(_Lenient):
    type: str
    text: str | None = None


class Interactive(_Lenient):
    type: str
    header: InteractiveHeader | None = None
    body: InteractiveText
    footer: InteractiveText | None = None
    action: InteractiveAction


class Context(_Lenient):
    message_id: str


class SendMessage(_Lenient):
    messaging_product: Literal["whatsapp"]
    recipient_type: str = "individual"
    to: str | None = None
    recipient: str | None = None  # a business-scoped user id, as newer Cloud API versions use
    type: str = "text"
    context: Context | None = None
    template: TemplateMessage | None = None
    text: TextMessage | None = None
    interactive: Interactive | None = None
    biz_opaque_callback_data: str | None = Field(default=None, max_length=512)
    # Marking a received message read (and the typing indicator that comes with it): the
    # same endpoint, with status "read" and the message's id instead of a message.
    status: str | None = None
    message_id: str | None = Field(default=None, max_length=256)
    typing_indicator: dict[str, Any] | None = None


class SentContact(BaseModel):
    input: str
    wa_id: str | None = None
    user_id: str


class SentId(BaseModel):
    id: str
    message_status: str | None = None


class SendAnswer(BaseModel):
    """``POST /{phone-number-id}/messages``'s answer; the same for every accepted message,
    whatever the person's choices make of it."""

    messaging_product: Literal["whatsapp"] = "whatsapp"
    contacts: list[SentContact]
    messages: list[SentId]


# --- templates -------------------------------------------------------------------------------


class NamedExample(_Lenient):
    param_name: str
    example: str


class TemplateExample(_Lenient):
    header_text: list[str] | None = None
    body_text: list[list[str]] | None = None
    header_text_named_params: list[NamedExample] | None = None
    body_text_named_params: list[NamedExample] | None = None


class TemplateButton(_Lenient):
    type: str
    text: str | None = None
    url: str | None = None
    example: list[str] | str | None = None
    phone_number: str | None = None

    _type = field_validator("type", mode="before")(classmethod(lambda cls, v: _upper(v)))


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class TemplateComponent(_Lenient):
    type: str
    format: str | None = None
    text: str | None = None
    example: TemplateExample | None = None
    buttons: list[TemplateButton] | None = None

    _type = field_validator("type", "format", mode="before")(classmethod(lambda cls, v: _upper(v)))


class TemplateCreate(_Lenient):
    name: str = Field(min_length=1, max_length=512)
    language: str
    category: str
    parameter_format: str = "POSITIONAL"
    components: list[TemplateComponent]
    allow_category_change: bool | None = None

    _upper_fields = field_validator("category", "parameter_format", mode="before")(
        classmethod(lambda cls, v: _upper(v))
    )


class TemplateCreated(BaseModel):
    id: str
    status: Literal["APPROVED", "REJECTED"]
    category: str
