"""One real Triton server for the whole test session, over a temporary repository.

Tests export tiny models into ``repository`` and call :func:`load` to serve them
(explicit model control: no restart between tests).
"""

from __future__ import annotations

import time
from pathlib import Path

import tritonclient.grpc as grpcclient

from orchestrator.inference.server import EmbeddedTriton
from tests.support.mariadb import free_port


def start(base: Path) -> EmbeddedTriton:
    repository = base / "repository"
    repository.mkdir(parents=True, exist_ok=True)
    _link_export_package(base / "work")
    server = EmbeddedTriton(repository=repository, work_dir=base / "work",
                            grpc_port=free_port(), http_port=free_port(),
                            metrics_port=free_port())
    server.start(timeout_s=120)
    return server


def _link_export_package(work_dir: Path) -> None:
    """Make the models import the ``export`` package under test.

    The python backend stub ignores PYTHONPATH but puts its working directory (the
    server's ``work_dir``) first on ``sys.path``; a link there wins over the editable
    install, which may point at another checkout.
    """
    import export

    work_dir.mkdir(parents=True, exist_ok=True)
    link = work_dir / "export"
    if not link.exists():
        link.symlink_to(Path(export.__file__).resolve().parent, target_is_directory=True)


def load(server: EmbeddedTriton, model: str, config: str | None = None,
         timeout_s: float = 300) -> None:
    """(Re)load ``model`` and wait until it is ready; raises with Triton's reason."""
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        client.load_model(model, config=config)
        deadline = time.monotonic() + timeout_s
        while not client.is_model_ready(model):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{model} not ready:\n{server.tail_log()}")
            time.sleep(0.2)
    finally:
        client.close()


def unload(server: EmbeddedTriton, model: str) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        client.unload_model(model)
    finally:
        client.close()


def start_private(repository: Path, work_dir: Path) -> EmbeddedTriton:
    """A second Triton of the test's own, over ``repository``, on free ports (for tests that
    must not touch the session server's models). Stop it when done."""
    server = EmbeddedTriton(repository=repository, work_dir=work_dir, grpc_port=free_port(),
                            http_port=free_port(), metrics_port=free_port())
    server.start(timeout_s=120)
    return server
