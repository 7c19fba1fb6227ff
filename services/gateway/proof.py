"""A request's proof of its party, as the routes check it (services/gateway/auth.py says how a request is signed)."""

import time
from typing import Any

from fastapi import HTTPException, Request

from services.gateway.auth import Unauthenticated, signed_request, verify_request

SIGNED = {
    "401": {"description": "no proof of the party, or one that does not hold (the reason names the header)"},
    "403": {"description": "the proven party is not the one whose data this is"},
}
"""The answers a route for a party's own data adds to its OpenAPI responses."""


async def proven(backend: Any, request: Request, kind: str, party_id: str) -> str:
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
