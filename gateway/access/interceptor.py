"""Client access: who is calling, and whether their policy allows this call.

Two modes (`gateway.access.config_file`). In **sidecar** mode the gateway trusts every caller and
must therefore listen on loopback only; it still refuses what would change the bucket's shared
queues, templates and workflows unless the access file's `sidecar_operations` allows it
(`sidecar_refusal`, decided per method before the call is read). In **shared** mode every call
names its client, by a client certificate (mTLS: the subject CN or a SAN, from
`context.auth_context()`) or by an `authorization: Bearer <token>` whose SHA-256 the access file
lists; a token, when sent, decides (a wrong token is refused even on a valid certificate). Then
the client's policy (`gateway.access.policy`) checks the operation, every bucket and region the
request names, and the tag, and its rate limit spends a token.

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
`stat` or a TOML parse.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import grpc

from gateway._chain import Metadata, MethodInterceptor
from gateway._files import Fingerprint, Poller, Sleep, fingerprint
from gateway.access.config_file import AccessConfig, load_access_file
from gateway.access.policy import (
    ANY,
    SIDECAR_GUARDED,
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
EXEMPT_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
AUTHORIZATION = "authorization"
BEARER = "bearer "

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior: TypeAlias = Callable[..., Any]

_CLIENT: contextvars.ContextVar[ClientPolicy | None] = contextvars.ContextVar(
    "ci_gateway_client", default=None
)


def current_client() -> ClientPolicy | None:
    """The authenticated client of the RPC this code runs for (None in sidecar mode)."""
    return _CLIENT.get()


class InsecureListenError(ValueError):
    """Listening beyond loopback without client authentication was not asked for."""


def certificate_names(auth_context: Mapping[str, Iterable[bytes]]) -> list[str]:
    """The verified client certificate's subject CN and SANs (DNS, URI, email, IP)."""
    names = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth_context.get(key, ()):
            names.append(value.decode("utf-8", "replace"))
    return names


def _authorization(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key.lower() == AUTHORIZATION:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def token_client(
    config: AccessConfig, metadata: Iterable[tuple[str, str | bytes]]
) -> ClientPolicy | None:
    """The client the call's bearer token names; None when the call sends no `authorization`;
    `ClientNotAuthenticated` for one that is no bearer token or no client's."""
    authorization = _authorization(metadata)
    if authorization is None:
        return None
    if not authorization.lower().startswith(BEARER):
        raise ClientNotAuthenticated("the authorization metadata must be 'Bearer <token>'")
    token = authorization[len(BEARER) :].strip()
    client = config.by_token.get(hashlib.sha256(token.encode()).hexdigest())
    if client is None:
        raise ClientNotAuthenticated("the bearer token is not valid")
    return client


def no_credentials() -> ClientNotAuthenticated:
    return ClientNotAuthenticated(
        # Not "authorization: Bearer ...": the scrubber, rightly, blanks whatever follows that
        # on every status message, which would leave the caller a garbled hint.
        "no valid client credentials: present a client certificate or the metadata entry "
        "'authorization' with the value 'Bearer <token>'"
    )


def authenticate(
    config: AccessConfig,
    metadata: Iterable[tuple[str, str | bytes]],
    auth_context: Mapping[str, Iterable[bytes]],
) -> ClientPolicy:
    """The calling client, or `ClientNotAuthenticated` (whose text reveals no client)."""
    client = token_client(config, metadata)
    if client is not None:
        return client
    if config.mtls:
        for name in certificate_names(auth_context):
            client = config.by_certificate_name.get(name)
            if client is not None:
                return client
    raise no_credentials()


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
        event(log, logging.INFO, "access file reloaded", path=str(self._path),
              clients=len(fresh.clients))  # fmt: skip
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

    def gate(self, method: str, metadata: Metadata) -> Exception | None:
        config = self._access.config
        if not config.shared or method.startswith(EXEMPT_PREFIXES):
            return None
        try:
            client = token_client(config, metadata)
        except ClientNotAuthenticated as error:
            return error
        if client is None and not config.mtls:
            return no_credentials()
        return None  # a client, or a certificate to look at: the call's own check decides

    def __init__(self, access: ClientAccess, default_bucket: str, default_region: str = "") -> None:
        self._access = access
        self._default_bucket = default_bucket
        self._default_region = default_region

    def wrap(self, method: str, handler: Handler) -> Handler:
        """`handler` guarded by the access check in shared mode; as it is otherwise. Decided
        once per method: the mode is the access file's at start (a reload keeps it)."""
        if handler is None or method.startswith(EXEMPT_PREFIXES):
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
        self, method: str, request: object, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        client: ClientPolicy | None = None
        try:
            config = self._access.config
            client = authenticate(
                config, context.invocation_metadata() or (), context.auth_context()
            )
            scope = request_scope(method, request, self._default_bucket, self._default_region)
            client.check(scope)
            self._access.take_token(client)
        except GatewayError as error:
            event(log, logging.INFO, "client access refused", method=method,
                  client=client.name if client else None, reason=error.reason.value,
                  peer=context.peer())  # fmt: skip
            await abort(context, error)
        # Each RPC runs in its own task (its own context), so this ends with the call.
        _CLIENT.set(client)

    def _guard_unary(self, method: str, behavior: Behavior) -> Behavior:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await self._admit(method, request, context)
            response = behavior(request, context)
            return await response if inspect.isawaitable(response) else response

        return unary

    def _guard_stream(self, method: str, behavior: Behavior) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def generator(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                await self._admit(method, request, context)
                async for message in behavior(request, context):
                    yield message

            return generator
        # A handler that writes with `context.write` and returns None.
        return self._guard_unary(method, behavior)
