"""`ci-gateway`: serve the gateway; with the emulator extra, run the CI emulator or the demo.

Credentials never come from flags (argv is visible to every user of the machine through `ps`):
`serve` reads them from the environment (`CI_GATEWAY_SECRET_ID`, `CI_GATEWAY_SECRET_KEY`) or
the sources its `--credentials-file` names, and `demo` invents throwaway ones that it hands to
its in-process emulator and gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from gateway import logs, tracing
from gateway.access.interceptor import ClientAccess
from gateway.config.load import load_settings, unknown_variables
from gateway.config.settings import OPTIONS, Settings
from gateway.console import commands as console
from gateway.console import templates as templates_console
from gateway.console.connection import ENVIRONMENT as CLIENT_ENVIRONMENT
from gateway.console.exits import listing
from gateway.credentials import (
    ENV_SECRET_ID,
    ENV_SECRET_KEY,
    ENV_SESSION_TOKEN,
    CredentialsProvider,
)
from gateway.credentials.config_file import ProxyFor, open_credentials
from gateway.errors import NoCredentialsError
from gateway.upstream import proxy as upstream_proxy

log = logging.getLogger("gateway")
# The `environment` account's keys: read by `gateway.credentials`, not settings.
KEY_VARIABLES = (ENV_SECRET_ID, ENV_SECRET_KEY, ENV_SESSION_TOKEN)

# `ci-gateway <command>` forwarded whole to `main(argv)` of the module named here.
EMULATOR_COMMANDS = {
    "emulator": ("ci_emulator.cli", "run the CI emulator"),
    "demo": ("ci_emulator.demo", "emulator + gateway + one MediaInfo job, printed"),
}

# The commands that run the CI emulator live in the `ci_emulator` package, which needs PyAV: a
# production install (`pip install ci-gateway`, the container image) has neither, so they are
# imported only when asked for, and their absence is explained instead of shown as a traceback.
EMULATOR_EXTRA_HINT = (
    "ci-gateway {command}: this needs the CI emulator, which is not installed here "
    "(missing module {module!r}); install it with: pip install 'ci-gateway[emulator]'"
)


def _emulator_entry(command: str, module: str) -> Callable[[list[str]], int] | None:
    """`main(argv)` of an emulator module, or None after explaining what to install."""
    try:
        entry: Callable[[list[str]], int] = importlib.import_module(module).main
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("ci_emulator", "av"):
            raise
        print(EMULATOR_EXTRA_HINT.format(command=command, module=exc.name), file=sys.stderr)
        return None
    return entry


# `serve --help` shows only the settings that have a flag: say where the others and the keys go,
# which a new user otherwise learns only from the README.
SERVE_EPILOG = (
    "Settings, lowest precedence first: defaults, --config, environment variables, flags. Every "
    "setting has a TOML key and a variable, CI_GATEWAY_<SECTION>_<NAME> (top-level ones: "
    "CI_GATEWAY_<NAME>); only some have a flag (the README's configuration table lists them "
    "all). The Tencent keys never come from a flag: "
    f"{ENV_SECRET_ID} and {ENV_SECRET_KEY} ({ENV_SESSION_TOKEN} for temporary keys), or the "
    "sources that --credentials-file names."
)


# What `serve` ends with (`_serve_command`'s returns; tests/console/test_help.py keeps them
# equal), listed by `serve --help` for the supervisor or script that starts it.
SERVE_EXIT_CODES = {
    0: "stopped by SIGTERM or SIGINT, after draining (or --help)",
    2: "refused to start: bad arguments or settings, no credentials, an unreadable settings, "
    "credentials or access file, listening beyond loopback without --insecure or client "
    "authentication, a port it cannot bind",
}


def _serve_epilog(width: int = 92) -> str:
    return f"{textwrap.fill(SERVE_EPILOG, width)}\n\nexit codes:\n{listing(SERVE_EXIT_CODES)}"


class CannotStart(Exception):
    """`start_gateway` refused the settings or could not bind a port."""


async def _serve(
    settings: Settings,
    credentials: CredentialsProvider,
    access: ClientAccess | None = None,
    insecure: bool = False,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain; a second signal cuts the drain short.

    The handlers are installed explicitly (not left to Python's defaults) because as PID 1 in
    a container the kernel ignores any signal whose handler is the default: SIGTERM would do
    nothing and the pod would wait for SIGKILL.
    """
    # Imported here, not at the top: `ci-gateway jobs` (a client) starts without the server's
    # imports (aiohttp, redis, the STS SDK: most of a second).
    from gateway.api.server import start_gateway

    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    gateway = None

    def on_signal(sig: signal.Signals) -> None:
        if signalled.is_set() and gateway is not None:
            log.warning("second %s: ending the calls still running", sig.name)
            gateway.force_stop()
        else:
            log.info("%s received: draining", sig.name)
        signalled.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        # start_gateway starts the credentials (first keys, then rotation watching / STS
        # refresh) and gateway.stop() closes them: the gateway owns their lifecycle.
        try:
            gateway = await start_gateway(settings, credentials, access=access, insecure=insecure)
        except (ValueError, OSError) as exc:
            # A port taken or not local, settings that only conflict once assembled: one line
            # and status 2, as the refusals before the start, never a traceback.
            raise CannotStart(str(exc)) from exc
        try:
            await signalled.wait()
        finally:
            await gateway.stop()
            if gateway.stop_server.left_open:
                _exit_leaving_connections()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# Descriptors beside the clients' and CI's connections: the health, ops and callback ports'
# sockets and their clients, a Redis connection, the loop's own, log and credential files.
OTHER_FILES = 256


def _check_open_files(settings: Settings, limits: tuple[int, int]) -> None:
    """Say when the process may open fewer files than its settings can ask for: a connection
    refused at the open-file limit looks like a network fault to the client (and a CI call
    that cannot connect, like CI's), so the operator hears it at start-up instead."""
    before, limit = limits
    needed = settings.server.max_connections + settings.retry.max_in_flight_upstream + OTHER_FILES
    if limit < needed:
        logs.event(
            log,
            logging.WARNING,
            "open-file limit below what the settings can use: raise the container's nofile "
            "limit or lower server.max_connections",
            open_files_limit=limit,
            needed=needed,
        )
    elif limit != before:
        logs.event(log, logging.DEBUG, "open-file limit raised", before=before, now=limit)


def _exit_leaving_connections() -> None:
    """End the process now, status 0: the drain is over and everything the gateway owns is
    closed, but grpc still holds a connection whose client stopped reading (see
    `gateway.api.server.CLOSE_WAIT_S`). A normal exit would wait for it: tearing grpc down joins
    its poller thread, which waits for that connection's last write, for as long as the client
    likes. The log is flushed first; the kernel closes the sockets."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _egress_proxy_for(settings: Settings) -> ProxyFor:
    """STS goes out the way CI does: through `upstream.proxy_url` (from the settings or
    HTTPS_PROXY) unless `no_proxy` lists its host."""
    proxy = upstream_proxy.from_settings(settings.upstream)
    url = settings.upstream.proxy_url

    def proxy_for(host: str, port: int) -> str | None:
        return url if proxy is not None and proxy.applies_to(host, port) else None

    return proxy_for


def _settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        config_file=args.config,
        environ=os.environ,
        overrides={option.key: getattr(args, option.key) for option in OPTIONS if option.flag},
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ci-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve the gRPC gateway",
        description="Serve the gRPC gateway until SIGTERM or SIGINT, then drain.",
        epilog=_serve_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--config", type=Path, help="TOML settings file (every setting; an unknown key is an error)"
    )
    for option in OPTIONS:
        if option.flag:
            serve.add_argument(
                option.flag, dest=option.key, help=f"{option.help} (env {option.env})"
            )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow listening beyond loopback without client authentication (logs a warning)",
    )

    commands.add_parser(
        "templates",
        help="plan or apply a bucket's custom templates from a TOML file "
        "(`ci-gateway templates --help`)",
        add_help=False,
    )
    commands.add_parser(
        "jobs",
        help="submit, list, watch, wait for, cancel jobs on a running gateway "
        "(`ci-gateway jobs --help`)",
        add_help=False,
    )
    for command, (_, about) in EMULATOR_COMMANDS.items():
        commands.add_parser(
            command, help=f"{about} (`ci-gateway {command} --help`)", add_help=False
        )
    return parser


@contextlib.contextmanager
def _naming_the_file(setting: str, path: Path | str | None) -> Iterator[None]:
    """An unreadable file that `setting` names is refused naming the setting, as the secret
    files' are ("callbacks.token_file '...' cannot be read: ..."), not as a bare "[Errno 2]"
    that could be any of three files."""
    try:
        yield
    except OSError as exc:
        if path is None or exc.filename != str(path):
            raise
        raise ValueError(f"{setting} {str(path)!r} cannot be read: {exc.strerror}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["jobs"]:  # the operator's CLI: a gRPC client of a running gateway
        return console.main(args_list[1:])
    if args_list[:1] == ["templates"]:  # templates as code: the same kind of client
        return templates_console.main(args_list[1:])
    if args_list[:1] and args_list[0] in EMULATOR_COMMANDS:
        entry = _emulator_entry(args_list[0], EMULATOR_COMMANDS[args_list[0]][0])
        return 2 if entry is None else entry(args_list[1:])
    return _serve_command(args_list)


def _serve_command(args_list: list[str]) -> int:
    """`ci-gateway serve ...` (or `--help`): its exit code, one of `SERVE_EXIT_CODES`."""
    args = build_parser().parse_args(args_list)
    try:
        with _naming_the_file("--config", args.config):
            settings = _settings_from(args)
        with _naming_the_file("credentials_file", settings.credentials_file):
            credentials = open_credentials(
                settings.credentials_file, proxy_for=_egress_proxy_for(settings)
            )
        with _naming_the_file("access_file", settings.access_file):
            access = ClientAccess.from_setting(settings.access_file)
        refusal = access.listen_refusal(settings.listen, insecure=args.insecure)
        if refusal is not None:
            raise ValueError(refusal)
        tracing.check(enabled=settings.tracing.enabled)  # the packages, the OTEL_* values
    except (ValueError, OSError, NoCredentialsError) as exc:
        print(f"ci-gateway: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    unknown = unknown_variables(os.environ, also_known=(*CLIENT_ENVIRONMENT, *KEY_VARIABLES))
    if unknown:
        log.warning(
            "ignoring environment variables that name no setting (misspelt?): %s",
            ", ".join(unknown),
        )
    # Imported here, as in `_serve`: `ci-gateway jobs` starts without the server's imports.
    from gateway.api import process

    _check_open_files(settings, process.raise_open_file_limit())
    serving = _serve(settings, credentials, access, args.insecure)
    try:
        process.run(serving, event_loop=settings.event_loop)
    except CannotStart as exc:
        print(f"ci-gateway: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
