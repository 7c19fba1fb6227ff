"""A party's reads: offers (public market data), a buyer's fills, commitments and live stream, a cooperative's lots;
a party's own data needs a request signed with its registered key (services/gateway/proof.py)."""

from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from services.gateway.proof import SIGNED, proven
from services.gateway.streams import sse, stream


def add_read_routes(app: FastAPI, backend: Any) -> None:
    """Offers and their stream, a buyer's fills, commitments and stream, a cooperative's lots."""

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
        await proven(backend, request, "buyer", buyer_id)
        return {"buyer_id": buyer_id, "fills": await backend.fills(buyer_id, after, limit)}

    @app.get("/v1/buyers/{buyer_id}/commitments", responses=SIGNED)
    async def get_commitments(buyer_id: str, request: Request) -> dict:
        """The buyer's guaranteed-floor commitments, each with its activations: fill, market price as of, floor, price paid."""
        await proven(backend, request, "buyer", buyer_id)
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
        await proven(backend, request, "buyer", buyer_id)
        last = request.headers.get("Last-Event-ID")
        cursor = int(last) if last and last.isdigit() else after
        if cursor is None:
            cursor = await backend.last_fill(buyer_id)
        return sse(stream(request, backend, lambda after: backend.fills(buyer_id, after), cursor))

    @app.get("/v1/cooperatives/{cooperative_id}/lots", responses=SIGNED)
    async def get_lots(cooperative_id: str, request: Request) -> dict:
        """The cooperative's lots, each with its contributions, its fills and the income each household earned by them."""
        await proven(backend, request, "cooperative", cooperative_id)
        return {"cooperative_id": cooperative_id, "lots": await backend.lots(cooperative_id)}
