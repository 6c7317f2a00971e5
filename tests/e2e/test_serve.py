"""``voicechat serve`` as a user runs it: a real process, real sockets, HTTP and HTTPS."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.mariadb import free_port

NO_MODELS = {"STT_ENABLED": "false", "LLM_ENABLED": "false", "TTS_ENABLED": "false",
             "MEMORY_ENABLED": "false"}


def serve(tmp_path: Path, log_file: Path | None = None,
          **env: str) -> tuple[subprocess.Popen[bytes], int]:
    """``log_file``: where the output goes, for long runs (a pipe nobody reads fills up
    and then blocks the server's logging)."""
    port = free_port()
    full_env = {**os.environ, **NO_MODELS, "DATA_DIR": str(tmp_path / "data"),
                "PORT": str(port), "LOG_FORMAT": "json", **env}
    for name in ("DATABASE_URL", "DB_HOST", "TRITON_URL"):
        full_env.pop(name, None) if name not in env else None
    out = open(log_file, "wb") if log_file else subprocess.PIPE  # noqa: SIM115 - the child's
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve"], env=full_env,
                            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    if log_file:
        out.close()
    return proc, port


def wait_for(url: str, context: ssl.SSLContext | None = None, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes], log_file: Path | None = None) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    if log_file:
        return log_file.read_text(errors="replace")
    return out.decode(errors="replace")


def test_serve_on_embedded_sqlite_answers_health(tmp_path: Path) -> None:
    proc, port = serve(tmp_path)
    try:
        health = wait_for(f"http://127.0.0.1:{port}/api/health")
        assert health["status"] == "ok"
        assert health["checks"]["sql"]["detail"] == "sqlite"
    finally:
        output = stop(proc)
    assert (tmp_path / "data" / "voicechat.db").is_file()
    # Structured logs: one JSON object per line, requests carry their id.
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("path") == "/api/health"]
    assert access and all(len(entry["request_id"]) == 32 for entry in access)


def test_probes_metrics_and_a_clean_drain_on_sigterm(tmp_path: Path) -> None:
    """The probes and /metrics answer without a key; SIGTERM (the signal itself) drains
    and exits 0."""
    proc, port = serve(tmp_path, AUTH_MODE="required", ADMIN_API_KEY="k" * 32)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(f"{base}/readyz") == {"status": "ok"}
        assert wait_for(f"{base}/livez") == {"status": "ok"}
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as page:
            text = page.read().decode()
        assert 'voicechat_http_requests_total{app_name="voicechat",method="GET",' \
               'path="/readyz",status_code="200"}' in text
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/sessions/x", timeout=5)
        assert refused.value.code == 401
    finally:
        output = stop(proc)
    assert proc.returncode == 0
    assert "draining: 0 realtime sockets" in output


def test_serves_https_when_certificate_and_key_exist(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    proc, port = serve(tmp_path, SSL_CRT_FILE=str(cert), SSL_KEY_FILE=str(key))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        assert wait_for(f"https://127.0.0.1:{port}/api/ping", context)["message"] == "pong"
        with pytest.raises(OSError):  # plain HTTP is not served on the TLS port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ping", timeout=2).read()
        # The container health check follows the certificates to HTTPS.
        env = {**os.environ, "PORT": str(port), "SSL_CRT_FILE": str(cert),
               "SSL_KEY_FILE": str(key), "DATA_DIR": str(tmp_path / "data")}
        probe = subprocess.run([sys.executable, "-m", "orchestrator", "probe", "ready"],
                               env=env, capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0, probe.stderr
        assert json.loads(probe.stdout) == {"status": "ok"}
    finally:
        stop(proc)
    dead = subprocess.run([sys.executable, "-m", "orchestrator", "probe", "live"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert dead.returncode == 1 and f"https://127.0.0.1:{port}/livez" in dead.stderr


def test_bad_setting_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    proc, _ = serve(tmp_path, DB_PORT="not-a-port")
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 2
    assert "DB_PORT" in output and "not-a-port" in output


def test_open_access_off_loopback_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    proc, _ = serve(tmp_path, AUTH_MODE="off", HOST="0.0.0.0")
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 2
    assert output.strip().count("\n") == 0, output  # one line
    assert "AUTH_MODE" in output and "loopback" in output and "0.0.0.0" in output


def test_keys_are_required_by_default_and_open_mode_says_so(tmp_path: Path) -> None:
    import urllib.error

    proc, port = serve(tmp_path, ADMIN_API_KEY="e2e-admin-key")
    try:
        wait_for(f"http://127.0.0.1:{port}/api/ping")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/users/kim/stats", timeout=5)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/admin/keys", headers={
            "Authorization": "Bearer e2e-admin-key"})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert json.loads(r.read()) == {"data": []}
    finally:
        output = stop(proc)
    assert "e2e-admin-key" not in output and "AUTH_MODE=off" not in output
    proc, port = serve(tmp_path, AUTH_MODE="off")
    try:
        wait_for(f"http://127.0.0.1:{port}/api/ping")
    finally:
        output = stop(proc)
    assert "AUTH_MODE=off: open access" in output


def _tritons_serving(repository: Path) -> list[int]:
    """PIDs of tritonserver processes whose model repository is ``repository``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"tritonserver") and \
                f"--model-repository={repository}".encode() in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.mark.triton
@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_stopping_serve_stops_its_embedded_triton(tmp_path: Path, how: str) -> None:
    """SIGTERM stops Triton on the way out; SIGKILL leaves no orphan either (the child
    dies with its parent), so a restart finds its ports and models free."""
    from tests.support.tts import export_joe

    repository = tmp_path / "repository"
    export_joe(repository)
    ports = {"TRITON_GRPC_PORT": str(free_port()), "TRITON_HTTP_PORT": str(free_port()),
             "TRITON_METRICS_PORT": str(free_port())}
    proc, port = serve(tmp_path, TTS_ENABLED="true", MODEL_REPOSITORY=str(repository), **ports)
    try:
        health = wait_for(f"http://127.0.0.1:{port}/api/health", timeout_s=180)
        assert health["checks"]["model:tts"]["status"] == "up"
        assert len(_tritons_serving(repository)) == 1
    finally:
        if how == "terminate":
            stop(proc)
        else:
            proc.kill()
            proc.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while _tritons_serving(repository) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tritons_serving(repository) == []
    if how == "terminate":
        assert proc.returncode == 0  # a requested stop, cleaned up, is a clean exit


# --- start-up failures: one line naming the setting, before any model loads ----------------

def _bad_configurations(tmp_path: Path) -> dict[str, tuple[dict[str, str], str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    (tmp_path / "milvus-dir").mkdir()
    (tmp_path / "milvus-dir" / "notes.txt").write_text("not a Milvus Lite store")
    return {
        "data dir is a file": ({"DATA_DIR": str(a_file)}, "DATA_DIR"),
        "no model repository": ({"TTS_ENABLED": "true", "MODEL_REPOSITORY": str(
            tmp_path / "missing")}, "MODEL_REPOSITORY"),
        "negative timeout": ({"TRITON_TIMEOUT_S": "-1"}, "TRITON_TIMEOUT_S"),
        "nan timeout": ({"TRITON_TIMEOUT_S": "nan"}, "TRITON_TIMEOUT_S"),
        "database unreachable": ({"DB_HOST": "127.0.0.1", "DB_PORT": str(free_port())},
                                 "DB_HOST"),
        "milvus path is a directory": ({"MEMORY_ENABLED": "true", "TRITON_URL": "127.0.0.1:1",
                                        "MILVUS_URI": str(tmp_path / "milvus-dir")},
                                       "MILVUS_URI"),
    }


@pytest.mark.parametrize("case", ["data dir is a file", "no model repository",
                                  "negative timeout", "nan timeout", "database unreachable",
                                  "milvus path is a directory"])
def test_bad_configuration_is_one_line_and_a_nonzero_exit(tmp_path: Path, case: str) -> None:
    env, variable = _bad_configurations(tmp_path)[case]
    proc, _ = serve(tmp_path, **env)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 2, output
    assert output.strip().count("\n") == 0, output  # one line, no traceback
    assert variable in output and output.startswith("voicechat: "), output


def test_an_existing_milvus_lite_store_passes_the_start_up_check(tmp_path: Path) -> None:
    """Milvus Lite 2.5 stores MILVUS_URI as a directory: a second start must accept it."""
    import dataclasses

    from orchestrator.preflight import check_milvus
    from storage.memory import MemoryStore
    from tests.support.settings import base_settings

    path = tmp_path / "milvus.db"
    store = MemoryStore(str(path), "turns", 8)  # the real Milvus Lite writes its format
    store.open()
    store.close()
    assert path.exists()
    check_milvus(dataclasses.replace(base_settings(), memory_enabled=True,
                                     milvus_uri=str(path)))


def test_a_port_in_use_is_found_before_anything_starts(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        proc, _ = serve(tmp_path, PORT=str(taken))
        output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 2
    assert output.strip() == (f"voicechat: PORT={taken}: cannot listen on 127.0.0.1:{taken} "
                              "(already in use)")


def test_a_milvus_lite_path_in_milvus_uri_does_not_break_the_pymilvus_import(
        tmp_path: Path) -> None:
    env = {**os.environ, "MILVUS_URI": str(tmp_path / "milvus.db")}
    plain = subprocess.run([sys.executable, "-c", "import pymilvus"], env=env,
                           capture_output=True, text=True)
    assert plain.returncode != 0 and "Illegal uri" in plain.stderr  # what we work around
    ours = subprocess.run([sys.executable, "-c",
                           "from storage.milvus_lite import pymilvus_module; import os; "
                           "pymilvus_module(); print(os.environ['MILVUS_URI'])"],
                          env=env, capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.strip() == str(tmp_path / "milvus.db")  # the variable is kept


# --- the embedded Triton is supervised --------------------------------------------------

def _group(pgid: int) -> list[int]:
    from orchestrator.inference.server import group_members

    return group_members(pgid)


def _triton_detail_while_down(base: str) -> str:
    """Health's triton detail once the supervisor has seen the death (it looks twice a
    second); health answers 503 all the while."""
    deadline = time.monotonic() + 10
    while True:
        with pytest.raises(urllib.error.HTTPError) as health:
            urllib.request.urlopen(f"{base}/api/health", timeout=10)
        assert health.value.code == 503
        detail = json.loads(health.value.read())["checks"]["triton"]["detail"]
        if "restarting" in detail or time.monotonic() > deadline:
            return detail
        time.sleep(0.1)


@pytest.mark.triton
def test_a_killed_triton_is_restarted_and_its_stubs_reaped(tmp_path: Path) -> None:
    """kill -9 of tritonserver mid-request: requests fail fast with 503 while it is down,
    health says it is restarting, and the service is healthy again with no operator; the
    dead server's python stubs do not linger."""
    from tests.support.tts import export_joe

    repository = tmp_path / "repository"
    export_joe(repository)
    ports = {"TRITON_GRPC_PORT": str(free_port()), "TRITON_HTTP_PORT": str(free_port()),
             "TRITON_METRICS_PORT": str(free_port())}
    log_file = tmp_path / "serve.log"
    proc, port = serve(tmp_path, log_file, TTS_ENABLED="true",
                       MODEL_REPOSITORY=str(repository), AUTH_MODE="off", **ports)
    base = f"http://127.0.0.1:{port}"
    speech = json.dumps({"input": "Hello there. " * 200, "voice": "alloy",
                         "response_format": "pcm"}).encode()

    def say() -> urllib.request.Request:
        return urllib.request.Request(f"{base}/v1/audio/speech", data=speech,
                                      headers={"content-type": "application/json"})

    try:
        wait_for(f"{base}/api/health", timeout_s=180)
        (first,) = _tritons_serving(repository)
        stubs = [pid for pid in _group(first) if pid != first]
        assert stubs, "the tts model runs in a python backend stub"
        with urllib.request.urlopen(say(), timeout=60) as streaming:
            assert streaming.read(4096)  # mid-request
            os.kill(first, 9)
            killed_at = time.monotonic()
            with contextlib.suppress(OSError, http.client.HTTPException):
                streaming.read()  # the stream is cut
        # While it is down: 503s at once, and health says why.
        with pytest.raises(urllib.error.HTTPError) as down:
            urllib.request.urlopen(say(), timeout=10)
        assert down.value.code == 503
        assert json.loads(down.value.read())["error"]["code"] in {"inference_unavailable",
                                                                  "model_not_ready"}
        assert "restarting" in _triton_detail_while_down(base)
        # Back without an operator.
        recovered = wait_for(f"{base}/api/health", timeout_s=180)
        recovery_s = time.monotonic() - killed_at
        assert recovered["checks"]["model:tts"]["status"] == "up"
        assert "restarted 1 times" in recovered["checks"]["triton"]["detail"]
        with urllib.request.urlopen(say(), timeout=60) as again:
            assert len(again.read()) > 48000
        (second,) = _tritons_serving(repository)
        assert second != first
        assert all(not Path(f"/proc/{pid}").exists() for pid in stubs)  # reaped, no zombie
        print(f"\ntriton recovery after kill -9: {recovery_s:.1f} s")
    finally:
        output = stop(proc, log_file)
    assert "tritonserver exited with -9" in output
    assert _tritons_serving(repository) == []
    assert _group(second) == []  # the restarted server's stubs went with it
