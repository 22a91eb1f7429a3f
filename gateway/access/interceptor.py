"""Client access: who is calling, and whether their policy allows this call.

Two modes (`gateway.access.config_file`). In **sidecar** mode the gateway trusts every caller and
must therefore listen on loopback only; it still refuses what would change the bucket's shared
queues, templates and workflows unless the access file's `sidecar_operations` allows it
(`sidecar_refusal`, decided per method before the call is read). In **shared** mode every call
names its client, by a client certificate (mTLS: the subject CN or a SAN, from
`context.auth_context()`) or by an `authorization: Bearer <token>` whose SHA-256 the access file
lists; a token, when sent, decides (a wrong token is refused even on a valid certificate). Then
the client's policy (`gateway.access.policy`) checks the operation, every bucket and region the
request names, and the tag, and its rate limit spends a token. A call by job id names no tag:
the job's is known from CI's answer, where `gateway.api.service` hides another tag's job as
not found (`gateway.access.open_calls.show_job_tag`, `ClientPolicy.sees_tag`).

Refusals are rich statuses like every other error (`gateway.status`): UNAUTHENTICATED with
reason CLIENT_NOT_AUTHENTICATED, PERMISSION_DENIED naming the rule (OPERATION_NOT_ALLOWED,
BUCKET_NOT_ALLOWED, REGION_NOT_ALLOWED, TAG_NOT_ALLOWED), RESOURCE_EXHAUSTED
(CLIENT_RATE_LIMITED) with RetryInfo.

The check needs the deserialized request (its buckets, regions and tag), so `AccessInterceptor`
wraps the method handler rather than refusing from `intercept_service`; only a caller whose
metadata alone shows it a stranger is refused before its request is read (`gate`). Health and
reflection are never checked: Kubernetes' gRPC probes cannot present credentials.

`ClientAccess` also decides how the port is bound: TLS when configured, and no listening beyond
loopback without client authentication unless the operator insists (`--insecure`).

The access file is watched in the background, like mounted credentials (`gateway._files`): a
`Poller` compares its fingerprint every `reload_interval_s` and re-reads it off the event loop
when it changed. An RPC only reads the configuration in force, so no call ever waits on a
`stat` or a TOML parse. Calls that stay open (the streams, and `WaitMediaJob`) are registered
as they are admitted, and a reload ends those the new entries would refuse, with the status a
new call would get (`gateway.access.open_calls`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message

from gateway import rpc_context
from gateway._chain import OPS_PREFIXES, Metadata, MethodInterceptor
from gateway._files import Fingerprint, Poller, Sleep, fingerprint
from gateway.access import open_calls
from gateway.access.config_file import AccessConfig, load_access_file
from gateway.access.identity import presented, resolve
from gateway.access.open_calls import CallEnded, OpenCall, OpenCalls
from gateway.access.policy import (
    ANY,
    SIDECAR_GUARDED,
    WAITING_METHODS,
    ClientPolicy,
    TokenBucket,
    operation_of,
    request_scope,
)
from gateway.access.tls import is_loopback, server_credentials
from gateway.errors import (
    AccessDenied,
    ClientNotAuthenticated,
    ClientRateLimited,
    GatewayError,
    Reason,
)
from gateway.logs import event
from gateway.status import abort

log = logging.getLogger(__name__)

# Never authenticated: health (probes carry no credentials) and reflection (schema only).
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior: TypeAlias = Callable[..., Any]


class InsecureListenError(ValueError):
    """Listening beyond loopback without client authentication was not asked for."""


class ClientAccess:
    """The access configuration in force, re-read when its file changes, and the rate limits
    of the clients it names."""

    def __init__(
        self,
        config: AccessConfig,
        *,
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._config = config
        self._path = path
        self._clock = clock
        self._seen: Fingerprint | None = fingerprint([path]) if path is not None else None
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = asyncio.Lock()
        # Watches and waits in progress, reviewed at each reload (`gateway.access.open_calls`).
        self.open_calls = OpenCalls()
        # The interval is the file's at start; like `mode` and `[tls]`, a change needs a restart.
        self._poller = (
            Poller(self.reload, config.reload_interval_s, name=f"access:{path}", sleep=sleep)
            if path is not None
            else None
        )

    @classmethod
    def sidecar(cls) -> ClientAccess:
        return cls(AccessConfig())

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> ClientAccess:
        """`ValueError`/`OSError` for a file that cannot be used at start."""
        return cls(load_access_file(path), path=path, clock=clock, sleep=sleep)

    @classmethod
    def from_setting(cls, access_file: str) -> ClientAccess:
        """The `access_file` setting: a file name, or empty for sidecar mode."""
        return cls.from_file(Path(access_file)) if access_file else cls.sidecar()

    def __repr__(self) -> str:
        return f"ClientAccess(mode={self._config.mode!r}, clients={len(self._config.clients)})"

    @property
    def config(self) -> AccessConfig:
        return self._config

    # Reloading ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Watch the access file (if any) in the background until `close`; idempotent."""
        if self._poller is not None:
            self._poller.start()

    async def close(self) -> None:
        if self._poller is not None:
            await self._poller.close()

    @property
    def watching(self) -> bool:
        """Whether the access file is being watched (between `start` and `close`)."""
        return self._poller is not None and self._poller.running

    async def reload(self) -> bool:
        """Re-read the file if it changed (the `stat` and the parse run in a worker thread);
        True when new client entries took effect. A file that cannot be used keeps the previous
        configuration and logs a warning, once per change."""
        async with self._lock:
            return await self._reload()

    async def _reload(self) -> bool:
        if self._path is None:
            return False
        path = self._path
        seen = await asyncio.to_thread(fingerprint, [path])
        if seen == self._seen:
            return False
        self._seen = seen  # a change during the read shows as another change next time
        try:
            fresh = await asyncio.to_thread(load_access_file, path)
        except (OSError, ValueError) as exc:
            event(log, logging.WARNING, "access file unusable; keeping the previous one",
                  path=str(self._path), problem=str(exc))  # fmt: skip
            return False
        old = self._config
        if (fresh.mode, fresh.tls) != (old.mode, old.tls):
            event(log, logging.WARNING, "access file: mode and [tls] apply at start only; "
                  "restart to change them; keeping the previous configuration",
                  path=str(self._path))  # fmt: skip
            return False
        self._config = fresh
        names = {client.name: client for client in fresh.clients}
        for name in list(self._buckets):
            if name not in names or names[name].rate != self._buckets[name].limit:
                del self._buckets[name]
        ended = self.open_calls.review(fresh)
        event(log, logging.INFO, "access file reloaded", path=str(self._path),
              clients=len(fresh.clients), open_calls_ended=ended)  # fmt: skip
        return True

    # Per call -------------------------------------------------------------------------------

    def take_token(self, client: ClientPolicy) -> None:
        """Spend one call of the client's rate; `ClientRateLimited` when none is left."""
        if client.rate is None:
            return
        bucket = self._buckets.get(client.name)
        if bucket is None:
            bucket = self._buckets[client.name] = TokenBucket(client.rate, clock=self._clock)
        wait_s = bucket.try_take()
        if wait_s > 0:
            raise ClientRateLimited(wait_s)

    # The port ---------------------------------------------------------------------------------

    def listen_refusal(self, address: str, *, insecure: bool = False) -> str | None:
        """Why serving on `address` must be refused, or None: beyond loopback, only shared
        mode (every call authenticated) or an explicit `--insecure` will do."""
        if self._config.shared or is_loopback(address) or insecure:
            return None
        return (
            f"refusing to listen on {address} without client authentication: listen on "
            'loopback (sidecar), set mode = "shared" (mTLS or bearer tokens) in the access '
            "file, or pass --insecure"
        )

    def check_listen(self, address: str, *, insecure: bool = False) -> None:
        """`InsecureListenError` for a refused address; warnings for risky accepted ones."""
        refusal = self.listen_refusal(address, insecure=insecure)
        if refusal is not None:
            raise InsecureListenError(refusal)
        if is_loopback(address):
            return
        if not self._config.shared:
            event(log, logging.WARNING, "listening beyond loopback WITHOUT client authentication "
                  "(--insecure): anyone who reaches this port can use the gateway's CI credentials",
                  address=address)  # fmt: skip
        elif self._config.tls is None:
            event(log, logging.WARNING, "bearer tokens travel unencrypted: configure [tls] in "
                  "the access file", address=address)  # fmt: skip

    def bind(self, server: grpc.aio.Server, address: str) -> int:
        """Add the listening port (TLS when configured); 0 when it could not be bound."""
        tls = self._config.tls
        if tls is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, server_credentials(tls))

    def interceptor(self, default_bucket: str, default_region: str = "") -> AccessInterceptor:
        return AccessInterceptor(self, default_bucket, default_region)


def sidecar_refusal(config: AccessConfig, method: str) -> AccessDenied | None:
    """Why a sidecar refuses `method` (a write of a shared resource it was not allowed), or None."""
    operation = operation_of(method)
    allowed = config.sidecar_operations
    if operation not in SIDECAR_GUARDED or ANY in allowed or operation in allowed:
        return None
    return AccessDenied(
        Reason.OPERATION_NOT_ALLOWED,
        f"{operation!r} changes what every service of the bucket shares: a sidecar allows it "
        "only when its access file lists it in sidecar_operations",
        {"operation": operation},
    )


def _refusing(handler: Handler, method: str, error: AccessDenied) -> Handler:
    """A handler of `handler`'s shape that only answers `error` (the request is not used)."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        event(log, logging.INFO, "client access refused", method=method, client=None,
              reason=error.reason.value, peer=context.peer())  # fmt: skip
        await abort(context, error)

    # A coroutine serves a server stream too: it would write with `context.write`.
    make = (
        grpc.unary_stream_rpc_method_handler
        if handler.response_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return make(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _refuse_streaming(method: str) -> Behavior:
    async def refuse(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        operation = operation_of(method)
        await abort(
            context,
            AccessDenied(
                Reason.OPERATION_NOT_ALLOWED,
                f"{operation!r} is not open to shared clients",
                {"operation": operation},
            ),
        )

    return refuse


class AccessInterceptor(MethodInterceptor):
    """Authenticates and authorizes every API call in shared mode (see the module docstring).

    A caller its metadata alone shows to be a stranger (a bearer token that is malformed or no
    client's, or none where no client certificate can stand in) is refused before its request
    is read (`gate`): grpc reads a unary request before any handler runs, and a client may send
    its call's headers and never the request, holding the call open for as long as it likes.
    Half-open calls of strangers, ten thousand of them, took 200 MB."""

    def gates(self, method: str) -> bool:
        """Shared mode only, and never health or reflection: decided once per method, as `wrap`
        is (the mode is the access file's at start), so that in sidecar mode no call passes
        this gate."""
        return self._access.config.shared and not method.startswith(OPS_PREFIXES)

    def gate(self, method: str, metadata: Metadata) -> Exception | None:
        config = self._access.config
        credentials = presented(metadata, {})  # no certificate yet: the metadata alone
        if credentials.token_sha256 is None and not credentials.malformed and config.mtls:
            return None  # a certificate to look at: the call's own check decides
        try:
            resolve(config, credentials)
        except ClientNotAuthenticated as error:
            return error
        return None

    def __init__(self, access: ClientAccess, default_bucket: str, default_region: str = "") -> None:
        self._access = access
        self._default_bucket = default_bucket
        self._default_region = default_region

    def wrap(self, method: str, handler: Handler) -> Handler:
        """`handler` guarded by the access check in shared mode; as it is otherwise. Decided
        once per method: the mode is the access file's at start (a reload keeps it)."""
        if handler is None or method.startswith(OPS_PREFIXES):
            return handler
        config = self._access.config
        if not config.shared:
            refusal = sidecar_refusal(config, method)
            return handler if refusal is None else _refusing(handler, method, refusal)
        if handler.request_streaming:
            # The API has no client-streaming call; one added later must first decide how its
            # bucket is checked. Until then it is closed to shared clients.
            return grpc.stream_unary_rpc_method_handler(_refuse_streaming(method))
        if handler.response_streaming:
            assert handler.unary_stream is not None
            behavior = self._guard_stream(method, handler.unary_stream)
            make = grpc.unary_stream_rpc_method_handler
        else:
            assert handler.unary_unary is not None
            behavior = self._guard_unary(method, handler.unary_unary)
            make = grpc.unary_unary_rpc_method_handler
        return make(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _admit(
        self,
        method: str,
        request: object,
        context: grpc.aio.ServicerContext[Any, Any],
        *,
        stays_open: bool = False,
    ) -> OpenCall | None:
        """Admit the call or abort it; a call that `stays_open` is registered (the caller must
        `discard` it when it ends) and returned."""
        client: ClientPolicy | None = None
        try:
            config = self._access.config
            credentials = presented(context.invocation_metadata() or (), context.auth_context())
            client = resolve(config, credentials)
            if (rpc := rpc_context.current()) is not None:
                rpc.client = client.name  # for the call's access line
            scope = request_scope(method, request, self._default_bucket, self._default_region)
            if isinstance(request, Message):
                client.check(scope)
                self._access.take_token(client)
            # Else no request to check: one a gate refused before reading it, or one that does
            # not decode. Who sent it is known (above); the error it is answered with next (the
            # gate's, or INVALID_ARGUMENT) says what is wrong with it, not the default bucket's
            # policy, and it uses none of the client's rate.
        except GatewayError as error:
            event(log, logging.INFO, "client access refused", method=method,
                  client=client.name if client else None, reason=error.reason.value,
                  peer=context.peer())  # fmt: skip
            await abort(context, error)
        call = OpenCall(method, scope, credentials, client) if stays_open else None
        if call is not None:
            self._access.open_calls.add(call)
        open_calls.enter(client, call)
        return call

    def _guard_unary(
        self, method: str, behavior: Behavior, *, stays_open: bool = False
    ) -> Behavior:
        stays_open = stays_open or method in WAITING_METHODS
        registry = self._access.open_calls

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            call = await self._admit(method, request, context, stays_open=stays_open)
            if call is None:
                response = behavior(request, context)
                return await response if inspect.isawaitable(response) else response
            try:
                async with call.running():
                    response = behavior(request, context)
                    return await response if inspect.isawaitable(response) else response
            except CallEnded as ended:
                await abort(context, ended.error)
            finally:
                registry.discard(call)

        return unary

    def _guard_stream(self, method: str, behavior: Behavior) -> Behavior:
        if not inspect.isasyncgenfunction(behavior):
            # A handler that writes with `context.write` and returns None. (None so far: an
            # `end` would then cancel a write in progress, which a generator never sees.)
            return self._guard_unary(method, behavior, stays_open=True)
        registry = self._access.open_calls

        async def generator(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            call = await self._admit(method, request, context, stays_open=True)
            assert call is not None
            messages = behavior(request, context)
            try:
                while True:  # one message per pass; ends with the handler's stream
                    # Armed only while the handler works: never across a `yield`, where gRPC
                    # writes the message (a write is not cut short, the next wait is).
                    async with call.running():
                        try:
                            message = await anext(messages)
                        except StopAsyncIteration:
                            return
                    yield message
            except CallEnded as ended:
                await messages.aclose()  # leaves its watch before the caller hears the end
                await abort(context, ended.error)
            finally:
                registry.discard(call)
                await messages.aclose()

        return generator
