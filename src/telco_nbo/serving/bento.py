"""The next-best-offer scoring API (BentoML 1.4 service): a thin shell around :class:`NboApp`.

Start it with ``telco-nbo serve`` (or ``bentoml serve serving.service:NBOService`` with the
``TELCO_NBO_SERVE_CONFIG`` / ``TELCO_NBO_*`` environment set). Routes:

- ``POST /rank``    decisions: offers with score, expected value and its parts, channel, message,
  reasons; suppressed offers with the rule that removed each; model versions;
- ``POST /score``   churn probability, CLV, retention uplift, propensity per offer;
- ``POST /explain`` SHAP reason codes;
- ``GET /healthz``, ``/livez`` (process up), ``/readyz`` (503 until the champions are loaded),
  ``/metrics`` (Prometheus), ``GET /status`` (what is loaded).

Scoring routes take the API key (``X-API-Key``) when the service was started with one. Errors are
JSON ``{"error", "problems"}`` with a 4xx status naming the field; malformed JSON and schema errors
are answered 400 by BentoML with the field's location.
"""

from __future__ import annotations

import json
import os
from typing import Any

import bentoml
from starlette.responses import Response

from telco_nbo.serving.app import NboApp, ServeConfig, ServingError
from telco_nbo.serving.schemas import ExplainRequest, RankRequest, ScoreRequest

_JSON = "application/json"


def _respond(ctx: bentoml.Context, status: int, body: dict[str, Any]) -> Response:
    # BentoML copies ctx.response.status_code onto any response when the API takes ctx.
    ctx.response.status_code = status
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), status_code=status, media_type=_JSON)


@bentoml.service(
    name="telco_nbo",
    traffic={"timeout": 30},
    workers=int(os.environ.get("TELCO_NBO_SERVE_WORKERS", "1")),
    threads=4,
)
class NBOService:
    """Next best offers for telecom accounts, from the @champion models."""

    def __init__(self) -> None:
        self.app = NboApp(ServeConfig.from_env())
        # Load in the background: the server answers /healthz at once and /readyz 503 until ready.
        self.app.load_in_background()

    def __is_ready__(self) -> bool:
        return self.app.ready

    # The routes are async and compute inline: the work is CPU-bound under the GIL, so a thread
    # hop per request would only add latency (measured) without adding throughput.
    def _call(self, ctx: bentoml.Context, fn: Any, req: Any, *, needs_key: bool = True) -> Response:
        try:
            if needs_key:
                self.app.check_api_key(ctx.request.headers)
            return _respond(ctx, 200, fn(req))
        except ServingError as exc:
            return _respond(ctx, exc.status, exc.body())

    @bentoml.api(route="/rank", input_spec=RankRequest)
    async def rank(self, ctx: bentoml.Context, **request: Any) -> dict:
        """Rank offers for one account or a batch (features in the payload, or ids in the data folder)."""
        req = RankRequest.model_construct(**request)
        return self._call(ctx, lambda r: self.app.rank(r, ctx.request.headers.get("x-request-id")), req)

    @bentoml.api(route="/score", input_spec=ScoreRequest)
    async def score(self, ctx: bentoml.Context, **request: Any) -> dict:
        """Churn probability, CLV, retention uplift and propensity per offer."""
        return self._call(ctx, self.app.score, ScoreRequest.model_construct(**request))

    @bentoml.api(route="/explain", input_spec=ExplainRequest)
    async def explain(self, ctx: bentoml.Context, **request: Any) -> dict:
        """SHAP reason codes of the churn score (and of the propensity of offers asked for)."""
        return self._call(ctx, self.app.explain, ExplainRequest.model_construct(**request))

    @bentoml.api(route="/status", input_spec=None)
    async def status(self, ctx: bentoml.Context) -> dict:
        """What is loaded (open, like the health routes)."""
        return _respond(ctx, 200 if self.app.ready else 503, self.app.status())
