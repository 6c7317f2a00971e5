"""``python -m export <model> --source SRC [--version N] [--repo DIR]``.

Each model's exporter is a module ``export.<model>.cli`` with ``add_arguments(parser)``
and ``run(args, repository) -> Manifest``; they are imported only when chosen.
``python -m export configs [--check]`` regenerates every ``config.pbtxt`` from the specs.
``python -m export configs --profile gpu --repo DIR --from model_repository`` writes a GPU
copy of the repository (``export.profiles``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from export.errors import ExportError
from export.profiles import PROFILES, repository_profile, write_profile
from export.repository import ModelRepository
from export.specs import MODEL_NAMES, all_specs

DEFAULT_REPOSITORY = "model_repository"


def _exporter(model: str):
    return importlib.import_module(f"export.{model}.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="model", required=True)
    configs = sub.add_parser("configs", help="regenerate config.pbtxt from the specs")
    configs.add_argument("--repo", default=DEFAULT_REPOSITORY)
    configs.add_argument("--check", action="store_true",
                         help="fail (exit 1) when a checked-in config differs from its spec")
    configs.add_argument("--profile", default="cpu", choices=sorted(PROFILES),
                         help="deployment profile (gpu: KIND_GPU, instances, batching) — "
                         "write it to a separate --repo")
    configs.add_argument("--from", dest="source", default=None,
                         help="with --profile: link this repository's versions into --repo")
    configs.add_argument("--instance-kind", choices=("cpu", "gpu"), default=None,
                         help="with --profile: override the instance kind (cpu: the "
                         "profile's counts and batching on CPU instances, for a machine "
                         "without a GPU)")
    for model in MODEL_NAMES:
        try:
            module = _exporter(model)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"export.{model}"):
                continue
            raise
        p = sub.add_parser(model, help=module.__doc__.strip().splitlines()[0],
                           description=module.__doc__)
        if getattr(module, "MULTIPLE_SOURCES", False):
            p.add_argument("--source", required=True, action="append",
                           help="checkpoint to export (repeat for several in one version)")
        elif (default := os.environ.get(getattr(module, "SOURCE_ENV", ""), "")):
            # The original service's variable for this model names the checkpoint.
            p.add_argument("--source", default=default,
                           help=f"checkpoint to export (default: ${module.SOURCE_ENV}, "
                           f"{default})")
        else:
            p.add_argument("--source", required=True, help="checkpoint to export")
        p.add_argument("--version", type=int, default=None,
                       help="version number to write (default: the next free one)")
        p.add_argument("--repo", default=DEFAULT_REPOSITORY, help="model repository directory")
        module.add_arguments(p)
    return parser


def check_configs(repo: Path, write: bool) -> list[str]:
    """Names of models whose config.pbtxt differs from the spec under the repository's
    recorded profile (rewritten when ``write``)."""
    profile = repository_profile(repo)
    stale = []
    for name, spec in all_specs().items():
        path = repo / name / "config.pbtxt"
        expected = profile.config_pbtxt(spec)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != expected:
            stale.append(name)
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(expected, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.model == "configs" and (args.profile != "cpu" or args.source
                                    or args.instance_kind):
        profile = PROFILES[args.profile]
        if args.instance_kind:
            profile = replace(profile, gpu=args.instance_kind == "gpu")
        written = write_profile(profile, all_specs(), Path(args.repo),
                                Path(args.source) if args.source else None)
        print(f"{args.profile} profile written to {args.repo}: {', '.join(written) or 'none'}")
        return 0
    if args.model == "configs":
        stale = check_configs(Path(args.repo), write=not args.check)
        if args.check and stale:
            print(f"config.pbtxt differs from its spec for: {', '.join(stale)} "
                  "(run `python -m export configs`)", file=sys.stderr)
            return 1
        print("configs up to date" if not stale else f"rewrote: {', '.join(stale)}")
        return 0
    try:
        manifest = _exporter(args.model).run(args, ModelRepository(args.repo))
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"model": manifest.model, "version": manifest.version, "id": manifest.id,
                      "parity": [p.__dict__ for p in manifest.parity]}, indent=2))
    return 0
