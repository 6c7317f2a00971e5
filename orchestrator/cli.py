"""The ``voicechat`` command.

    voicechat serve            run the service (starts the embedded Triton unless TRITON_URL)
    voicechat triton           run only the embedded Triton server
    voicechat probe [ready|live]  exit 0 when the local service answers (health checks)
    voicechat db upgrade       apply SQL migrations
    voicechat db current       print the database's schema revision
    voicechat config           list every setting, its variable and current value
    voicechat bench NAME       benchmarks (top-level bench/: stt, triton, batching, e2e, voice …)
    voicechat models ACTION    list|show|load|unload|validate|promote|rollback|gc versions
    voicechat memory reindex   rebuild the Milvus memory collection from SQL [--user-id ID]
    voicechat keys ACTION      create --user ID [--name N] [--admin] | list | revoke KEY_ID

Every subcommand accepts ``--env-file PATH`` (the original env.local format).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Callable

from orchestrator.auth import cli as auth_cli
from orchestrator.inference.server import TritonStartError
from orchestrator.logging import configure_logging
from orchestrator.memory import cli as memory_cli
from orchestrator.models import cli as models_cli
from orchestrator.redaction import remember_secrets
from orchestrator.settings import Settings, SettingsError, get_settings, load_env_file

log = logging.getLogger("voicechat")

Command = Callable[[argparse.Namespace, Settings], int]
BENCH_HELP = "benchmarks (see docs/benchmarks/bench.md)"  # bench.add_bench_parser's too
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return register


def _exit_on_signal(_signum: int, _frame: object) -> None:
    raise SystemExit(0)  # a requested stop is a clean exit (after the cleanup below)


@command("serve")
def serve(args: argparse.Namespace, settings: Settings) -> int:
    # Here, not at the top: the web app and its clients (Litestar routes, tritonclient)
    # cost seconds to import, and `voicechat probe` (a container health check every 15 s),
    # `config` and `keys` never need them.
    from orchestrator.app import create_app
    from orchestrator.inference.health import enabled_models
    from orchestrator.preflight import StartupError, check_serve
    from orchestrator.realtime.controllers import TRANSPORT_MAX_FRAME_BYTES
    from orchestrator.serving import server
    from orchestrator.telemetry.tracing import configure_tracing

    # uvicorn re-raises the SIGTERM it caught once it has shut down; with the default
    # handler that kills the process before the `finally` below stops Triton.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    check_serve(settings)  # one line per problem, before any model loads
    supervisor = None
    if not settings.triton_url and enabled_models(settings):
        supervisor = _supervised_triton(settings)
        assert supervisor.server is not None
        settings = dataclasses.replace(settings, triton_url=supervisor.server.grpc_url)
    try:
        tls = settings.tls_files
        scheme = "https" if tls else "http"
        log.info("serving on %s://%s:%s", scheme, settings.host, settings.port)
        stop_tracing = configure_tracing()  # OTEL_* variables; None: off
        app = create_app(settings, triton_supervisor=supervisor)
        try:
            server(app, drain_timeout_s=settings.drain_timeout_s, host=settings.host,
                   port=settings.port, ssl_certfile=tls[0] if tls else None,
                   ssl_keyfile=tls[1] if tls else None,
                   ws_max_size=TRANSPORT_MAX_FRAME_BYTES).run()
        except SystemExit:  # uvicorn's exit when the app's start-up failed
            if app.state.get("startup_error"):
                raise StartupError(app.state.startup_error) from None
            raise
        if stop_tracing is not None:
            stop_tracing()  # flushes the spans still batched
    finally:
        if supervisor is not None:
            supervisor.stop()  # after the drain: turns in flight still had their models
    return 0


def _supervised_triton(settings: Settings):  # type: ignore[no-untyped-def]
    """The embedded Triton, restarted with backoff whenever it dies."""
    # Here: tritonclient, for the commands that start Triton only (see serve).
    from orchestrator.inference.embedded import start_embedded_triton
    from orchestrator.inference.supervisor import TritonSupervisor
    from orchestrator.models.startup import PROMOTED

    supervisor = TritonSupervisor(lambda: start_embedded_triton(settings, PROMOTED))
    supervisor.start()
    return supervisor


@command("triton")
def triton(args: argparse.Namespace, settings: Settings) -> int:
    from orchestrator.preflight import check_triton  # tritonclient: see serve

    check_triton(settings)
    supervisor = _supervised_triton(settings)
    server = supervisor.server
    assert server is not None
    print(f"tritonserver ready: grpc {server.grpc_url}, http {server.http_url}; Ctrl-C stops",
          flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        supervisor.stop()
    return 0


@command("db")
def db(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import current_revision, head_revision, upgrade

    if args.action == "upgrade":
        upgrade(settings.sql_url)
        print(f"database at revision {head_revision()}")
    else:
        print(asyncio.run(current_revision(settings.sql_url)) or "none")
    return 0


@command("config")
def config(args: argparse.Namespace, settings: Settings) -> int:
    for variable, value, doc in settings.describe():
        print(f"{variable:<26} {value:<40} {doc}")
    return 0


@command("probe")
def probe(args: argparse.Namespace, settings: Settings) -> int:
    """A container health check: this host's ``/readyz`` or ``/livez``, over HTTPS when
    the certificates are there (the service then serves only HTTPS)."""
    import ssl
    import urllib.request

    scheme = "https" if settings.tls_files else "http"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"{scheme}://{host}:{settings.port}/{args.which}z"
    # Our own certificate on loopback: its name and issuer need not check out here.
    context = ssl._create_unverified_context() if scheme == "https" else None
    try:
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as response:
            print(response.read().decode())
            return 0
    except OSError as exc:
        print(f"voicechat: {url}: {exc}", file=sys.stderr)
        return 1


@command("bench")
def bench(args: argparse.Namespace, settings: Settings) -> int:
    from bench import run_bench  # lazy: bench is a tool beside the service, never part of it

    return run_bench(args, settings)


@command("memory")
def memory(args: argparse.Namespace, settings: Settings) -> int:
    return memory_cli.run(args, settings)


@command("keys")
def keys(args: argparse.Namespace, settings: Settings) -> int:
    return auth_cli.run(args, settings)


@command("models")
def models(args: argparse.Namespace, settings: Settings) -> int:
    return models_cli.run(args, settings)


def _add_bench_parser(sub: argparse._SubParsersAction, full: bool) -> None:
    if not full:
        # Listed in `voicechat --help` without loading bench/: its parser imports every
        # bench module, and no other command (the service least of all) needs them.
        sub.add_parser("bench", help=BENCH_HELP)
        return
    from bench import add_bench_parser  # lazy: bench is a tool beside the service, never part of it

    add_bench_parser(sub)


def build_parser(*, with_bench: bool = True) -> argparse.ArgumentParser:
    """``with_bench=False``: ``bench`` without its sub-commands (bench/ not imported)."""
    parser = argparse.ArgumentParser(prog="voicechat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-file", help="load KEY=value lines (env.local format) first")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service")
    sub.add_parser("triton", help="run the embedded Triton server")
    db_parser = sub.add_parser("db", help="database schema")
    db_parser.add_argument("action", choices=["upgrade", "current"])
    sub.add_parser("config", help="list settings")
    probe_parser = sub.add_parser("probe", help="exit 0 when the local service is ready "
                                  "(or live): a container health check, HTTPS-aware")
    probe_parser.add_argument("which", choices=["ready", "live"], nargs="?", default="ready")
    probe_parser.add_argument("--timeout", type=float, default=5.0)
    _add_bench_parser(sub, with_bench)
    models_cli.add_models_parser(sub)
    memory_cli.add_memory_parser(sub)
    auth_cli.add_keys_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(with_bench="bench" in argv).parse_args(argv)
    try:
        if args.env_file:
            load_env_file(args.env_file)
        settings = get_settings()
    except (SettingsError, OSError) as exc:
        print(f"voicechat: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    remember_secrets(settings.admin_api_key, settings.db_password)
    from orchestrator.preflight import StartupError  # tritonclient: see serve

    try:
        return _COMMANDS[args.command](args, settings)
    except StartupError as exc:
        print(f"voicechat: {exc}", file=sys.stderr)
        return 2
    except TritonStartError as exc:  # the log's tail is in the file it names
        print(f"voicechat: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
