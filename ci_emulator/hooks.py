"""The seam for fault injection: hooks that see each CI/COS request before CI would.

A hook runs after the request is counted and its host resolved, before the signature check. It
may return a response (sent as is, e.g. a bare 503 or a truncated body), raise `CiError` (sent
as CI's error XML, e.g. `CiError("SlowDown", ..., status=503)`), await something (a slow
upstream), or return None to let the request through. Hooks live in `EmulatorState.request_hooks`
so a test can add and remove them while the emulator runs.

The catalogue of ready-made faults (errors, latency, resets, commit-then-drop) is `faults`, which
runs *after* the signature check; a hook is for the odd answer that catalogue does not have, and
it runs before the check, so it can break any request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

from aiohttp import web

from ci_emulator.hosts import Target

RequestHook: TypeAlias = Callable[[web.Request, Target], Awaitable[web.StreamResponse | None]]
