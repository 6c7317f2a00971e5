"""The orchestrator's Triton client: one gRPC connection, deadlines, typed errors.

All calls go through ``tritonclient.grpc.aio``. Tensor names come from the model specs
(``export.specs``); errors leave as :mod:`orchestrator.errors` types, so HTTP and
WebSocket handlers map them in one place.

Streaming (decoupled) models: each call opens its own bidirectional stream; the model
marks its last response with the spec's ``final`` BOOL output (the aio client cannot
ask Triton for an empty final response). Closing the async generator early cancels the
gRPC stream, which Triton turns into ``request.is_cancelled()`` inside the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as grpcclient
from opentelemetry.trace import Span, SpanKind, StatusCode
from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE
from tritonclient.utils import InferenceServerException

from export.specs.base import FINAL_OUTPUT, ModelSpec, Tensor
from orchestrator.errors import (
    InferenceError,
    InferenceInvalidInput,
    InferenceTimeout,
    InferenceUnavailable,
    ModelNotReady,
)
from orchestrator.telemetry.metrics import TRITON_ERRORS, TRITON_REQUEST_SECONDS
from orchestrator.telemetry.tracing import TRACER

log = logging.getLogger(__name__)


@contextlib.contextmanager
def observed(model: str, kind: str, version: str) -> Iterator[Span]:
    """One Triton call: its latency and error code in the metrics, and a client span.
    The span is not made current: a stream's generator may be resumed from several
    contexts, and nothing runs inside a call that would be its child."""
    started = time.perf_counter()
    span = TRACER.start_span(f"triton {kind} {model}", kind=SpanKind.CLIENT, attributes={
        "triton.model": model, "triton.model_version": version or "default"})
    try:
        yield span
    except InferenceError as exc:
        TRITON_ERRORS.labels(model, exc.code).inc()
        span.record_exception(exc)
        span.set_status(StatusCode.ERROR, exc.code)
        raise
    finally:
        TRITON_REQUEST_SECONDS.labels(model, kind).observe(time.perf_counter() - started)
        span.end()

@dataclass(frozen=True, slots=True)
class InferResult:
    """Outputs of one (possibly streamed) response, by tensor name."""

    outputs: Mapping[str, np.ndarray]
    model_version: str

    def __getitem__(self, tensor: Tensor | str) -> np.ndarray:
        return self.outputs[tensor.name if isinstance(tensor, Tensor) else tensor]

    def text(self, tensor: Tensor | str, index: int = 0) -> str:
        value = self[tensor].reshape(-1)[index]
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def scalar(self, tensor: Tensor | str) -> Any:
        return self[tensor].reshape(-1)[0].item()

    @property
    def is_final(self) -> bool:
        flag = self.outputs.get(FINAL_OUTPUT)  # every decoupled spec has it (ModelSpec)
        return bool(flag.reshape(-1)[0]) if flag is not None and flag.size else False


def map_exception(exc: BaseException, model: str) -> InferenceError:
    """Turn tritonclient / grpc failures into the service's error types."""
    if isinstance(exc, InferenceError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return InferenceTimeout(f"{model}: inference timed out")
    status = ""
    message = str(exc)
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        message = exc.message() or message
    elif isinstance(exc, grpc.aio.AioRpcError):  # a stream cut by the server's death
        status = str(exc.code())
        message = exc.details() or message
    lowered = message.lower()
    if "deadline" in lowered or "DEADLINE_EXCEEDED" in status:
        return InferenceTimeout(f"{model}: inference deadline exceeded")
    if "UNAVAILABLE" in status or "failed to connect" in lowered or "connection refused" in lowered:
        return InferenceUnavailable(f"{model}: inference server unavailable")
    if ("not ready" in lowered or "unknown model" in lowered or "is not found" in lowered
            or "NOT_FOUND" in status or "unavailable model" in lowered):
        return ModelNotReady(f"{model}: model is not loaded or not ready ({message})")
    if "INVALID_ARG" in status or "invalid" in lowered or "unexpected" in lowered:
        return InferenceInvalidInput(f"{model}: {message}")
    return InferenceError(f"{model}: {message}")


def _to_input(tensor: Tensor, value: Any, batched: bool) -> grpcclient.InferInput:
    if tensor.dtype == "BYTES":
        array = np.asarray(value, dtype=object)
        array = np.vectorize(lambda v: v.encode("utf-8") if isinstance(v, str) else v,
                             otypes=[object])(array) if array.size else array
    else:
        array = np.asarray(value, dtype=tensor.numpy_dtype)
    if batched:
        array = array[np.newaxis, ...]
    infer_input = grpcclient.InferInput(tensor.name, list(array.shape), tensor.dtype)
    infer_input.set_data_from_numpy(array)
    return infer_input


def channel_args() -> list[tuple[str, int]]:
    """tritonclient's defaults, plus a short reconnect backoff: gRPC's own grows to two
    minutes, so a restarted Triton would sit unused long after it is ready again."""
    keepalive = grpcclient.KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]


class TritonClient:
    """A long-lived client, created at start-up and closed at shutdown."""

    def __init__(self, url: str, timeout_s: float = 120.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client = grpcclient.InferenceServerClient(url=url, channel_args=channel_args())
        self.default_versions: dict[str, str] = {}
        """Version a request without an explicit one goes to, by model (the promoted one,
        kept by orchestrator.models); absent: Triton's choice (the highest loaded)."""

    async def close(self) -> None:
        await self._client.close()

    # --- health ---------------------------------------------------------------------

    async def server_ready(self, timeout_s: float = 2.0) -> bool:
        try:
            return bool(await self._client.is_server_ready(client_timeout=timeout_s))
        except Exception:
            return False

    async def model_ready(self, model: str, version: str = "", timeout_s: float = 2.0) -> bool:
        try:
            return bool(await self._client.is_model_ready(model, version,
                                                          client_timeout=timeout_s))
        except Exception:
            return False

    async def repository_index(self) -> list[dict[str, Any]]:
        """Triton's view of the repository: name, version, state, reason per model version."""
        try:
            index = await self._client.get_model_repository_index(as_json=True,
                                                                  client_timeout=10)
        except Exception as exc:
            raise map_exception(exc, "repository") from exc
        return list(index.get("models", []))

    @property
    def raw(self) -> grpcclient.InferenceServerClient:
        """The underlying tritonclient (model control, statistics)."""
        return self._client

    # --- inference ------------------------------------------------------------------

    def _inputs(self, spec: ModelSpec, values: Mapping[Tensor, Any]) -> list[Any]:
        batched = spec.max_batch_size > 0
        unknown = [t.name for t in values if t not in spec.inputs]
        if unknown:
            raise ValueError(f"{spec.name} has no inputs {unknown}")
        return [_to_input(t, v, batched) for t, v in values.items() if v is not None]

    @staticmethod
    def _outputs(spec: ModelSpec, result: Any, batched: bool) -> InferResult:
        outputs = {}
        for tensor in spec.outputs:
            array = result.as_numpy(tensor.name)
            if array is None:
                continue
            outputs[tensor.name] = array[0] if batched and array.ndim > 0 else array
        response = result.get_response()
        return InferResult(outputs, str(getattr(response, "model_version", "")))

    async def infer(self, spec: ModelSpec, values: Mapping[Tensor, Any], *,
                    version: str = "", timeout_s: float | None = None,
                    request_id: str = "") -> InferResult:
        """One request, one response (non-decoupled models)."""
        inputs = self._inputs(spec, values)
        outputs = [grpcclient.InferRequestedOutput(t.name) for t in spec.outputs]
        version = version or self.default_versions.get(spec.name, "")
        timeout = timeout_s or self.timeout_s
        with observed(spec.name, "infer", version):
            try:
                result = await self._client.infer(spec.name, inputs, model_version=version,
                                                  outputs=outputs, request_id=request_id,
                                                  client_timeout=timeout)
            except Exception as exc:
                raise map_exception(exc, spec.name) from exc
        return self._outputs(spec, result, spec.max_batch_size > 0)

    async def infer_batch(self, spec: ModelSpec, values: Mapping[Tensor, Any], *,
                          version: str = "", timeout_s: float | None = None,
                          request_id: str = "") -> InferResult:
        """One request holding several rows: each value already has the batch axis first
        (at most ``spec.max_batch_size`` rows); outputs keep it."""
        if spec.max_batch_size < 1:
            raise ValueError(f"{spec.name} has no batch dimension")
        unknown = [t.name for t in values if t not in spec.inputs]
        if unknown:
            raise ValueError(f"{spec.name} has no inputs {unknown}")
        inputs = [_to_input(t, v, batched=False) for t, v in values.items() if v is not None]
        rows = {int(i.shape()[0]) for i in inputs}
        if len(rows) != 1 or not 1 <= rows.pop() <= spec.max_batch_size:
            raise ValueError(f"{spec.name}: every input needs the same row count, between 1 "
                             f"and {spec.max_batch_size}")
        outputs = [grpcclient.InferRequestedOutput(t.name) for t in spec.outputs]
        version = version or self.default_versions.get(spec.name, "")
        with observed(spec.name, "batch", version) as span:
            span.set_attribute("triton.rows", inputs[0].shape()[0])
            try:
                result = await self._client.infer(spec.name, inputs, model_version=version,
                                                  outputs=outputs, request_id=request_id,
                                                  client_timeout=timeout_s or self.timeout_s)
            except Exception as exc:
                raise map_exception(exc, spec.name) from exc
        return self._outputs(spec, result, batched=False)

    async def stream(self, spec: ModelSpec, values: Mapping[Tensor, Any], *,
                     version: str = "", timeout_s: float | None = None,
                     request_id: str = "") -> AsyncIterator[InferResult]:
        """Responses of a decoupled model as they arrive; stops after the final one.

        Leaving the ``async for`` early (break, exception, task cancellation) cancels the
        stream on the server.
        """
        inputs = self._inputs(spec, values)
        outputs = [grpcclient.InferRequestedOutput(t.name) for t in spec.outputs]
        version = version or self.default_versions.get(spec.name, "")
        request = {"model_name": spec.name, "inputs": inputs, "outputs": outputs,
                   "model_version": version, "request_id": request_id}

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield request

        responses = self._client.stream_infer(requests(),
                                              stream_timeout=timeout_s or self.timeout_s)
        finished = False
        with observed(spec.name, "stream", version) as span:
            try:
                async for result, error in responses:
                    if error is not None:
                        raise map_exception(error, spec.name)
                    item = self._outputs(spec, result, spec.max_batch_size > 0)
                    yield item
                    if item.is_final:
                        finished = True
                        return
            except InferenceError:
                raise
            except Exception as exc:
                raise map_exception(exc, spec.name) from exc
            finally:
                if not finished:
                    span.set_attribute("triton.cancelled", True)
                    with contextlib.suppress(Exception):
                        responses.cancel()
