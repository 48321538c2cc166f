"""Prometheus metrics of the API: request counts and latency by route.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``: the
latter runs each request in an extra task and costs a measurable share of the
availability hot path.  Routes are labelled by their template
(``/v1/stores/{store_id}/availability/{gtin}``), never by the concrete path, so
the label set stays bounded whatever callers send; unmatched paths share one
label.  Each app owns its registry, so several apps in one process (tests, the
demo) do not collide in the global one.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "<unmatched>"

# Availability look-ups should take a few milliseconds; the buckets resolve that
# range finely and still show a slow ledger.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tagledger_api_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tagledger_api_request_duration_seconds",
            "Time from request start to the last response byte, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        # One count per delivery attempt (cloud.webhooks.dispatcher), by its outcome:
        # delivered, retrying (failed, another attempt follows) or failed (given up).
        self.webhook_attempts = Counter(
            "tagledger_webhook_attempts",
            "Webhook delivery attempts by outcome: delivered, retrying (will try again) or failed (given up).",
            ["outcome"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app raises before sending a response

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
