"""The HTTP gateway's routes (FastAPI; `farmlink gateway` serves them with uvicorn; OpenAPI at /docs).

Inputs in: `POST /v1/inputs` takes one signed input message, exactly the bytes a Kafka producer
sends, checks it as the owning service would (services/gateway/doors.py) and publishes it to the
owning input topic as the gateway's principal: 202 with the message id, or 400/401/403 with the
reason naming the field. Reads come from the gateway's own projection (services/gateway/projection.py);
a party's own data needs a request signed with its registered key (services/gateway/auth.py):
none or a bad one 401, another party's 403. Offers are public.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from services.gateway.backend import Backend
from services.gateway.input_routes import add_input_routes
from services.gateway.metrics import exposition, health_families
from services.gateway.office_routes import add_office_routes
from services.gateway.read_routes import add_read_routes


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
    add_input_routes(app, backend)
    add_read_routes(app, backend)
    add_health_routes(app, backend)
    add_office_routes(app, backend)
    return app


def add_health_routes(app: FastAPI, backend: Any) -> None:
    """Liveness, readiness and Prometheus metrics."""

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
