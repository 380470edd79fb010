"""BentoML's own floor for the serving benchmark: a route with /rank's request schema that does nothing.

It parses and validates the same request body as ``POST /rank`` (the same pydantic input spec),
then answers a fixed 2.5 kB JSON body, on the same BentoML settings as the NBO service (one
worker, no access log). What it costs per request is what any BentoML service pays before
doing any work; ``bench_serving.py`` measures it beside the real service.
"""

from __future__ import annotations

from typing import Any

import bentoml
from starlette.responses import Response

from telco_nbo.serving.schemas import RankRequest

_BODY = b'{"decisions":[' + b",".join([b'{"offer_id":"HOME_FIBER","expected_value":26.47}'] * 50) + b"]}"


@bentoml.service(name="bentoml_floor", workers=1, threads=4, logging={"access": {"enabled": False}})
class BentoFloor:
    """No-op /rank."""

    @bentoml.api(route="/rank", input_spec=RankRequest)
    async def rank(self, ctx: bentoml.Context, **request: Any) -> dict:
        """Validate, then answer a fixed body."""
        return Response(_BODY, status_code=200, media_type="application/json")
