"""Model versions without Triton: model refs, serving state, on-disk validation, export."""

from __future__ import annotations

import pytest

from export.errors import VersionExists
from export.repository import ModelRepository
from export.specs import get_spec
from orchestrator.errors import InvalidRequest
from orchestrator.models.refs import parse_model_ref
from orchestrator.models.state import ServingState, read_state, startup_versions, write_state
from orchestrator.models.validation import static_checks
from tests.support import echo

MODEL = "echo_unit"


@pytest.mark.parametrize(("ref", "parsed"), [("stt", ("stt", "")), ("stt:2", ("stt", "2")),
                                             (" llm:12 ", ("llm", "12")),
                                             ("whisper-1", ("whisper-1", ""))])
def test_parse_model_ref(ref, parsed):
    assert parse_model_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["stt:", "stt:latest", "stt:0", "stt:02", ":2", "", "a:b:c",
                                 "../stt"])
def test_parse_model_ref_rejects(ref):
    with pytest.raises(InvalidRequest, match="model: expected a model name"):
        parse_model_ref(ref)


@pytest.fixture
def repository(tmp_path) -> ModelRepository:
    repo = ModelRepository(tmp_path / "repo")
    echo.echo_spec(MODEL)
    for seed in (1.0, 2.0):
        echo.export_echo(repo, MODEL, seed)
    return repo


def test_serving_state_round_trip_and_startup_plan(repository):
    root = repository.root
    assert read_state(root, MODEL) is None
    assert startup_versions(root, MODEL) is None  # no state: config.pbtxt (latest)
    state = ServingState(served=1, extra=[2], history=[2, 1])
    state.record("rollback", 1, 2)
    write_state(root, MODEL, state)
    again = read_state(root, MODEL)
    assert again == state and again.previous == 2 and again.loaded == [1, 2]
    assert startup_versions(root, MODEL) == [1, 2]
    echo.remove_version(repository, MODEL, 2)  # a version deleted by hand is skipped
    assert startup_versions(root, MODEL) == [1]
    assert not list(root.joinpath(MODEL).glob(".serving.json*"))  # atomic write left nothing


def test_static_checks_pass_on_a_clean_export(repository):
    checks = static_checks(repository, get_spec(MODEL), 1)
    assert [(c.name, c.passed) for c in checks] == [
        ("config", True), ("manifest", True), ("files", True), ("onnx", True),
        ("parity", True)]


@pytest.mark.parametrize("how", echo.BREAKAGES)
def test_static_checks_name_what_is_broken(repository, how):
    expected = echo.break_version(repository, MODEL, 2, how)
    failed = [c for c in static_checks(repository, get_spec(MODEL), 2) if not c.passed]
    assert len(failed) >= 1 and any(expected in c.detail for c in failed)


def test_static_checks_catch_a_changed_file_and_a_stale_config(repository):
    (repository.model_dir(MODEL) / "2" / "model.py").write_text("# edited by hand\n")
    (repository.model_dir(MODEL) / "config.pbtxt").write_text("name: \"echo_unit\"\n")
    failed = {c.name: c.detail for c in static_checks(repository, get_spec(MODEL), 2)
              if not c.passed}
    assert failed["files"] == "model.py has changed since export (sha256 differs)"
    assert "differs from the echo_unit spec" in failed["config"]


def test_export_never_overwrites_a_version(repository):
    manifest = repository.model_dir(MODEL) / "1" / "manifest.json"
    before = manifest.read_bytes()
    with pytest.raises(VersionExists, match="export never overwrites a version"):
        echo.export_echo(repository, MODEL, 9.0, version=1)
    assert manifest.read_bytes() == before
    assert repository.versions(MODEL) == [1, 2]
    assert echo.export_echo(repository, MODEL, 9.0) == 3  # the next free number instead
