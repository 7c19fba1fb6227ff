"""The office page's pure parts: the page's language, yuan paid above the market, a commitment's totals, the page's
policy (self only, no inline code)."""

from decimal import Decimal

import pytest

from services.gateway.office import above_market_fen, commitment_rows, is_office
from services.gateway.office_routes import CSP, language, page_html

pytestmark = pytest.mark.unit


def activation(seq: int, basis: str, paid: int, market: int | None, quantity: str, as_of: str = "2020-10-20") -> dict:
    return {
        "seq": seq,
        "fill_id": f"f{seq}",
        "lot_id": f"lot-{seq}",
        "cooperative_id": "tangba",
        "grade": "B",
        "outlet_id": "yuping",
        "quantity": quantity,
        "price_as_of": as_of,
        "market_price_fen": market,
        "floor_price_fen": 400,
        "unit_price_fen": paid,
        "price_basis": basis,
        "revenue_fen": int(paid * Decimal(quantity)),
    }


def test_the_page_speaks_the_language_asked_for_else_the_one_the_browser_ranks_first():
    assert language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert language("en-GB,en;q=0.9,zh;q=0.8") == "en"
    assert language("fr-FR,zh;q=0.5,en;q=0.7") == "en"
    assert language("de-DE") == "en"
    assert language(None) == "en"
    assert language("en-US", "zh") == "zh"
    assert language("zh", "fr") == "zh"


def test_a_floor_activation_pays_the_difference_to_the_market_on_its_quantity_and_a_market_fill_nothing():
    assert above_market_fen(activation(1, "floor", 400, 360, "10000")) == Decimal(400_000)
    assert above_market_fen(activation(2, "floor", 400, 380, "2.5")) == Decimal(50)
    assert above_market_fen(activation(3, "floor", 400, None, "10")) == Decimal(4000)  # no market price known: all of it
    assert above_market_fen(activation(4, "market", 460, 460, "14000")) == 0


def test_a_commitment_lists_its_fills_by_date_and_sums_them():
    terms = [
        {"commitment_id": "yuping", "buyer_id": "yuping-oil-tea-co", "product": "oil_tea_fruit", "floor_price_fen": 400},
        {"commitment_id": "idle", "buyer_id": "b", "product": "chili", "floor_price_fen": 300},
    ]
    fills = [activation(2, "market", 460, 460, "14000", "2020-11-12"), activation(1, "floor", 400, 360, "10000", "2020-10-20")]
    yuping, idle = commitment_rows(terms, fills)
    assert [f["seq"] for f in yuping["fills"]] == [1, 2]
    assert yuping["activations"] == 1 and yuping["quantity"] == "24000"
    assert yuping["revenue_fen"] == 4_000_000 + 6_440_000 and yuping["above_market_fen"] == "400000"
    assert idle["fills"] == [] and idle["activations"] == 0 and idle["above_market_fen"] == "0"


def test_the_office_token_must_be_the_one_held():
    assert is_office("s3cret", "s3cret")
    assert not is_office("s3cre", "s3cret")
    assert not is_office(None, "s3cret") and not is_office("", "s3cret")


def test_the_page_loads_only_its_own_files_and_carries_no_inline_code():
    html = page_html("zh")
    assert '<html lang="zh">' in html and "<script>" not in html and "style=" not in html
    assert 'src="/static/office/office.js"' in html and 'href="/static/office/office.css"' in html
    assert "default-src 'self'" in CSP and "script-src 'self'" in CSP and "unsafe" not in CSP
