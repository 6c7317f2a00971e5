"""``bench_probe``: a tiny test-only Triton model for the benchmark suite.

It sums ``values`` and reports the batch size of the ``execute`` call that served the
request, after sleeping ``execute_delay_ms`` once per execution: a fixed cost per batch,
like a GPU kernel whose time barely grows with the batch, so dynamic batching has a
gain to measure. A request whose ``label`` is ``fail`` gets an INVALID_ARG error (so the
statistics have failures to count).

This module is copied next to the model's ``model.py`` in each version (the Triton stub
imports only the installed packages, not ``tests``): names are written once, here.
"""

from __future__ import annotations

from export.specs.base import DynamicBatching, ModelSpec, Parameter, Tensor

VALUES = Tensor("values", "FP32", (-1,), doc="numbers to add up (any length)")
LABEL = Tensor("label", "BYTES", (1,), doc="free text; 'fail' makes the request fail")
TOTAL = Tensor("total", "FP32", (1,), doc="sum of values")
BATCH_SIZE = Tensor("batch_size", "INT32", (1,), doc="requests in the execute call")

FAIL_LABEL = b"fail"

SPEC = ModelSpec(
    name="bench_probe",
    description="Test-only probe: sum of values, fixed delay per execution",
    inputs=(VALUES, LABEL),
    outputs=(TOTAL, BATCH_SIZE),
    max_batch_size=16,
    dynamic_batching=DynamicBatching(max_queue_delay_us=2000),
    parameters=(Parameter("execute_delay_ms", 4),),
)
