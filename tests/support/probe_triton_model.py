"""Triton python-backend model of ``bench_probe`` (copied as ``model.py``; see probe_spec)."""

import json
import os
import sys
import time

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(__file__))  # probe_spec.py sits next to this file
import probe_spec as spec


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.delay_s = float(params.get("execute_delay_ms", "0")) / 1000.0

    def execute(self, requests):
        if self.delay_s:
            time.sleep(self.delay_s)  # one fixed cost per execution, whatever the batch
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, spec.VALUES.name).as_numpy()
            label = pb_utils.get_input_tensor_by_name(request, spec.LABEL.name).as_numpy()
            if label.reshape(-1)[0] == spec.FAIL_LABEL:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    "label 'fail' asks for a failure", pb_utils.TritonError.INVALID_ARG)))
                continue
            rows = values.shape[0]
            total = values.astype(np.float32).sum(axis=-1, keepdims=True)
            batch = np.full((rows, 1), len(requests), dtype=np.int32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(spec.TOTAL.name, total.astype(np.float32)),
                pb_utils.Tensor(spec.BATCH_SIZE.name, batch)]))
        return responses
