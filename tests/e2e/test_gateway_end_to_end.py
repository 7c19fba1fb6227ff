"""The HTTP gateway on the real broker, database and services, started as `farmlink up` starts them: a signed
harvest posted over HTTP is matched and reaches the buyer's fill stream; a forged one is refused with the
reason; a buyer reading another buyer's fills gets 403; /metrics moves when inputs flow."""

import asyncio
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from farmlink.operations import processes
from farmlink.operations.gateway import gateway_port
from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import input_message, publish_lines
from farmlink.producers.scenario import parse_line
from services.gateway.auth import sign_request
from tests import payloads
from tests.payloads import chili_order, fengjia

pytestmark = pytest.mark.e2e

KEYS = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-gateway-e2e-keys-")))
FORGER = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-gateway-e2e-forger-")))
SSE_DELIVERY_BOUND_S = 10.0
"""Generous: the fill must arrive, and the latency is printed; a loaded 2-core machine may be slow."""

FENGJIA = fengjia(("fj-1", True), ("fj-2", False))


def body(kind: str, payload: dict, keyring: Keyring = KEYS) -> tuple[str, bytes]:
    message = input_message(kind, payload, uuid.uuid4().hex, keyring)
    return message.message_id, message.model_dump_json().encode()


def proof(party: str, target: str, method: str = "GET") -> dict[str, str]:
    return sign_request(KEYS.private_key(party), method, target, party, time.time())


async def until(check, timeout: float = 120.0, every: float = 0.2):
    """The first truthy result of `check()` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s")
        await asyncio.sleep(every)


@pytest.fixture
async def http(gateway_system):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port()}", timeout=30) as client:
        yield client


async def post(http: httpx.AsyncClient, kind: str, payload: dict, keyring: Keyring = KEYS) -> str:
    message_id, raw = body(kind, payload, keyring)
    response = await http.post("/v1/inputs", content=raw)
    assert response.status_code == 202, response.text
    return message_id


async def receipt(http: httpx.AsyncClient, party: str, message_id: str, service: str) -> dict:
    target = f"/v1/receipts/{message_id}"

    async def found():
        response = await http.get(target, headers=proof(party, target))
        return next((r for r in response.json().get("receipts", []) if r["service"] == service), None)

    return await until(found)


async def metric(http: httpx.AsyncClient, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    text = (await http.get("/metrics")).text
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.split(" ")[0] == wanted:
            return float(line.split(" ")[1])
    return 0.0


async def test_parties_register_over_http_and_the_gateway_learns_their_keys(http):
    coop = await post(http, "cooperative.registered", FENGJIA)
    mart = await post(http, "buyer.registered", {"buyer_id": "tongren-mart", "name": "Tongren mart"})
    rival = await post(http, "buyer.registered", {"buyer_id": "rival-mart", "name": "Rival mart"})
    assert (await receipt(http, "cooperative:fengjia", coop, "cooperative"))["status"] == "accepted"
    assert (await receipt(http, "buyer:tongren-mart", mart, "buyer"))["status"] == "accepted"
    assert (await receipt(http, "buyer:rival-mart", rival, "buyer"))["status"] == "accepted"
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert {g["group"] for g in ready.json()["consumer_groups"] if g["members"] >= 1} >= {"farmlink.matching", "farmlink.gateway"}


async def test_a_signed_harvest_posted_over_http_is_matched_and_reaches_the_buyers_fill_stream(http):
    placed = await post(http, "order.placed", chili_order("mart-1", "tongren-mart", "80", 500))
    assert (await receipt(http, "buyer:tongren-mart", placed, "buyer"))["status"] == "accepted"
    inputs_before = await metric(http, "farmlink_gateway_inputs_total", type="harvest.recorded", outcome="published")
    fills_before = await metric(http, "farmlink_fills_total", price_basis="order_limit")

    target = "/v1/buyers/tongren-mart/stream"
    async with httpx.AsyncClient(base_url=str(http.base_url), timeout=httpx.Timeout(30, read=60)) as streaming:
        async with streaming.stream("GET", target, headers=proof("buyer:tongren-mart", target)) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await anext(lines) == ": listening"  # subscribed: nothing committed from here on is missed
            harvest = await post(http, "harvest.recorded", payloads.fengjia_lot("fj-chili-1", "100"))
            event, data = None, None
            async with asyncio.timeout(60):
                async for line in lines:
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == "fill":
                        data = orjson.loads(line.removeprefix("data: "))
                        break
            received = time.time()
    assert data is not None
    assert (data["lot_id"], data["outlet_id"], data["quantity"], data["unit_price_fen"]) == ("fj-chili-1", "mart-1", "80", 500)
    latency = received - datetime.fromisoformat(data["committed_at"]).timestamp()
    print(f"\nSSE: fill delivered {latency * 1000:.0f} ms after the matcher's batch began (its commit is a little later)")
    assert latency < SSE_DELIVERY_BOUND_S

    assert (await receipt(http, "cooperative:fengjia", harvest, "cooperative"))["status"] == "accepted"
    fills_target = "/v1/buyers/tongren-mart/fills"
    fills = (await http.get(fills_target, headers=proof("buyer:tongren-mart", fills_target))).json()["fills"]
    assert [(f["lot_id"], f["revenue_fen"]) for f in fills] == [("fj-chili-1", 40000)]
    lots_target = "/v1/cooperatives/fengjia/lots"
    [fengjia_lot] = (await http.get(lots_target, headers=proof("cooperative:fengjia", lots_target))).json()["lots"]
    assert fengjia_lot["household_income_fen"] == {"fj-1": 40000}
    assert [(o["lot_id"], o["quantity_left"]) for o in (await http.get("/v1/offers")).json()["offers"]] == [("fj-chili-1", "20")]

    assert await metric(http, "farmlink_gateway_inputs_total", type="harvest.recorded", outcome="published") == inputs_before + 1
    assert await until(lambda: _above(http, "farmlink_fills_total", fills_before, price_basis="order_limit"))
    assert await metric(http, "farmlink_fill_fen_total", price_basis="order_limit") >= 40000


async def _above(http, name: str, before: float, **labels) -> bool:
    return await metric(http, name, **labels) > before


async def test_a_forged_harvest_over_http_is_refused_with_the_reason(http):
    refused_before = await metric(http, "farmlink_gateway_inputs_total", type="harvest.recorded", outcome="refused")
    _, forged = body("harvest.recorded", payloads.fengjia_lot("forged-lot", "1000"), keyring=FORGER)
    response = await http.post("/v1/inputs", content=forged)
    assert response.status_code == 401
    assert response.json()["detail"] == "signature: does not verify with the key registered for cooperative fengjia"
    assert await metric(http, "farmlink_gateway_inputs_total", type="harvest.recorded", outcome="refused") == refused_before + 1
    offers = (await http.get("/v1/offers")).json()["offers"]
    assert "forged-lot" not in {o["lot_id"] for o in offers}


async def test_anyone_follows_the_offers_as_server_sent_events(http):
    async with httpx.AsyncClient(base_url=str(http.base_url), timeout=httpx.Timeout(30, read=60)) as streaming:
        async with streaming.stream("GET", "/v1/offers/stream") as stream:  # public: no proof
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await anext(lines) == ": listening"
            await post(
                http, "harvest.recorded", payloads.fengjia_lot("fj-chili-2", "30")
            )  # no open order left: it rests on offer
            async with asyncio.timeout(60):
                async for line in lines:
                    if line.startswith("data: "):
                        offer = orjson.loads(line.removeprefix("data: "))
                        if offer["lot_id"] == "fj-chili-2":
                            break
    assert (offer["event_type"], offer["quantity_left"], offer["cooperative_id"]) == ("OfferOpened", "30", "fengjia")


async def test_a_buyer_reading_another_buyers_fills_gets_403_and_without_proof_401(http):
    target = "/v1/buyers/tongren-mart/fills"
    response = await http.get(target, headers=proof("buyer:rival-mart", target))
    assert response.status_code == 403
    assert response.json()["detail"] == "buyer:rival-mart may not read the data of buyer:tongren-mart"
    assert (await http.get(target)).status_code == 401
    commitments = "/v1/buyers/tongren-mart/commitments"
    assert (await http.get(commitments, headers=proof("buyer:rival-mart", commitments))).status_code == 403
    own = "/v1/buyers/rival-mart/fills"
    assert (await http.get(own, headers=proof("buyer:rival-mart", own))).json()["fills"] == []


async def test_a_buyers_commitments_show_each_floor_activation_with_the_market_price_as_of_its_date(http, gateway_system):
    made = await post(
        http,
        "commitment.made",
        {
            "commitment_id": "mart-oiltea",
            "buyer_id": "tongren-mart",
            "product": "oil_tea_fruit",
            "min_grade": "B",
            "floor_price_fen": 400,
            "reference_market": "Tongren",
            "valid_from": "2020-10-01",
            "valid_to": "2020-12-31",
            "eligible_counties": ["Yanhe"],
            "eligible_cooperatives": [],
            "cap_quantity": None,
            "max_quantity_per_mu": None,
        },
    )
    assert (await receipt(http, "buyer:tongren-mart", made, "buyer"))["status"] == "accepted"
    price = parse_line(
        1,
        orjson.dumps(
            {
                "type": "market_price.observed",
                "payload": {
                    "product": "oil_tea_fruit",
                    "grade": "A",
                    "market": "Tongren",
                    "price_fen": 360,
                    "observed_on": "2020-10-01",
                },
            }
        ).decode(),
    )
    summary = await publish_lines(gateway_system.bootstrap, [price])  # the price feed speaks Kafka, not HTTP
    assert summary.accepted == 1, summary.rejected
    await post(
        http,
        "harvest.recorded",
        {
            "lot_id": "fj-oiltea-1",
            "cooperative_id": "fengjia",
            "product": "oil_tea_fruit",
            "grade": "A",
            "quantity": "500",
            "available_from": "2020-10-10",
            "expires_on": "2020-11-30",
            "contributions": [{"household_id": "fj-2", "quantity": "500"}],
        },
    )
    target = "/v1/buyers/tongren-mart/commitments"

    async def activated():
        [commitment] = (await http.get(target, headers=proof("buyer:tongren-mart", target))).json()["commitments"]
        return commitment if commitment["activations"] else None

    commitment = await until(activated)
    assert (commitment["commitment_id"], commitment["floor_price_fen"], commitment["reference_market"]) == (
        "mart-oiltea",
        400,
        "Tongren",
    )
    [activation] = commitment["activations"]
    assert {
        k: activation[k]
        for k in (
            "lot_id",
            "quantity",
            "price_as_of",
            "market_price_fen",
            "floor_price_fen",
            "unit_price_fen",
            "price_basis",
            "revenue_fen",
        )
    } == {
        "lot_id": "fj-oiltea-1",
        "quantity": "500",
        "price_as_of": "2020-10-10",
        "market_price_fen": 360,
        "floor_price_fen": 400,
        "unit_price_fen": 400,
        "price_basis": "floor",
        "revenue_fen": 200000,
    }


async def test_the_projection_survives_a_restart_of_the_gateway_without_counting_anything_twice(http):
    target = "/v1/buyers/tongren-mart/fills"
    before = (await http.get(target, headers=proof("buyer:tongren-mart", target))).json()["fills"]
    receipts_before = await metric(http, "farmlink_receipts_total", service="cooperative", status="accepted")
    processes.stop_gateway(say=lambda _: None)
    processes.start_gateway(say=lambda _: None)
    assert (await http.get(target, headers=proof("buyer:tongren-mart", target))).json()["fills"] == before
    assert await metric(http, "farmlink_receipts_total", service="cooperative", status="accepted") == receipts_before


async def test_the_gateways_role_reads_and_writes_its_own_schema_only(gateway_system):
    conn = await asyncpg.connect(gateway_system.service_dsn("gateway"))
    try:
        assert await conn.fetchval("SELECT current_user") == "farmlink_gateway"
        assert await conn.fetchval("SELECT count(*) FROM gateway.fills") >= 1
        for statement in (
            "SELECT count(*) FROM matching.events",
            "SELECT count(*) FROM settlement.fills",
            "DELETE FROM gateway.fills",
            "DELETE FROM gateway.events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
