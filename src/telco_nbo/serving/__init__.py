"""The scoring service's logic: request/response schemas, champion loading, fast scoring, the prediction log.

``serving/service.py`` (BentoML) and ``telco-nbo serve`` are thin shells around
:class:`telco_nbo.serving.app.NboApp`; everything that decides something lives here, importable and
testable without a server.
"""
