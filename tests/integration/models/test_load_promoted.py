"""An external Triton (compose, Kubernetes) serves the promoted versions: the loader its
container runs after tritonserver starts loads what serving.json says, over HTTP."""

from __future__ import annotations

import pytest

from orchestrator.models.load_promoted import load_promoted_http
from orchestrator.models.state import ServingState, write_state
from tests.support import echo
from tests.support import triton as triton_support

pytestmark = pytest.mark.triton
MODEL = "echo_promoted"


def _ready_versions(server, model: str) -> set[str]:  # type: ignore[no-untyped-def]
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        index = client.get_model_repository_index(as_json=True).get("models", [])
    finally:
        client.close()
    return {m["version"] for m in index if m["name"] == model and m.get("state") == "READY"}


def test_the_promoted_version_is_loaded_not_the_latest(triton_server) -> None:  # type: ignore[no-untyped-def]
    repository = echo.two_versions(triton_server.repository, MODEL)
    try:
        # No promotion yet: the config's own policy (the latest version).
        assert load_promoted_http(triton_server.http_url, repository.root, [MODEL]) == \
            {MODEL: None}
        assert _ready_versions(triton_server, MODEL) == {"2"}
        write_state(repository.root, MODEL, ServingState(served=1, history=[1]))
        asked = load_promoted_http(triton_server.http_url, repository.root,
                                   [MODEL, "not-exported"])
        assert asked == {MODEL: [1]}  # a model the repository lacks is skipped, said so
        assert _ready_versions(triton_server, MODEL) == {"1"}
    finally:
        triton_support.unload(triton_server, MODEL)


def test_a_refused_load_names_the_model(triton_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "repo"
    (broken / "broken_model").mkdir(parents=True)
    (broken / "broken_model" / "config.pbtxt").write_text("this is not a config")
    with pytest.raises(RuntimeError, match="refused to load broken_model"):
        load_promoted_http(triton_server.http_url, broken, ["broken_model"], timeout_s=30)
