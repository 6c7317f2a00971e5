"""Write the ``bench_probe`` test model into a Triton repository.

    python -m tests.support.probe --repo DIR [--gpu]

(used by tests and by the CPU path of scripts/bench_gpu.sh).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tests.support.probe_spec import SPEC

HERE = Path(__file__).parent


def write_probe(repository: Path, *, gpu: bool = False, version: int = 1) -> Path:
    """Config from the spec, and version ``version`` with model.py + probe_spec.py."""
    model_dir = Path(repository) / SPEC.name
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(SPEC.config_pbtxt(gpu=gpu), encoding="utf-8")
    shutil.copyfile(HERE / "probe_triton_model.py", version_dir / "model.py")
    shutil.copyfile(HERE / "probe_spec.py", version_dir / "probe_spec.py")
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--gpu", action="store_true", help="KIND_GPU instance group")
    args = parser.parse_args()
    print(write_probe(Path(args.repo), gpu=args.gpu))


if __name__ == "__main__":
    main()
