"""``voicechat models ...``: the model administration commands.

Talks to Triton at TRITON_URL (or the embedded server's gRPC port) and works on
MODEL_REPOSITORY directly; a running orchestrator picks promotions up from
``serving.json`` within MODEL_PIN_REFRESH_S.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from orchestrator.errors import AppError
from orchestrator.models.schemas import GcResult, ModelOut, ValidationReport
from orchestrator.settings import Settings

ACTIONS = ("list", "show", "load", "unload", "validate", "promote", "rollback", "gc")


def add_models_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("models", help="list, load, validate, promote, roll back versions")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("model", nargs="?", help="model name (all but list)")
    parser.add_argument("version", nargs="?", type=int,
                        help="version number (load, unload, validate, promote)")
    parser.add_argument("--apply", action="store_true", help="gc: really delete (default: "
                        "dry run)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    needs_model = args.action != "list"
    needs_version = args.action in ("load", "unload", "validate", "promote")
    if (needs_model and not args.model) or (needs_version and args.version is None):
        what = "MODEL VERSION" if needs_version else "MODEL"
        print(f"voicechat models {args.action}: expected {what}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, settings))
    except AppError as exc:
        print(f"voicechat models {args.action}: {exc.message}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    # Here, not at the top: every `voicechat` command imports this module to build its
    # parser, and the Triton client (tritonclient, gRPC) is needed by this command only.
    from export.repository import ModelRepository
    from orchestrator.inference.client import TritonClient
    from orchestrator.models.service import ModelAdmin

    url = settings.triton_url or f"127.0.0.1:{settings.triton_grpc_port}"
    client = TritonClient(url, settings.triton_timeout_s)
    admin = ModelAdmin(ModelRepository(settings.model_repository), client,
                       grace_s=settings.model_swap_grace_s, profile=settings.serving_profile)
    try:
        if args.action == "list":
            result = await admin.list_models()
        elif args.action == "show":
            result = await admin.describe(args.model)
        elif args.action == "gc":
            result = await admin.gc(args.model, dry_run=not args.apply)
        elif args.action == "rollback":
            result = await admin.rollback(args.model)
        else:
            result = await getattr(admin, args.action)(args.model, args.version)
    finally:
        await client.close()
    print(msgspec.json.format(msgspec.json.encode(result)).decode() if args.json
          else render(result))
    return 0 if getattr(result, "ok", True) else 1


def render(result: object) -> str:
    if isinstance(result, list):
        if not result:
            return "no models in the repository"
        head = [f"profile: {result[0].profile}    triton: {result[0].triton}"]
        return "\n\n".join(head + [render(m) for m in result])
    if isinstance(result, ModelOut):
        def number(value: int | None) -> str:
            return "none" if value is None else str(value)

        lines = [f"{result.name}: served {number(result.served)}, rollback to "
                 f"{number(result.rollback_to)}",
                 f"   {'VERSION':>7}  {'STATE':<12} {'MANIFEST':<12}  {'EXPORTED':<20}  PARITY"]
        for v in result.versions:
            mark = "*" if v.served else " "
            parity = {True: "ok", False: "FAILED", None: "no manifest"}
            lines.append(f" {mark} {v.version:>7}  {v.state:<12} {v.manifest_id or '-':<12}  "
                         f"{v.created_at or '-':<20}  {parity[v.parity_passed]}"
                         f"{'  ' + v.manifest_error if v.manifest_error else ''}")
        if not result.versions:
            lines.append("   (no exported versions)")
        return "\n".join(lines)
    if isinstance(result, ValidationReport):
        lines = [f"{result.model} version {result.version}: "
                 f"{'valid' if result.ok else 'REFUSED'}"]
        lines += [f"  {'ok  ' if c.passed else 'FAIL'} {c.name:<9} {c.detail}"
                  for c in result.checks]
        return "\n".join(lines)
    if isinstance(result, GcResult):
        verb = "would remove" if result.dry_run else "removed"
        hint = " (dry run: add --apply)" if result.dry_run and result.removed else ""
        return (f"{result.model}: {verb} versions {result.removed or 'none'}; kept "
                f"{result.kept}{hint}")
    return str(result)
