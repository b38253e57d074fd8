"""The price table: country calling code x template category, in integer micro-units."""

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.identifiers import CountryCode

TEMPLATE_CATEGORIES = ("marketing", "utility", "authentication")


class CountryPrices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    marketing: int = Field(ge=0)
    utility: int = Field(ge=0)
    authentication: int = Field(ge=0)


class PriceTable(BaseModel):
    """What a delivered template message costs; free-form service messages cost nothing."""

    model_config = ConfigDict(extra="forbid")

    currency: str
    unit: str = "micro"
    note: str = ""
    default: CountryPrices
    countries: dict[CountryCode, CountryPrices]

    @model_validator(mode="after")
    def _micro_units(self) -> "PriceTable":
        if self.unit != "micro":
            raise ValueError("prices must be integer micro-units (unit: micro)")
        return self

    def price(self, country: str | None, category: str) -> int:
        if category not in TEMPLATE_CATEGORIES:
            return 0
        row = self.countries.get(country or "", self.default)
        return int(getattr(row, category))
