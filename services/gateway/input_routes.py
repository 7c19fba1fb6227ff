"""`POST /v1/inputs`: one signed input message, exactly the bytes a Kafka producer sends, checked as the owning
service would (services/gateway/doors.py) and published to the owning input topic as the gateway's principal;
`GET /v1/receipts/{message_id}`: what the services did with it, for its producer."""

from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from events.codec import MAX_INPUT_BYTES
from services.gateway.doors import Refused, admit, read
from services.gateway.metrics import DOOR
from services.gateway.proof import SIGNED, proven

INPUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    "400": {"description": "the body is not an input message the owning service would take; the reason names the field"},
    "401": {"description": "the signature does not verify with the key registered for the producer"},
    "403": {"description": "not an input a cooperative or buyer signs (market prices, settlement desk)"},
    "413": {"description": "over the services' 256 KiB input limit"},
    "503": {"description": "Kafka did not take it; post the same bytes again"},
}
"""What `POST /v1/inputs` may answer besides 202."""


def add_input_routes(app: FastAPI, backend: Any) -> None:
    """Posting an input and reading its receipts."""

    @app.post("/v1/inputs", status_code=202, responses=INPUT_RESPONSES)
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
        who = await proven(backend, request, "", "")
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


def _type_of(body: bytes) -> str:
    """The input type a refused body names, for the door's counter (bounded: unknown types count as `invalid`)."""
    from contracts.inputs import INPUT_TYPES

    try:
        kind = orjson.loads(body).get("type")
    except Exception:
        return "invalid"
    return kind if kind in INPUT_TYPES else "invalid"
