"""The HTTP gateway's routes (FastAPI; `farmlink gateway` serves them with uvicorn; OpenAPI at /docs).

Inputs in: `POST /v1/inputs` takes one signed input message, exactly the bytes a Kafka producer
sends, checks it as the owning service would (services/gateway/doors.py) and publishes it to the
owning input topic as the gateway's principal: 202 with the message id, or 400/401/403 with the
reason naming the field. Reads come from the gateway's own projection (services/gateway/projection.py);
a party's own data needs a request signed with its registered key (services/gateway/auth.py):
none or a bad one 401, another party's 403. Offers are public.
"""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from events.codec import MAX_INPUT_BYTES
from services.gateway.auth import Unauthenticated, signed_request, verify_request
from services.gateway.backend import Backend
from services.gateway.doors import Refused, admit, read
from services.gateway.metrics import DOOR, exposition, health_families
from services.gateway.office_routes import add_office_routes
from services.gateway.streams import sse, stream

SIGNED = {
    "401": {"description": "no proof of the party, or one that does not hold (the reason names the header)"},
    "403": {"description": "the proven party is not the one whose data this is"},
}


def create_app(backend: Any = None, on_ready: Callable[[], None] | None = None, start: bool = True) -> FastAPI:
    """The gateway app over `backend` (a services.gateway.backend.Backend by default; tests may pass one of
    their own); with `start`, the backend is opened and closed with the app's lifespan."""
    backend = backend if backend is not None else Backend()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start:
            await backend.open()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if start:
                await backend.close()

    app = FastAPI(
        title="farmlink gateway",
        version="1",
        description="Post signed inputs; read receipts, offers, a buyer's fills and commitments, a cooperative's "
        "lots. Party data needs a signed request (Farmlink-Party, Farmlink-Timestamp, "
        "Farmlink-Signature; services/gateway/README.md).",
        lifespan=lifespan,
    )
    app.state.backend = backend

    async def proven(request: Request, kind: str, party_id: str) -> str:
        """The party the request proves; 401 without a valid proof, 403 when it is not `kind:party_id`."""
        target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        if request.scope.get("query_string"):
            target += "?" + request.scope["query_string"].decode("latin-1")
        try:
            proof = signed_request(request.headers)
            who = verify_request(proof, request.method, target, await backend.key_of(proof.party), time.time())
        except Unauthenticated as error:
            raise HTTPException(401, str(error), headers={"WWW-Authenticate": "Farmlink-Signature"}) from None
        wanted = f"{kind}:{party_id}"
        if kind and who != wanted:
            raise HTTPException(403, f"{who} may not read the data of {wanted}")
        return who

    @app.post(
        "/v1/inputs",
        status_code=202,
        responses={
            "400": {"description": "the body is not an input message the owning service would take; the reason names the field"},
            "401": {"description": "the signature does not verify with the key registered for the producer"},
            "403": {"description": "not an input a cooperative or buyer signs (market prices, settlement desk)"},
            "413": {"description": "over the services' 256 KiB input limit"},
            "503": {"description": "Kafka did not take it; post the same bytes again"},
        },
    )
    async def post_input(request: Request) -> dict:
        """Publish one signed input message (the JSON a Kafka producer sends) to its owning service's input topic."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_INPUT_BYTES:
            DOOR.labels("invalid", "refused").inc()
            return JSONResponse(
                {"detail": f"message of {length} bytes is over the {MAX_INPUT_BYTES}-byte input limit"}, status_code=413
            )
        body = await request.body()
        try:
            posted = read(body)
            admit(posted, await backend.key_of(posted.party))
        except Refused as refusal:
            DOOR.labels(_type_of(body), "refused").inc()
            return JSONResponse({"detail": refusal.reason}, status_code=refusal.status)
        message = posted.message
        await backend.record_posted(message.message_id, message.producer, message.type)
        try:
            await backend.publish(posted.topic, posted.key, body)
        except Exception as error:  # Kafka unreachable or refusing: the client may post the same bytes again
            DOOR.labels(message.type, "unpublished").inc()
            return JSONResponse(
                {
                    "detail": f"Kafka did not take the input ({type(error).__name__}: {error}); post the "
                    f"same message again: its message id makes a repeat harmless"
                },
                status_code=503,
            )
        DOOR.labels(message.type, "published").inc()
        return {
            "message_id": message.message_id,
            "correlation_id": message.correlation_id,
            "topic": posted.topic,
            "receipt": f"/v1/receipts/{message.message_id}",
        }

    @app.get("/v1/receipts/{message_id}", responses={**SIGNED, "404": {"description": "no receipt yet, or not posted here"}})
    async def get_receipts(message_id: str, request: Request) -> dict:
        """What the services did with an input posted here (accepted, rejected with the reason, journaled); for its producer."""
        who = await proven(request, "", "")
        producer = await backend.posted_by(message_id)
        if producer is None:
            raise HTTPException(404, f"message {message_id} was not posted through this gateway")
        if producer != who:
            raise HTTPException(403, f"{who} may not read the receipts of {producer}'s message")
        receipts = await backend.receipts(message_id)
        if not receipts:
            raise HTTPException(
                404, f"no receipt yet for message {message_id}: ask again in a moment", headers={"Retry-After": "1"}
            )
        return {"message_id": message_id, "receipts": receipts}

    @app.get("/v1/offers")
    async def get_offers() -> dict:
        """Lots on offer now and what is left of each (public market data: no proof needed)."""
        return {"offers": await backend.offers()}

    @app.get("/v1/offers/stream", response_class=StreamingResponse)
    async def stream_offers(request: Request) -> StreamingResponse:
        """Server-Sent Events: `offer` events (OfferOpened, OfferShrunk, OfferClosed) as they reach the gateway."""
        return sse(stream(request, backend, None, 0))

    @app.get("/v1/buyers/{buyer_id}/fills", responses=SIGNED)
    async def get_fills(
        buyer_id: str,
        request: Request,
        after: int = Query(0, ge=0, description="only fills after this seq"),
        limit: int = Query(1000, ge=1, le=10000, description="at most this many"),
    ) -> dict:
        """The buyer's fills in the order the gateway recorded them (`seq`), each with its price basis and revenue."""
        await proven(request, "buyer", buyer_id)
        return {"buyer_id": buyer_id, "fills": await backend.fills(buyer_id, after, limit)}

    @app.get("/v1/buyers/{buyer_id}/commitments", responses=SIGNED)
    async def get_commitments(buyer_id: str, request: Request) -> dict:
        """The buyer's guaranteed-floor commitments, each with its activations: fill, market price as of, floor, price paid."""
        await proven(request, "buyer", buyer_id)
        return {"buyer_id": buyer_id, "commitments": await backend.commitments(buyer_id)}

    @app.get("/v1/buyers/{buyer_id}/stream", response_class=StreamingResponse, responses=SIGNED)
    async def stream_buyer(
        buyer_id: str,
        request: Request,
        after: int | None = Query(
            None, ge=0, description="replay fills after this seq (default: new ones only; Last-Event-ID wins)"
        ),
    ) -> StreamingResponse:
        """Server-Sent Events: the buyer's `fill` events (id = seq; reconnect with Last-Event-ID) and every `offer` event."""
        await proven(request, "buyer", buyer_id)
        last = request.headers.get("Last-Event-ID")
        cursor = int(last) if last and last.isdigit() else after
        if cursor is None:
            cursor = await backend.last_fill(buyer_id)
        return sse(stream(request, backend, lambda after: backend.fills(buyer_id, after), cursor))

    @app.get("/v1/cooperatives/{cooperative_id}/lots", responses=SIGNED)
    async def get_lots(cooperative_id: str, request: Request) -> dict:
        """The cooperative's lots, each with its contributions, its fills and the income each household earned by them."""
        await proven(request, "cooperative", cooperative_id)
        return {"cooperative_id": cooperative_id, "lots": await backend.lots(cooperative_id)}

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={"503": {"description": "something is not ready; `problems` says what"}})
    async def readyz() -> JSONResponse:
        """Kafka, PostgreSQL and every service's consumer group (members, lag), and each service's outbox."""
        health = await backend.probe.health()
        body = {
            "ready": health.ready,
            "kafka": health.kafka,
            "postgres": health.postgres,
            "problems": health.problems,
            "consumer_groups": [vars(g) for g in health.groups],
            "outboxes": [vars(o) for o in health.outboxes],
        }
        return JSONResponse(body, status_code=200 if health.ready else 503)

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format (services/gateway/metrics.py lists every metric)."""
        families = health_families(await backend.probe.health()) + await backend.projection_counts()
        return Response(exposition(families), media_type="text/plain; version=0.0.4; charset=utf-8")

    add_office_routes(app, backend)
    return app


def _type_of(body: bytes) -> str:
    """The input type a refused body names, for the door's counter (bounded: unknown types count as `invalid`)."""
    from contracts.inputs import INPUT_TYPES

    try:
        kind = orjson.loads(body).get("type")
    except Exception:
        return "invalid"
    return kind if kind in INPUT_TYPES else "invalid"
