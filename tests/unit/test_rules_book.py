"""What a book does over time: partial fills and cancellations, the offers it opens, shrinks and closes, duplicates and numbering."""

import pytest

from matcher import Book, Fill, Market, OfferClosed, OfferOpened, OfferShrunk, OrderCancellation
from tests.unit.matcher_facts import D, commitment, day, fills, lot, matches, order, planting, price, run

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- partial fills and cancellation


def test_lot_bigger_than_the_order_fills_it_and_rests_with_the_rest():
    outcomes = run(order(quantity="30"), lot(quantity="100"))
    assert [type(o) for o in outcomes] == [Fill, OfferOpened]
    assert outcomes[1].quantity_left == D("70")


def test_order_bigger_than_the_lot_takes_it_all_and_waits_for_more():
    assert matches(lot("L1", "30"), order(quantity="100"), lot("L2", "100")) == [
        ("L1", "O1", D("30")),
        ("L2", "O1", D("70")),
    ]


def test_cancelled_order_takes_no_more_produce_but_its_fills_stand():
    book = Book("chili")
    book.process(order(quantity="100"))
    filled = book.process(lot("L1", "30"))
    assert fills(filled)[0].quantity == D("30")
    assert book.process(OrderCancellation("O1", "chili")) == []
    assert book.open_outlets() == ()
    assert fills(book.process(lot("L2", "50"))) == []
    assert book.fills_so_far == 1


def test_cancelling_an_unknown_order_has_no_outcome():
    assert run(OrderCancellation("nobody", "chili")) == []


def test_cancelling_an_order_twice_has_no_further_outcome():
    book = Book("chili")
    book.process(order())
    assert book.process(OrderCancellation("O1", "chili")) == []
    assert book.process(OrderCancellation("O1", "chili")) == []


def test_cancelling_a_filled_order_changes_nothing():
    outcomes = run(order(quantity="10"), lot("L1", "10"), OrderCancellation("O1", "chili"), lot("L2", "5"))
    assert [f.lot_id for f in fills(outcomes)] == ["L1"]


def test_cancellation_before_the_order_is_not_remembered():
    assert matches(OrderCancellation("O1", "chili"), order(), lot())


def test_an_order_is_not_cancelled_by_a_cancellation_in_another_products_book():
    assert matches(order(), OrderCancellation("O1", "sorghum"), lot())


# ---------------------------------------------------------------- offers


def test_lot_with_no_eligible_outlet_opens_an_offer_for_all_of_it():
    arriving = lot("L1", "12.5", county="Yanhe", township="Ketian", grade="B", available_from=day(2), expires_on=day(9))
    assert run(arriving) == [OfferOpened("L1", "chili", "B", "co1", "Yanhe", "Ketian", D("12.5"), day(2), day(9), 1)]


def test_lot_used_up_on_arrival_opens_no_offer():
    assert [type(o) for o in run(order(quantity="100"), lot(quantity="100"))] == [Fill]


def test_lot_partly_filled_on_arrival_reports_its_fills_then_the_offer_of_the_rest():
    outcomes = run(order("O1", "10"), order("O2", "20"), lot(quantity="50"))
    assert [type(o) for o in outcomes] == [Fill, Fill, OfferOpened]
    assert outcomes[-1].quantity_left == D("20")
    assert outcomes[-1].journal_seq == 3


def test_outlet_partly_filling_a_resting_lot_shrinks_the_offer():
    outcomes = run(lot(quantity="50"), order(quantity="20"))
    assert outcomes[1:] == [fills(outcomes)[0], OfferShrunk("L1", "chili", D("30"), 2)]


def test_outlet_using_up_a_resting_lot_closes_the_offer():
    book = Book("chili")
    book.process(lot(quantity="50"))
    outcomes = book.process(order(quantity="80"))
    assert [type(o) for o in outcomes] == [Fill, OfferClosed]
    assert outcomes[1] == OfferClosed("L1", "chili", 2)
    assert book.resting_lots() == ()


def test_each_fill_of_an_arriving_outlet_is_followed_by_its_offer_change():
    outcomes = run(lot("L1", "10", expires_on=day(5)), lot("L2", "10", expires_on=day(6)), order(quantity="15"))
    assert [(type(o).__name__, o.lot_id) for o in outcomes[2:]] == [
        ("Fill", "L1"),
        ("OfferClosed", "L1"),
        ("Fill", "L2"),
        ("OfferShrunk", "L2"),
    ]


def test_resting_lots_view_lists_offers_in_the_order_outlets_take_them():
    book = Book("chili")
    for fact in (lot("L1", "5", expires_on=day(9)), lot("L2", "5", expires_on=day(8)), order("O1", "2", min_grade="A")):
        book.process(fact)
    assert [(view.lot.lot_id, view.quantity_left, view.journal_seq) for view in book.resting_lots()] == [
        ("L2", D("3"), 2),
        ("L1", D("5"), 1),
    ]


def test_open_outlets_view_lists_orders_and_commitments_in_journal_order():
    book = Book("chili")
    for fact in (commitment("C1", cap="10"), order("O1", "5", 700), order("O2", "5", 900), commitment("C2")):
        book.process(fact)
    assert [(v.outlet_kind, v.quantity_left, v.journal_seq) for v in book.open_outlets()] == [
        ("commitment", D("10"), 1),
        ("order", D("5"), 2),
        ("order", D("5"), 3),
        ("commitment", None, 4),
    ]


# ---------------------------------------------------------------- duplicates and numbering


def test_second_lot_with_the_same_id_is_ignored():
    outcomes = run(lot("L1", "10"), lot("L1", "99"), order(quantity="100"))
    assert outcomes[1:] == [fills(outcomes)[0], OfferClosed("L1", "chili", 3)]
    assert fills(outcomes)[0].quantity == D("10")


def test_second_order_with_the_same_id_is_ignored_even_after_the_first_is_filled():
    assert matches(order("O1", "10"), lot("L1", "10"), order("O1", "10"), lot("L2", "10")) == [("L1", "O1", D("10"))]


def test_second_commitment_with_the_same_id_is_ignored():
    assert matches(commitment("C1", cap="10"), commitment("C1", cap="10"), lot(quantity="100")) == [("L1", "C1", D("10"))]


def test_second_planting_with_the_same_id_is_ignored():
    assert matches(planting("P1", "1"), planting("P1", "1"), commitment(per_mu="10"), lot()) == [("L1", "C1", D("10"))]


def test_journal_numbers_count_every_input_including_ignored_ones():
    book = Book("chili")
    for fact in (lot("L1", "10"), lot("L1", "10"), price(900), OrderCancellation("x", "chili")):
        book.process(fact)
    [the_fill, _closed] = book.process(order())
    assert (the_fill.journal_seq, book.journal_seq) == (5, 5)


def test_fill_positions_count_per_product_book():
    outcomes = run(
        order("O1", "1", product="chili"),
        order("O1", "1", product="sorghum"),
        lot("L1", "5", product="sorghum"),
        lot("L1", "5", product="chili"),
        order("O2", "1", product="chili"),
    )
    assert [(f.product, f.position, f.journal_seq) for f in fills(outcomes)] == [
        ("sorghum", 1, 2),
        ("chili", 1, 2),
        ("chili", 2, 3),
    ]


def test_book_refuses_a_fact_of_another_product_without_numbering_it():
    book = Book("chili")
    with pytest.raises(ValueError):
        book.process(lot(product="sorghum"))
    assert book.journal_seq == 0


def test_book_and_market_refuse_what_is_not_a_fact():
    with pytest.raises(TypeError):
        Book("chili").process("chili")
    with pytest.raises(TypeError):
        Market().process(None)
