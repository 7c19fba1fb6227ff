"""`farmlink gateway` (serve the HTTP gateway in the foreground) and `farmlink sign` (sign inputs and requests
with the development keyring, for curl sessions: README.md, "HTTP gateway")."""

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import typer

from farmlink.operations.gateway import GATEWAY_HOST, gateway_port


def gateway(
    port: int = typer.Option(None, "--port", help="port on 127.0.0.1 (default: FARMLINK_GATEWAY_PORT, else 18080)"),
) -> None:
    """Run the HTTP gateway in the foreground until Ctrl-C or SIGTERM (`farmlink up` starts it in the background)."""
    import uvicorn

    from farmlink.operations import processes
    from services.gateway.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    ready = processes.ready_file(processes.GATEWAY)
    config = uvicorn.Config(
        create_app(),
        host=GATEWAY_HOST,
        port=port or gateway_port(),
        loop="asyncio",
        timeout_graceful_shutdown=3,
        log_level="info",
        access_log=False,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        async def mark_ready() -> None:
            while not server.started:
                if server.should_exit:
                    return
                await asyncio.sleep(0.05)
            ready.write_text(str(os.getpid()))

        marker = asyncio.create_task(mark_ready())
        try:
            await server.serve()
        finally:
            marker.cancel()
            ready.unlink(missing_ok=True)

    asyncio.run(serve())  # asyncio's loop, as the services (farmlink/operations/processes.py serve says why not uvloop)
    if not server.started:
        raise typer.Exit(1)


sign_app = typer.Typer(
    help="Sign with the development keyring ($FARMLINK_HOME/keys/), as a cooperative's or buyer's "
    "system signs with its own key: inputs to POST, headers of a signed request.",
    no_args_is_help=True,
)


@sign_app.command("input")
def sign_input(
    line: str = typer.Argument("-", help='a scenario line {"type": ..., "payload": {...}}, a file holding one, or - for stdin'),
    message_id: str = typer.Option(None, "--message-id", help="the message id (default: a new uuid)"),
    correlation_id: str = typer.Option(None, "--correlation-id", help="the correlation id (default: a new uuid)"),
) -> None:
    """Print the signed input message (the exact body to POST to /v1/inputs): producer from the payload, signed with
    its key; a registration without `public_key` gets the producer's own."""
    from farmlink.producers.keyring import local_keyring
    from farmlink.producers.publisher import input_message

    text = sys.stdin.read() if line == "-" else (line if line.lstrip().startswith("{") else Path(line).read_text())
    try:
        parsed = json.loads(text)
        kind, payload = parsed["type"], parsed["payload"]
    except (ValueError, KeyError, TypeError) as error:
        raise typer.BadParameter(f'expected {{"type": ..., "payload": {{...}}}}: {error}') from None
    message = input_message(kind, payload, correlation_id or uuid.uuid4().hex, local_keyring(), message_id=message_id)
    typer.echo(message.model_dump_json())


@sign_app.command("request")
def sign_request_headers(
    method: str = typer.Argument(..., help="the HTTP method, e.g. GET"),
    target: str = typer.Argument(..., help="the path and query exactly as requested, e.g. /v1/buyers/yuping/fills"),
    party: str = typer.Option(..., "--as", help="the party signing: cooperative:<id> or buyer:<id>"),
) -> None:
    """Print the three headers of a signed request, one a line (curl -H @file reads them), valid for 5 minutes."""
    from farmlink.producers.keyring import local_keyring
    from services.gateway.auth import Unauthenticated, parse_party, sign_request

    try:
        parse_party(party)
    except Unauthenticated as error:
        raise typer.BadParameter(str(error)) from None
    headers = sign_request(local_keyring().private_key(party), method, target, party, time.time())
    for name, value in headers.items():
        typer.echo(f"{name}: {value}")
