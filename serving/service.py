"""BentoML entry point: ``bentoml serve serving.service:NBOService`` / ``bentoml build`` (bentofile.yaml).

The service lives in the package (:mod:`telco_nbo.serving.bento`) so ``telco-nbo serve`` works
from an installed package too; this file only names it for BentoML.
"""

from telco_nbo.serving.bento import NBOService

__all__ = ["NBOService"]
