"""The door of the service: an ASGI middleware in front of BentoML's routes.

What it does before BentoML reads a byte of the body, for the routes it guards (the scoring routes,
``/status`` and ``/admin/...``):

- the API key (401 at once: a client without the key never gets its body parsed);
- the media type: a body must be ``application/json`` (415; BentoML would pick a parser from the
  header, and a multipart header without a boundary made it fail with a 500);
- the body size: at most ``max_body`` bytes, whatever ``Content-Length`` says or does not say
  (413; chunked bodies are counted as they arrive).

It also answers ``GET /docs.json`` with BentoML's OpenAPI document corrected to tell the truth
(:func:`patch_openapi`), and logs each refusal as one INFO line (no traceback, no input).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from telco_nbo.serving.schemas import (
    ErrorResponse,
    ExplainRequest,
    ExplainResponse,
    RankRequest,
    RankResponse,
    ScoreRequest,
    ScoreResponse,
)

log = logging.getLogger("telco_nbo.serving")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SCORING_ROUTES = ("/rank", "/score", "/explain")
GUARDED_PREFIXES = ("/admin/",)
DEFAULT_MAX_BODY = 8 * 1024 * 1024
"""Largest body accepted (bytes): 1,000 accounts with features take ~2.5 MB."""


def _error(status: int, message: str, problems: list[str] | None = None) -> tuple[int, bytes]:
    return status, json.dumps({"error": message, "problems": problems or []}).encode()


class RequestGuard:
    """ASGI middleware: API key, media type and body size checked before the body is parsed.

    Args:
        app: The ASGI app behind (BentoML's).
        setup: Returns ``(check_key, max_body, offer_ids)``, called on the first request (the
            service's config is read in the worker, not at import): ``check_key`` raises an
            exception with ``status`` and ``message`` when the headers lack the key (None: no
            key); ``max_body`` is the most bytes a body may have; ``offer_ids`` the catalog's
            offers (the OpenAPI document lists them).
        guarded: Exact paths that need the key (besides ``/admin/...``).
    """

    def __init__(self, app: Any, *,
                 setup: Callable[[], tuple[Callable[[Mapping[str, str]], None] | None, int, list[str] | None]]
                 | None = None,
                 guarded: tuple[str, ...] = (*SCORING_ROUTES, "/status")):
        self.app = app
        self._setup = setup
        self._check_key: Callable[[Mapping[str, str]], None] | None = None
        self.max_body = DEFAULT_MAX_BODY
        self.offer_ids: list[str] | None = None
        self.guarded = frozenset(guarded)
        self._openapi: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/docs.json" and scope.get("method") == "GET":
            await self._openapi_doc(scope, receive, send)
            return
        if path not in self.guarded and not path.startswith(GUARDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._check_headers(headers)
        if refusal is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            body, refusal = await self._read_body(receive)
            if refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            status, payload = refusal
            # One line per refused request, at INFO: the client's mistake, not the service's.
            log.info("refused %s %s: %d %s", scope.get("method"), path, status, json.loads(payload)["error"])
            await _send_json(send, status, payload)
            return
        await self.app(scope, receive, send)

    def _configure(self) -> None:
        if self._setup is not None:
            check, self.max_body, self.offer_ids = self._setup()
            self._check_key, self._setup = check, None

    def _check_headers(self, headers: dict[str, str]) -> tuple[int, bytes] | None:
        self._configure()
        if self._check_key is not None:
            try:
                self._check_key(headers)
            except Exception as exc:  # noqa: BLE001 - ServingError (status, message)
                return _error(getattr(exc, "status", 401), getattr(exc, "message", "unauthorized"))
        ctype = headers.get("content-type")
        if ctype is not None and ctype.split(";")[0].strip().lower() not in ("application/json", ""):
            return _error(415, "send the body as application/json",
                          [f"content-type {ctype[:60]!r} is not accepted"])
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return _error(400, "content-length is not a number")
            if n > self.max_body:
                return _error(413, f"body too large: {n} bytes (at most {self.max_body})")
        return None

    async def _read_body(self, receive: Receive) -> tuple[bytes, tuple[int, bytes] | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks), None  # the app sees the disconnect on its own reads
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", _error(413, f"body too large: more than {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    async def _openapi_doc(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._openapi is None:
            status, body = await _capture(self.app, scope, receive)
            if status != 200:
                await _send_json(send, status, body)
                return
            self._configure()
            self._openapi = json.dumps(patch_openapi(json.loads(body), self.offer_ids)).encode()
        await _send_json(send, 200, self._openapi)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _capture(app: Any, scope: Scope, receive: Receive) -> tuple[int, bytes]:
    status = 500
    parts: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(parts)


_ERRORS = {
    400: "The body is not valid JSON or breaks the request schema (`detail` lists each violation), or a "
         "service check failed (`problems` names each)",
    401: "Missing or wrong API key (X-API-Key or Authorization: Bearer)",
    404: "An account id that is not an active account of the data folder",
    409: "Two accounts of one request claim the same account_id",
    413: "Body larger than the service's limit",
    415: "Body not sent as application/json",
    422: "The request is valid but its values cannot be scored (the message says why)",
    500: "Internal error (logged by the service; no detail is sent)",
    503: "Not ready: models loading, the decision engine restarting, or the prediction log unwritable",
}


def patch_openapi(doc: dict[str, Any], offer_ids: list[str] | None = None) -> dict[str, Any]:
    """BentoML's OpenAPI document, corrected to say what the service answers.

    Every guarded route declares 401 (and the scoring routes 409, 413, 415, 422 and 503) with the
    one error shape the service sends (:class:`~telco_nbo.serving.schemas.ErrorResponse`:
    ``detail`` is a list of violations, not a string); the scoring routes declare their 200
    answers; the health routes declare their 503. The request bodies are pydantic's own schemas
    (BentoML's drop the ``null`` a selector may be), required, with the exactly-one-selector rule
    (``oneOf``, see :mod:`telco_nbo.serving.schemas`) and, given ``offer_ids``, the catalog's offers
    as the only values of ``offer_ids``.
    """

    schemas = doc.setdefault("components", {}).setdefault("schemas", {})

    def add(model: Any) -> dict[str, str]:
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in js.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas[model.__name__] = js
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    err = add(ErrorResponse)
    for old in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas[old] = {"$ref": err["$ref"]}
    ok = {"/rank": add(RankResponse), "/score": add(ScoreResponse), "/explain": add(ExplainResponse)}
    requests = {"/rank": add(RankRequest), "/score": add(ScoreRequest), "/explain": add(ExplainRequest)}
    if offer_ids:
        for model in (ScoreRequest, ExplainRequest):
            prop = schemas[model.__name__]["properties"]["offer_ids"]
            for branch in prop.get("anyOf", [prop]):
                if branch.get("type") == "array":
                    branch["items"] = {**branch["items"], "enum": list(offer_ids)}

    def error(code: int) -> dict[str, Any]:
        return {"description": _ERRORS[code], "content": {"application/json": {"schema": err}}}

    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            if path in ok and method == "post":
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": requests[path]}}}
                responses["200"] = {"description": "Successful Response",
                                    "content": {"application/json": {"schema": ok[path]}}}
                for code in (400, 401, 404, 409, 413, 415, 422, 500, 503):
                    responses[str(code)] = error(code)
            elif path == "/status":
                for code in (401, 415, 503):
                    responses[str(code)] = error(code)
            elif path.startswith(GUARDED_PREFIXES):
                responses["202"] = {"description": "Accepted: still loading the new models (see /status)"}
                for code in (400, 401, 413, 415, 500, 503):
                    responses[str(code)] = error(code)
            elif path in ("/readyz", "/livez", "/healthz"):
                responses["503"] = {"description": "Not ready (readyz) / the decision engine is dead and not "
                                                   "coming back (livez)"}
    return doc
