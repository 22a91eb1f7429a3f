"""The out-of-process control surface, under `/_emulator/` (a prefix CI never uses).

Tests in the emulator's own loop call `EmulatorState` directly; a gateway or demo running against
an emulator in another process uses these instead. JSON, unauthenticated (the emulator listens on
loopback), and answered whatever the Host header says:

    GET  /_emulator/health              {"status": "ok"}
    GET  /_emulator/counters            requests, jobs, per-operation and per-error counts,
                                        injected faults, jobs per input and per submit body
    GET  /_emulator/faults              {"seed": 0, "faults": {op: spec}, "injected": {...}}
    PUT  /_emulator/faults              {"seed": 7?, "faults": {"CreateMediaJobs":
                                        {"error_500": 0.2, "commit_then_drop": 0.05}, "*": {...}}}
                                        replaces every spec (reseeds when "seed" is given)
    DELETE /_emulator/faults            remove every spec
    POST /_emulator/queues              {"bucket": ..., "name": ..., "max_concurrent"?: n,
                                        "max_size"?: n, "category"?: ...} -> {"queue_id": ...}
                                        (CI creates queues outside its API; tests need several)
    POST /_emulator/scheduling/pause    keep new jobs in Submitted
    POST /_emulator/scheduling/resume
    POST /_emulator/running/hold        keep started jobs in Running
    POST /_emulator/running/release
    PUT  /_emulator/credentials/<id>    {"secret_key": ..., "token"?: ..., "expires_at"?: n}:
                                        CAM issues (or enables again) the key <id>
                                        -> {"secret_id": ..., "enabled": true}
    DELETE /_emulator/credentials/<id>  disable the key <id>: every request still signed with
                                        it is refused from now on, as after a rotation;
                                        404 unknown key (no answer ever echoes a secret)
    POST /_emulator/jobs/<id>/progress  {"progress": 50} -> {"job_id": ..., "progress": 50}:
                                        a Running job's Progress (its current value..100);
                                        404 unknown job, 409 not Running, 400 bad value
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

from ci_emulator.config_file import credential_entry
from ci_emulator.faults import FaultSpec, check_operation
from ci_emulator.jobs import TransitionError
from ci_emulator.state import EmulatorState

ADMIN_PREFIX = "/_emulator"

STATE_KEY = web.AppKey("ci_emulator_state", EmulatorState)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get(f"{ADMIN_PREFIX}/health", _health)
    app.router.add_get(f"{ADMIN_PREFIX}/counters", _counters)
    app.router.add_post(f"{ADMIN_PREFIX}/scheduling/{{action:pause|resume}}", _scheduling)
    app.router.add_post(f"{ADMIN_PREFIX}/running/{{action:hold|release}}", _running)
    app.router.add_get(f"{ADMIN_PREFIX}/faults", _get_faults)
    app.router.add_put(f"{ADMIN_PREFIX}/faults", _put_faults)
    app.router.add_delete(f"{ADMIN_PREFIX}/faults", _delete_faults)
    app.router.add_post(f"{ADMIN_PREFIX}/queues", _add_queue)
    app.router.add_post(f"{ADMIN_PREFIX}/jobs/{{job_id}}/progress", _set_progress)
    app.router.add_put(f"{ADMIN_PREFIX}/credentials/{{secret_id}}", _issue_key)
    app.router.add_delete(f"{ADMIN_PREFIX}/credentials/{{secret_id}}", _disable_key)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _counters(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].counters())


async def _scheduling(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if request.match_info["action"] == "pause":
        state.pause_scheduling()
    else:
        state.resume_scheduling()
    return web.json_response({"scheduler_paused": state.scheduler_paused})


async def _running(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if request.match_info["action"] == "hold":
        state.hold_running()
    else:
        state.release_running()
    return web.json_response({"running_held": state.running_held})


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].faults.snapshot())


async def _put_faults(request: web.Request) -> web.Response:
    """Replace the whole plan in one step, validating everything before changing anything."""
    try:
        document = json.loads(await request.read())
        seed, specs = _parse_plan(document)
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return web.json_response({"error": str(exc)}, status=400)
    plan = request.app[STATE_KEY].faults
    plan.clear()
    if seed is not None:
        plan.reseed(seed)
    for operation, spec in specs.items():
        plan.set(operation, spec)
    return web.json_response(plan.snapshot())


async def _delete_faults(request: web.Request) -> web.Response:
    plan = request.app[STATE_KEY].faults
    plan.clear()
    return web.json_response(plan.snapshot())


def _parse_plan(document: object) -> tuple[int | None, dict[str, FaultSpec]]:
    if not isinstance(document, Mapping):
        raise ValueError('expected {"seed": <int>, "faults": {<operation>: {<field>: <number>}}}')
    unknown = set(document) - {"seed", "faults"}
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    seed = document.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError("seed must be an integer")
    faults = document.get("faults", {})
    if not isinstance(faults, Mapping):
        raise ValueError("faults must map operation names to fault specs")
    specs: dict[str, FaultSpec] = {}
    for operation, values in faults.items():
        check_operation(operation)
        if not isinstance(values, Mapping):
            raise ValueError(f"the spec for {operation} must be an object")
        specs[operation] = FaultSpec.from_mapping(values)
    return seed, specs


async def _add_queue(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        document = json.loads(await request.read())
        if not isinstance(document, Mapping):
            raise ValueError("expected a JSON object")
        bucket, name = document.get("bucket"), document.get("name", "queue")
        limits = [document.get(key) for key in ("max_concurrent", "max_size")]
        category = document.get("category", "Transcoding")
        if not isinstance(bucket, str) or state.config.bucket(bucket) is None:
            raise ValueError(f"bucket must be one this emulator serves, not {bucket!r}")
        if not isinstance(name, str) or category not in ("Transcoding", "SpeedTranscoding"):
            raise ValueError("name must be text, category Transcoding or SpeedTranscoding")
        if any(
            v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1)
            for v in limits
        ):
            raise ValueError("max_concurrent and max_size must be positive integers")
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    queue = state.add_queue(
        bucket, name, max_concurrent=limits[0], max_size=limits[1], category=category
    )
    return web.json_response({"queue_id": queue.queue_id})


async def _set_progress(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    job_id = request.match_info["job_id"]
    if job_id not in state.jobs:
        return web.json_response({"error": f"no job {job_id}"}, status=404)
    try:
        document = json.loads(await request.read())
        percent = document.get("progress") if isinstance(document, Mapping) else None
        if isinstance(percent, bool) or not isinstance(percent, int):
            raise ValueError('expected {"progress": <integer 0..100>}')
        state.set_progress(job_id, percent)
    except TransitionError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"job_id": job_id, "progress": percent})


async def _issue_key(request: web.Request) -> web.Response:
    secret_id = request.match_info["secret_id"]
    try:
        document = json.loads(await request.read())
        if not isinstance(document, Mapping) or "secret_id" in document:
            raise ValueError('expected {"secret_key": ..., "token"?: ..., "expires_at"?: n}')
        _, credential = credential_entry({**document, "secret_id": secret_id}, "credential")
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return web.json_response({"error": str(exc)}, status=400)
    request.app[STATE_KEY].keys.issue(secret_id, credential)
    return web.json_response({"secret_id": secret_id, "enabled": True})


async def _disable_key(request: web.Request) -> web.Response:
    secret_id = request.match_info["secret_id"]
    if not request.app[STATE_KEY].keys.disable(secret_id):
        return web.json_response({"error": f"no key {secret_id}"}, status=404)
    return web.json_response({"secret_id": secret_id, "enabled": False})
