"""Where the HTTP gateway (services/gateway) listens on this machine, and whether it answers (`farmlink up`, `status`;
`farmlink gateway` serves it in the foreground)."""

import json
import os
import urllib.error
import urllib.request

GATEWAY_HOST = "127.0.0.1"
DEFAULT_GATEWAY_PORT = 18080


def gateway_port() -> int:
    """FARMLINK_GATEWAY_PORT, or 18080."""
    return int(os.environ.get("FARMLINK_GATEWAY_PORT") or DEFAULT_GATEWAY_PORT)


def gateway_health(pid: int | None) -> str:
    """What `farmlink status` shows for the gateway: "ok", "-" (not running), or the problems /readyz names."""
    if pid is None:
        return "-"
    try:
        with urllib.request.urlopen(f"http://{GATEWAY_HOST}:{gateway_port()}/readyz", timeout=5) as answer:
            return "ok" if json.loads(answer.read()).get("ready") else "not ready"
    except urllib.error.HTTPError as error:  # 503: not ready, with the reasons
        try:
            return "; ".join(json.loads(error.read()).get("problems", []))[:200] or f"HTTP {error.code}"
        except ValueError:
            return f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        return f"not answering: {error}"[:200]
