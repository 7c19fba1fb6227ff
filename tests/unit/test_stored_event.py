"""The write path builds events without the envelope model; what it publishes must be byte for byte
what the model would publish, and the model must accept it back."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from contracts.envelope import Envelope
from contracts.market import MarketPriceObserved
from events.hashchain import canonical_json
from events.store import NewEvent, chain_envelopes, envelope_bytes

pytestmark = pytest.mark.unit

moments = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]),
)


@given(
    moment=moments,
    price=st.integers(min_value=1, max_value=10**12),
    market=st.text(min_size=1, max_size=20).filter(str.strip),
    causation=st.one_of(st.none(), st.text(max_size=10)),
)
def test_a_built_event_publishes_the_same_bytes_as_the_envelope_model(moment, price, market, causation):
    observed = MarketPriceObserved(
        product="chili", grade="A", market=market.strip() or "m", price_fen=price, observed_on=moment.date()
    )
    [built] = chain_envelopes(
        "market-price-chili",
        [NewEvent(observed, occurred_at=moment)],
        (4, "ab" * 32),
        producer="service:market",
        correlation_id="run:1",
        causation_id=causation,
        now=moment,
    )
    positioned = type(built)(**{**{f: getattr(built, f) for f in built.__slots__}, "global_position": 41})
    model = Envelope(**{f: getattr(positioned, f) for f in positioned.__slots__})
    assert envelope_bytes(positioned) == canonical_json(model.model_dump(mode="json")).encode()
    assert positioned.envelope() == model


def test_the_event_id_and_versions_follow_the_head():
    observed = MarketPriceObserved(
        product="chili", grade="A", market="Tongren", price_fen=700, observed_on=datetime(2020, 1, 1).date()
    )
    built = chain_envelopes(
        "s",
        [NewEvent(observed), NewEvent(observed, event_id=uuid.UUID(int=7))],
        (0, ""),
        producer="p",
        correlation_id="c",
        causation_id=None,
        now=datetime(2020, 1, 1, tzinfo=timezone.utc),
    )
    assert [e.stream_version for e in built] == [1, 2]
    assert built[0].prev_hash == "" and built[1].prev_hash == built[0].hash
    assert built[1].event_id == uuid.UUID(int=7)
