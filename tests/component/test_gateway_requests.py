"""The gateway's doors without Kafka or PostgreSQL: what a posted input must be to be published, and who may
read what. The routes run on an in-memory backend (registered keys, posted inputs, published records, fills);
tests/e2e/test_gateway_end_to_end.py runs the same routes on the real broker, database and services."""

import json
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from contracts.topics import BUYER_INPUT, COOPERATIVE_INPUT
from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import input_message
from services.gateway.app import create_app
from services.gateway.auth import MAX_SKEW_S, sign_request
from services.gateway.backend import Hub

pytestmark = pytest.mark.component

KEYS = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-gateway-keys-")))
FORGER = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-gateway-forger-")))
FENGJIA, MART, RIVAL = "cooperative:fengjia", "buyer:tongren-mart", "buyer:rival"

LOT = {
    "lot_id": "fj-chili-1",
    "cooperative_id": "fengjia",
    "product": "chili",
    "grade": "A",
    "quantity": "100",
    "available_from": "2020-08-01",
    "expires_on": "2020-08-20",
    "contributions": [{"household_id": "fj-1", "quantity": "60"}, {"household_id": "fj-2", "quantity": "40"}],
}


class MemoryBackend:
    """The routes' backend, in memory: what the projection would hold, and what was published."""

    def __init__(self, keys: dict[str, str]):
        self.keys = keys
        self.hub = Hub()
        self.published: list[tuple[str, bytes, bytes]] = []
        self.posted: dict[str, str] = {}
        self.receipt_rows: dict[str, list[dict]] = {}
        self.fill_rows: list[dict] = []

    async def key_of(self, party):
        return self.keys.get(party)

    async def publish(self, topic, key, value):
        self.published.append((topic, key, value))

    async def record_posted(self, message_id, producer, input_type):
        self.posted.setdefault(message_id, producer)

    async def posted_by(self, message_id):
        return self.posted.get(message_id)

    async def receipts(self, message_id):
        return self.receipt_rows.get(message_id, [])

    async def offers(self):
        return [{"lot_id": "fj-chili-1", "quantity_left": "20"}]

    async def fills(self, buyer_id, after=0, limit=1000):
        return [f for f in self.fill_rows if f["buyer_id"] == buyer_id and f["seq"] > after][:limit]


@pytest.fixture
def backend():
    return MemoryBackend({party: KEYS.public_key(party) for party in (FENGJIA, MART, RIVAL)})


@pytest.fixture
async def client(backend):
    app = create_app(backend, start=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        yield client


def signed(kind: str, fields: dict, keyring: Keyring = KEYS, **changes) -> bytes:
    """The wire bytes of an input signed by its producer (`changes` alter fields after signing: a forgery)."""
    message = input_message(kind, fields, "corr-1", keyring, message_id=changes.pop("message_id", "msg-1"))
    return message.model_copy(update=changes).model_dump_json().encode()


def proof(party: str, method: str, target: str, keyring: Keyring = KEYS, now: float | None = None) -> dict[str, str]:
    return sign_request(keyring.private_key(party), method, target, party, time.time() if now is None else now)


async def test_a_signed_harvest_of_a_registered_cooperative_is_published_unchanged_to_its_input_topic(client, backend):
    body = signed("harvest.recorded", LOT)
    response = await client.post("/v1/inputs", content=body)
    assert response.status_code == 202
    assert response.json()["message_id"] == "msg-1"
    assert backend.published == [(COOPERATIVE_INPUT, FENGJIA.encode(), body)]
    assert backend.posted == {"msg-1": FENGJIA}


async def test_a_buyer_registration_is_checked_against_the_key_it_carries_and_goes_to_the_buyer_topic(client, backend):
    body = signed("buyer.registered", {"buyer_id": "new-buyer", "name": "New buyer"})
    assert (await client.post("/v1/inputs", content=body)).status_code == 202
    assert backend.published[0][0] == BUYER_INPUT
    forged = signed(
        "buyer.registered",
        {"buyer_id": "new-buyer", "name": "New buyer"},
        payload={"buyer_id": "new-buyer", "name": "Someone else", "public_key": KEYS.public_key("buyer:new-buyer")},
    )
    response = await client.post("/v1/inputs", content=forged)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("signature: does not verify with the public key in the registration")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"", "empty message"),
        (
            json.dumps({"message_id": "m", "type": "harvest.recorded", "producer": FENGJIA, "correlation_id": "c"}).encode(),
            "payload: Field required",
        ),
        (
            json.dumps(
                {
                    "message_id": "m",
                    "type": "harvest.recorded",
                    "producer": FENGJIA,
                    "correlation_id": "c",
                    "payload": {**LOT, "quantity": "-1"},
                }
            ).encode(),
            "payload.quantity",
        ),
        (
            json.dumps(
                {"message_id": "m", "type": "hay.recorded", "producer": FENGJIA, "correlation_id": "c", "payload": {}}
            ).encode(),
            "unknown input type 'hay.recorded'",
        ),
    ],
)
async def test_a_malformed_body_is_refused_with_400_naming_the_field_and_nothing_is_published(client, backend, body, reason):
    response = await client.post("/v1/inputs", content=body)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert backend.published == []


async def test_an_unsigned_harvest_is_refused_with_400_and_the_reason(client, backend):
    response = await client.post("/v1/inputs", content=signed("harvest.recorded", LOT, signature=None))
    assert response.status_code == 400
    assert response.json()["detail"].startswith("signature: missing")


async def test_a_forged_harvest_is_refused_with_401_and_the_services_reason(client, backend):
    body = signed("harvest.recorded", LOT, keyring=FORGER)
    response = await client.post("/v1/inputs", content=body)
    assert response.status_code == 401
    assert response.json()["detail"] == "signature: does not verify with the key registered for cooperative fengjia"
    altered = signed(
        "harvest.recorded",
        LOT,
        payload={**LOT, "quantity": "1000", "contributions": [{"household_id": "fj-1", "quantity": "1000"}]},
    )
    assert (await client.post("/v1/inputs", content=altered)).status_code == 401
    assert backend.published == []


async def test_a_harvest_in_another_cooperatives_name_is_refused_with_400_naming_the_producer(client, backend):
    response = await client.post("/v1/inputs", content=signed("harvest.recorded", LOT, producer="cooperative:other"))
    assert response.status_code == 400
    assert response.json()["detail"].startswith("producer: cooperative:other cannot submit for cooperative fengjia")


async def test_an_input_of_a_party_the_gateway_does_not_know_yet_is_passed_on_for_its_service_to_verify(client, backend):
    body = signed("harvest.recorded", {**LOT, "cooperative_id": "newcomer"})
    assert (await client.post("/v1/inputs", content=body)).status_code == 202
    assert backend.published[0][1] == b"cooperative:newcomer"


async def test_price_feeds_and_settlement_desks_publish_on_kafka_not_over_http(client, backend):
    price = signed(
        "market_price.observed",
        {"product": "chili", "grade": "A", "market": "Tongren", "price_fen": 400, "observed_on": "2020-08-01"},
    )
    response = await client.post("/v1/inputs", content=price)
    assert response.status_code == 403
    assert response.json()["detail"].startswith("type: market_price.observed is not a cooperative's or buyer's input")
    desk = signed("settlement_desk.registered", {"desk_id": "main", "name": "county settlement desk"})
    assert (await client.post("/v1/inputs", content=desk)).status_code == 403
    assert backend.published == []


async def test_offers_are_public(client):
    response = await client.get("/v1/offers")
    assert response.status_code == 200 and response.json()["offers"][0]["lot_id"] == "fj-chili-1"


async def test_a_buyer_reads_its_own_fills_with_a_signed_request(client, backend):
    backend.fill_rows = [
        {"seq": 1, "buyer_id": "tongren-mart", "fill_id": "f1"},
        {"seq": 2, "buyer_id": "rival", "fill_id": "f2"},
    ]
    target = "/v1/buyers/tongren-mart/fills"
    response = await client.get(target, headers=proof(MART, "GET", target))
    assert response.status_code == 200
    assert [f["fill_id"] for f in response.json()["fills"]] == ["f1"]


async def test_reading_fills_without_proof_is_401_naming_the_missing_header(client):
    response = await client.get("/v1/buyers/tongren-mart/fills")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("Farmlink-Party: missing")
    assert response.headers["WWW-Authenticate"] == "Farmlink-Signature"


async def test_another_buyers_fills_are_403(client):
    target = "/v1/buyers/tongren-mart/fills"
    response = await client.get(target, headers=proof(RIVAL, "GET", target))
    assert response.status_code == 403
    assert response.json()["detail"] == "buyer:rival may not read the data of buyer:tongren-mart"


@pytest.mark.parametrize("case", ["forged key", "other path", "other query", "old timestamp", "unknown party", "party swapped"])
async def test_a_proof_that_does_not_hold_is_401(client, case):
    target = "/v1/buyers/tongren-mart/fills"
    headers = {
        "forged key": lambda: proof(MART, "GET", target, keyring=FORGER),
        "other path": lambda: proof(MART, "GET", "/v1/buyers/tongren-mart/commitments"),
        "other query": lambda: proof(MART, "GET", target + "?after=5"),
        "old timestamp": lambda: proof(MART, "GET", target, now=time.time() - MAX_SKEW_S - 5),
        "unknown party": lambda: proof("buyer:nobody", "GET", target),
        "party swapped": lambda: {**proof(MART, "GET", target), "Farmlink-Party": RIVAL},
    }[case]()
    response = await client.get(target, headers=headers)
    assert response.status_code == 401, response.json()


async def test_the_signature_covers_the_query_as_sent(client, backend):
    backend.fill_rows = [
        {"seq": 1, "buyer_id": "tongren-mart", "fill_id": "f1"},
        {"seq": 2, "buyer_id": "tongren-mart", "fill_id": "f2"},
    ]
    target = "/v1/buyers/tongren-mart/fills?after=1"
    response = await client.get(target, headers=proof(MART, "GET", target))
    assert [f["fill_id"] for f in response.json()["fills"]] == ["f2"]


async def test_a_receipt_is_read_by_the_producer_of_its_input_only(client, backend):
    assert (await client.post("/v1/inputs", content=signed("harvest.recorded", LOT, message_id="lot-msg"))).status_code == 202
    target = "/v1/receipts/lot-msg"
    assert (await client.get(target)).status_code == 401
    assert (await client.get(target, headers=proof(MART, "GET", target))).status_code == 403
    waiting = await client.get(target, headers=proof(FENGJIA, "GET", target))
    assert waiting.status_code == 404 and waiting.json()["detail"].startswith("no receipt yet")
    backend.receipt_rows["lot-msg"] = [{"status": "accepted", "service": "cooperative"}]
    response = await client.get(target, headers=proof(FENGJIA, "GET", target))
    assert response.status_code == 200 and response.json()["receipts"][0]["status"] == "accepted"


async def test_the_openapi_document_lists_every_route(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        "/v1/inputs",
        "/v1/receipts/{message_id}",
        "/v1/offers",
        "/v1/offers/stream",
        "/v1/buyers/{buyer_id}/fills",
        "/v1/buyers/{buyer_id}/commitments",
        "/v1/buyers/{buyer_id}/stream",
        "/v1/cooperatives/{cooperative_id}/lots",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(paths)
    assert (await client.get("/docs")).status_code == 200


async def test_a_body_over_the_input_limit_is_refused_unread_with_413(client, backend):
    response = await client.post("/v1/inputs", content=b"{" + b" " * 300_000 + b"}")
    assert response.status_code == 413
    assert "over the 262144-byte input limit" in response.json()["detail"]


async def test_when_kafka_does_not_take_an_input_the_client_is_told_to_post_it_again(client, backend):
    async def refuse(topic, key, value):
        raise ConnectionError("broker down")

    backend.publish = refuse
    response = await client.post("/v1/inputs", content=signed("harvest.recorded", LOT))
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Kafka did not take the input (ConnectionError: broker down)")
