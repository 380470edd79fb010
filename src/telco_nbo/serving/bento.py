"""The next-best-offer scoring API (BentoML 1.4 service): a thin shell around :class:`NboApp`.

Start it with ``telco-nbo serve`` (or ``bentoml serve serving.service:NBOService`` with the
``TELCO_NBO_SERVE_CONFIG`` / ``TELCO_NBO_*`` environment set). Routes:

- ``POST /rank``    decisions: offers with score, expected value and its parts, channel, message,
  reasons; suppressed offers with the rule that removed each; model versions;
- ``POST /score``   churn probability, CLV, retention uplift, propensity per offer;
- ``POST /explain`` SHAP reason codes;
- ``GET /healthz``, ``/livez`` (process up), ``/readyz`` (503 until the champions are loaded),
  ``/metrics`` (Prometheus), ``GET /status`` (what is loaded).

Scoring routes and ``/status`` take the API key (``X-API-Key``) when the service was started with
one; it is checked, with the media type and the body size, before the body is read
(:mod:`telco_nbo.serving.guard`). Errors are JSON ``{"error", "problems"}`` with a 4xx status naming
the field; malformed JSON and schema errors are answered 400 by BentoML with ``detail``, the list of
violations (their locations, never the values sent).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import bentoml
from starlette.responses import Response

from telco_nbo.nbo.catalog import load_catalog
from telco_nbo.serving.app import NboApp, ServeConfig, ServingError
from telco_nbo.serving.guard import RequestGuard
from telco_nbo.serving.schemas import ExplainRequest, RankRequest, ScoreRequest

_JSON = "application/json"
_log = logging.getLogger("telco_nbo.serving")


def _guard_setup() -> tuple[Any, int, list[str]]:
    # Read in the worker, on the first request: the same config the service loads with.
    cfg = ServeConfig.from_env()
    offers = [o.offer_id for o in load_catalog(cfg.catalog_path).offers]
    return (NboApp(cfg).check_api_key if cfg.api_key_env else None), cfg.max_body_bytes, offers


class _QuietRefusals(logging.Filter):
    """BentoML logs every refused body (a schema violation) as an ERROR with a ~24-line traceback
    that quotes the input. Make it one INFO line naming the violations' places and kinds; errors
    that are the service's own (5xx) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            places = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['type']}"
                               for e in exc.errors(include_input=False)[:5])
            summary = f"400 {exc.error_count()} schema violation(s): {places}"
        else:
            code = getattr(getattr(exc, "error_code", None), "value", 500)
            if code >= 500:
                return True
            summary = f"{code} {type(exc).__name__}: {str(exc)[:160]}"
        record.msg, record.args = f"{record.getMessage().replace('Exception on', 'refused', 1)}: {summary}", ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _install_quiet_refusals() -> None:
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _QuietRefusals) for f in logger.filters):
        logger.addFilter(_QuietRefusals())
    # The service's own lines (refusals at INFO, engine restarts) go where BentoML's go.
    ours = logging.getLogger("telco_nbo")
    if not ours.handlers:
        for h in logging.getLogger("bentoml").handlers:
            ours.addHandler(h)
        ours.setLevel(logging.INFO)
        ours.propagate = not ours.handlers


def _respond(ctx: bentoml.Context, status: int, body: dict[str, Any]) -> Response:
    # BentoML copies ctx.response.status_code onto any response when the API takes ctx.
    ctx.response.status_code = status
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), status_code=status, media_type=_JSON)


@bentoml.service(
    name="telco_nbo",
    traffic={"timeout": 30},
    workers=int(os.environ.get("TELCO_NBO_SERVE_WORKERS", "1")),
    threads=4,
    # One access-log line per request costs ~10 % of a /rank; every decision is in the prediction
    # log with its request id anyway. `telco-nbo serve --access-log` turns it on.
    logging={"access": {"enabled": os.environ.get("TELCO_NBO_SERVE_ACCESS_LOG", "0") == "1"}},
)
class NBOService:
    """Next best offers for telecom accounts, from the @champion models."""

    def __init__(self) -> None:
        _install_quiet_refusals()
        self.app = NboApp(ServeConfig.from_env())
        # Load in the background: the server answers /healthz at once and /readyz 503 until ready.
        self.app.load_in_background()

    def __is_ready__(self) -> bool:
        return self.app.ready

    def __is_alive__(self) -> bool:
        # /livez fails once the decision engine is dead and is not coming back in time.
        return self.app.alive

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        # The engine process would exit by itself when the pipe closes; stop it cleanly anyway.
        self.app.close()

    async def _answer(self, ctx: bentoml.Context, kind: str, req: Any) -> Response:
        # Answered by the micro-batcher (telco_nbo.serving.batching) and, under `telco-nbo serve`,
        # the engine process (telco_nbo.serving.engine): this event loop only parses, checks
        # the key and writes the JSON it gets back, so it keeps reading requests meanwhile.
        try:
            self.app.check_api_key(ctx.request.headers)
        except ServingError as exc:
            return _respond(ctx, exc.status, exc.body())
        status, body = await self.app.answer_async(kind, req, ctx.request.headers.get("x-request-id"))
        if status >= 400:
            # One line per refused request (the error's first words; never the input itself).
            _log.info("refused POST /%s: %d %s", kind, status, body[:160].decode("utf-8", "replace"))
        ctx.response.status_code = status
        return Response(body, status_code=status, media_type=_JSON)

    @bentoml.api(route="/rank", input_spec=RankRequest)
    async def rank(self, ctx: bentoml.Context, **request: Any) -> dict:
        """Rank offers for one account or a batch (features in the payload, or ids in the data folder)."""
        return await self._answer(ctx, "rank", RankRequest.model_construct(**request))

    @bentoml.api(route="/score", input_spec=ScoreRequest)
    async def score(self, ctx: bentoml.Context, **request: Any) -> dict:
        """Churn probability, CLV, retention uplift and propensity per offer."""
        return await self._answer(ctx, "score", ScoreRequest.model_construct(**request))

    @bentoml.api(route="/explain", input_spec=ExplainRequest)
    async def explain(self, ctx: bentoml.Context, **request: Any) -> dict:
        """SHAP reason codes of the churn score (and of the propensity of offers asked for)."""
        return await self._answer(ctx, "explain", ExplainRequest.model_construct(**request))

    @bentoml.api(route="/status", input_spec=None)
    async def status(self, ctx: bentoml.Context) -> dict:
        """What is loaded, the engine's state and restarts (behind the API key when there is one)."""
        # Process ids and error texts only for a caller the key identified (the guard checked it).
        return _respond(ctx, 200 if self.app.ready else 503, self.app.status(detail=self.app.has_api_key))

    @bentoml.api(route="/admin/reload", input_spec=None)
    async def admin_reload(self, ctx: bentoml.Context) -> dict:
        """Load the registry's current @champion models beside the old ones and switch to them (key required).

        Answers 200 with the versions once switched (``reloaded`` false when nothing changed), or
        202 when loading takes longer than this request may wait (``/status`` shows the versions).
        """
        import asyncio

        task = asyncio.ensure_future(asyncio.to_thread(self.app.reload))
        done, _ = await asyncio.wait({task}, timeout=_RELOAD_WAIT)
        if not done:
            return _respond(ctx, 202, {"reloading": True, "model_versions": self.app.model_versions})
        try:
            return _respond(ctx, 200, task.result())
        except ServingError as exc:
            return _respond(ctx, exc.status, exc.body())


_RELOAD_WAIT = 20.0
"""Seconds /admin/reload waits for the new models (under the route timeout of 30 s)."""

# Runs before BentoML reads the body: API key, media type, body size (see telco_nbo.serving.guard).
NBOService.add_asgi_middleware(RequestGuard, setup=_guard_setup)
