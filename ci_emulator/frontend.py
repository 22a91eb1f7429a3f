"""The request pipeline every CI/COS request goes through, in CI's order.

    count -> decode path -> resolve host (bucket, service) -> request hooks -> bucket exists
          -> decode query -> route (404/405/501) -> verify signature
          -> PUT/POST declare a length (411)
          -> fault plan (latency; 500/503/429/reset) -> handler -> (commit_then_drop: no answer)

Any `CiError` on the way becomes CI's error body for the resolved host (the CI host until the
host is known); anything else is logged and answered InternalError 500, so no input can take the
server down or leak a Python traceback. Every answer carries `Server: tencent-ci` and the
host's request-id header (`x-ci-request-id` / `x-cos-request-id`).

Paths and queries are decoded here, strictly as UTF-8 (invalid bytes: InvalidUrl /
InvalidArgument), because the signature covers decoded text: `/jobs/j1%2Cj2` is signed as
`/jobs/j1,j2` and `?cancel` as `cancel=`.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from ci_emulator import ids
from ci_emulator.auth import CarriedRequest, verify
from ci_emulator.body import LENGTH_REQUIRED, require_length
from ci_emulator.errors import CiError, invalid_argument
from ci_emulator.faults import (
    FaultKind,
    close_connection,
    injected_error,
    reset_connection,
)
from ci_emulator.handlers import Call, route
from ci_emulator.hosts import Service, Target, resolve_target
from ci_emulator.resource_api import route as resource_route
from ci_emulator.state import EmulatorState
from ci_emulator.xmlbuild import Fields, render_error

logger = logging.getLogger(__name__)

SERVER_HEADER = "tencent-ci"


class CiFrontend:
    """The aiohttp handler for every non-admin path."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self._state
        state.requests_seen += 1
        request_id = ids.request_id(state.config.clock())
        target: Target | None = None
        try:
            target = resolve_target(request.headers.get("Host"), _decode_path(request))
            response = await self._serve(request, target, request_id)
        except CiError as exc:
            state.errors[exc.code] += 1
            response = error_response(exc, request, target, request_id)
        except Exception:  # the server boundary: CI answers its own faults with InternalError
            logger.exception("unexpected fault serving %s %s", request.method, request.rel_url)
            state.errors["InternalError"] += 1
            fault = CiError("InternalError", "The server encountered an internal error.")
            response = error_response(fault, request, target, request_id)
        service = target.service if target is not None else Service.CI
        if not response.prepared:  # a fault hook may have streamed its own (broken) answer
            response.headers["Server"] = SERVER_HEADER
            response.headers[service.request_id_header] = request_id
        return response

    async def _serve(
        self, request: web.Request, target: Target, request_id: str
    ) -> web.StreamResponse:
        state = self._state
        for hook in list(state.request_hooks):
            injected = await hook(request, target)
            if injected is not None:
                return injected
        bucket = state.bucket(target.bucket, target.region)
        params = _decode_query(request)
        endpoint = resource_route(target, request.method) or route(target, request.method)
        verify(
            CarriedRequest(request.method, target.path, params, request.headers.items()),
            service=target.service,
            config=state.config,
            keys=state.keys,
        )
        if request.method in LENGTH_REQUIRED:
            require_length(request)
        state.operations[endpoint.name] += 1
        # Drawn only now: a fault never hides a routing or signature refusal.
        decision = state.faults.draw(endpoint.name)
        if not await state.faults.delay(decision):
            return close_connection(request)  # shutting down: the held request gets no answer
        if decision.kind is FaultKind.RESET_BEFORE:
            return reset_connection(request)
        error = injected_error(decision.kind)
        if error is not None:
            raise error
        first_wins = dict(reversed(params))
        call = Call(request, state, bucket, target, first_wins, request_id)
        if decision.kind is not FaultKind.COMMIT_THEN_DROP:
            return await endpoint.handler(call)
        try:
            await endpoint.handler(call)
        except CiError as exc:  # a refusal's answer is lost just like a success's
            state.errors[exc.code] += 1
        return close_connection(request)


def error_response(
    error: CiError, request: web.Request, target: Target | None, request_id: str
) -> web.Response:
    fields: Fields = [("Code", error.code), ("Message", error.message)]
    if target is not None and target.service is Service.COS:
        resource = f"{target.bucket}.cos.{target.region}.myqcloud.com{target.path}"
        fields.append(("Resource", resource))
    fields += [("RequestId", request_id), ("TraceId", ids.trace_id())]
    response = web.Response(
        status=error.status, body=render_error(fields), content_type="application/xml"
    )
    if error.status == 413 or not _body_consumed(request):
        # Do not let an unread (possibly huge) body be parsed as the next request.
        response.force_close()
    return response


def _body_consumed(request: web.Request) -> bool:
    return request.content.at_eof() or not request.body_exists


def _decode_path(request: web.Request) -> str:
    try:
        return unquote(request.rel_url.raw_path, errors="strict")
    except UnicodeDecodeError as exc:
        raise CiError("InvalidUrl", "the request path is not UTF-8") from exc


def _decode_query(request: web.Request) -> list[tuple[str, str]]:
    try:
        return parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid_argument("the query string is not UTF-8") from exc
