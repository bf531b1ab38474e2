"""HTTP mode: `/slack/events` for Slack, `/healthz`, `/readyz` and `/metrics` for operators."""

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.metrics import ACK_SECONDS
from bot.slack.app import refuse_unwrappable
from bot.slack.edge import Refused, SlackEdge

ReadinessCheck = Callable[[], dict[str, str]]
HealthDetails = Callable[[], dict[str, str]]


def create_http_app(
    bolt: App, readiness: ReadinessCheck, *, edge: SlackEdge, details: HealthDetails = dict
) -> Starlette:
    """`readiness` returns what keeps this replica from taking Slack traffic ({} when ready),
    e.g. {"database": "OperationalError"}; `details` what operators should know without it
    affecting readiness or liveness, e.g. {"vault": "sealed"}. Every Slack request passes
    `edge` before Bolt sees it."""

    async def slack_events(request: Request) -> Response:
        try:
            admitted = await edge.admit(request)
        except Refused as refused:
            edge.note(request, refused)
            return refused.response()
        if not admitted.dispatch:
            return Response(status_code=200)  # a retry of an event already handled
        with ACK_SECONDS.time():
            try:
                bolt_request = to_bolt_request(request, admitted.body)
            except (LookupError, TypeError, AttributeError, ValueError) as error:
                return to_starlette_response(refuse_unwrappable(error))
            # Bolt is synchronous: dispatch off the event loop so requests do not queue behind it.
            response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return to_starlette_response(response)

    async def healthz(_: Request) -> Response:
        found = await run_in_threadpool(details)
        return JSONResponse({"alive": True, **found})

    async def readyz(_: Request) -> Response:
        problems = await run_in_threadpool(readiness)
        status = 503 if problems else 200
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=status)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )
