"""Loads the relay's price table (shape: shared.pricing.PriceTable)."""

import json
from functools import cache
from importlib import resources
from pathlib import Path

from shared.pricing import PriceTable


@cache
def load_price_table(path: str | None = None) -> PriceTable:
    """The shipped table, or the JSON file at ``path`` (same shape as server/data/prices.json)."""
    if path:
        text = Path(path).read_text()
    else:
        text = resources.files("server").joinpath("data/prices.json").read_text()
    return PriceTable.model_validate(json.loads(text))
