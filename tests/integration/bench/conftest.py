"""The ``bench_probe`` test model served by the session's real Triton server."""

from __future__ import annotations

import pytest

from tests.support import triton as triton_support
from tests.support.probe import write_probe
from tests.support.probe_spec import SPEC


@pytest.fixture(scope="session")
def probe(triton_server):  # type: ignore[no-untyped-def]
    """Triton's gRPC URL with bench_probe loaded."""
    write_probe(triton_server.repository)
    triton_support.load(triton_server, SPEC.name)
    return triton_server.grpc_url
