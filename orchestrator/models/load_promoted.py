"""Load each model's promoted versions into a running Triton (explicit model control) over
its HTTP API, so an external Triton serves what ``serving.json`` says, not "latest".

The Triton containers run it right after ``tritonserver`` starts
(``docker/triton-entrypoint.sh``; compose and Kubernetes). It needs only the standard
library and the project's own modules, which the Triton image has (it has no
tritonclient). The embedded Triton does the same over gRPC (``startup.load_promoted``).

    python -m orchestrator.models.load_promoted --url http://127.0.0.1:8000 \\
        --repository /models [--profile ko] stt llm tts embedder
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from export.profiles import repository_profile
from export.specs import get_spec
from orchestrator.models.startup import promoted_versions

log = logging.getLogger(__name__)


def _post(url: str, body: dict, timeout_s: float) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s):
        pass


def wait_live(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v2/health/live", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Triton at {url} is not live after {timeout_s:g} s") \
                    from None
            time.sleep(0.5)


def load_promoted_http(url: str, repository: Path, models: list[str],
                       timeout_s: float = 600.0, profile: str = ""
                       ) -> dict[str, list[int] | None]:
    """Load each model present in ``repository``: its promoted versions under the
    repository's profile, or (no ``serving.json`` yet) its config's own policy. Returns
    what was asked of each model (None: the config's policy)."""
    url = url.rstrip("/")
    present = [m for m in models if (repository / m / "config.pbtxt").is_file()]
    for missing in sorted(set(models) - set(present)):
        log.warning("%s is not in %s: not loaded", missing, repository)
    promoted = promoted_versions(repository, present, profile)
    profile = repository_profile(repository)
    asked: dict[str, list[int] | None] = {}
    for model in present:
        versions = promoted.get(model)
        body = {} if versions is None else {"parameters": {"config": json.dumps(
            profile.config_json(get_spec(model), versions=versions))}}
        log.info("loading %s %s", model, f"versions {versions} (promoted)" if versions
                 else "(no promotion yet: its config's version policy)")
        try:
            _post(f"{url}/v2/repository/models/{model}/load", body, timeout_s)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(f"Triton refused to load {model}: {exc.code} {detail}") from None
        asked[model] = versions
    return asked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Triton's HTTP URL")
    parser.add_argument("--repository", type=Path, default=Path("/models"))
    parser.add_argument("--wait", type=float, default=300.0,
                        help="seconds to wait for Triton to come up")
    parser.add_argument("--profile", default=os.environ.get("SERVING_PROFILE", ""),
                        help="serving profile whose promoted versions load (default: "
                             "$SERVING_PROFILE, else the default profile's serving.json)")
    parser.add_argument("models", nargs="+")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="load_promoted: %(message)s")
    try:
        wait_live(args.url, args.wait)
        load_promoted_http(args.url, args.repository, args.models, profile=args.profile)
    except (TimeoutError, RuntimeError, OSError, ValueError) as exc:
        print(f"load_promoted: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
