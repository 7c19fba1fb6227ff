"""The product catalogue: every product farmlink trades and its unit."""

from typing import Literal

Product = Literal[
    "oil_tea_fruit",
    "chili",
    "black_fungus",
    "sweet_potato",
    "live_pig",
    "eco_chicken",
    "tea_leaf",
    "sorghum",
    "citrus",
    "vegetables",
    "tea_tree_mushroom",
    "white_goat",
]

UNITS: dict[str, str] = {
    "oil_tea_fruit": "kg",
    "chili": "kg",
    "black_fungus": "kg",
    "sweet_potato": "kg",
    "live_pig": "head",
    "eco_chicken": "head",
    "tea_leaf": "kg",
    "sorghum": "kg",
    "citrus": "kg",
    "vegetables": "kg",
    "tea_tree_mushroom": "kg",
    "white_goat": "head",
}

PRODUCTS: tuple[str, ...] = tuple(UNITS)


def unit_of(product: str) -> str:
    """The unit a product is counted in: kg, or head for livestock."""
    return UNITS[product]


def is_livestock(product: str) -> bool:
    """Livestock is counted in whole head."""
    return UNITS[product] == "head"
