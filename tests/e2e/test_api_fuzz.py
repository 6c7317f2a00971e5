"""Schemathesis against ``voicechat serve`` as a user runs it: keys required, every model
served (tiny random Whisper and Llama, the real Piper voice and MiniLM, on the embedded
Triton), every check on. Bounded: a fixed seed and a few examples per operation, so the
run takes minutes and finds the same things every time.

Model administration that changes what is served (load, unload, promote, rollback, gc) is
left out: its own tests cover it, and a fuzzer unloading the models would only test 503s.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_serve import serve, stop, wait_for
from tests.support.mariadb import free_port

pytestmark = pytest.mark.triton

KEY = "fuzz-admin-key-0123456789abcdef"
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 25
SEED = 20261201


@pytest.fixture(scope="module")
def fuzz_repository(tmp_path_factory, tiny_llm_dir, minilm_dir) -> Path:  # type: ignore[no-untyped-def]
    from tests.support.llm_fixtures import export_llm
    from tests.support.memory_fixtures import export_embedder
    from tests.support.stt import export_version, tiny_whisper_checkpoint
    from tests.support.tts import export_joe

    base = tmp_path_factory.mktemp("fuzz")
    repository = base / "repository"
    export_version(str(tiny_whisper_checkpoint(base / "tiny.pt")), repository)
    export_llm(tiny_llm_dir, repository, 1, precision="fp32")
    export_joe(repository)
    export_embedder(minilm_dir, repository, 1)
    return repository


@pytest.mark.timeout(1200)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
        tmp_path: Path, fuzz_repository: Path) -> None:
    ports = {"TRITON_GRPC_PORT": str(free_port()), "TRITON_HTTP_PORT": str(free_port()),
             "TRITON_METRICS_PORT": str(free_port())}
    log_file = tmp_path / "serve.log"
    proc, port = serve(tmp_path, log_file, STT_ENABLED="true", LLM_ENABLED="true",
                       TTS_ENABLED="true", MEMORY_ENABLED="true",
                       MODEL_REPOSITORY=str(fuzz_repository),
                       MILVUS_URI=str(tmp_path / "milvus.db"), ADMIN_API_KEY=KEY,
                       RATE_LIMIT_REQUESTS_PER_MINUTE="0",
                       RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE="0", **ports)
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_for(f"{base}/api/health", timeout_s=300)
        assert health["status"] == "ok", health
        cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert cli, "schemathesis is a dev dependency (make setup)"
        run = subprocess.run(
            [cli, "--config-file", str(CONFIG), "run", f"{base}/schema/openapi.json",
             "--checks", "all",
             "--header", f"Authorization: Bearer {KEY}",
             "--exclude-path-regex", "^/admin/models/.+",
             # DELETE /admin/keys/{id} revokes: the key stays readable, on record
             "--exclude-checks", "use_after_free",
             "--max-examples", str(EXAMPLES), "--seed", str(SEED),
             "--request-timeout", "60", "--no-color",
             "--workers", "1"],
            capture_output=True, text=True, timeout=900)
    finally:
        log = stop(proc, log_file)
    report = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(report)
    print(report[-3000:])
    assert run.returncode == 0, report[-12000:]
    assert "Traceback" not in log, log[-5000:]
