"""Triton model for the version tests (copied into each version as model.py).

Answers every request with its version's manifest id and the output of the version's
tiny ONNX graph (``y = x + seed``), so a test can tell which version served it. It
runs in Triton's python stub, where ``tests`` is not importable: tensor names come from
the config (order of the spec in tests/support/echo.py: manifest_id, value).
"""

import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

from export.repository import Manifest


class TritonPythonModel:
    def initialize(self, args):  # type: ignore[no-untyped-def]
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.id_name, self.value_name = (o["name"] for o in config["output"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.delay_s = float(params.get("delay_ms", "0")) / 1000
        version_dir = Path(args["model_repository"]) / args["model_version"]
        data = json.loads((version_dir / "manifest.json").read_text(encoding="utf-8"))
        self.manifest_id = Manifest.from_json(data).id
        self.session = ort.InferenceSession(str(version_dir / "offset.onnx"),
                                            providers=["CPUExecutionProvider"])

    def execute(self, requests):  # type: ignore[no-untyped-def]
        responses = []
        for request in requests:
            time.sleep(self.delay_s)  # keeps requests in flight while versions swap
            pb_utils.get_input_tensor_by_name(request, self.input_name)
            (value,) = self.session.run(None, {"x": np.ones((1,), np.float32)})
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(self.id_name, np.array([self.manifest_id.encode()],
                                                       dtype=np.object_)),
                pb_utils.Tensor(self.value_name, value.astype(np.float32))]))
        return responses
