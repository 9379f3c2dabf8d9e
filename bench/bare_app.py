"""The receiver benchmark's yardstick: Starlette that only verifies the HMAC and answers 202.

``python -m bench.bare_app PORT SECRET`` serves it with the same uvicorn settings as the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build(secret: bytes) -> Starlette:
    async def webhook(request: Request) -> Response:
        body = await request.body()
        expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        given = request.headers.get("x-hub-signature-256", "").encode()
        return Response(status_code=202 if hmac.compare_digest(expected, given) else 401)

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])


if __name__ == "__main__":
    port, secret = int(sys.argv[1]), sys.argv[2].encode()
    uvicorn.run(build(secret), host="127.0.0.1", port=port, log_level="warning", access_log=False)
