"""Decoupled (streaming) Triton python models: one worker thread per request.

``execute`` must return quickly, so each request's stream is produced on its own thread,
at most ``max_streams`` at a time (the others wait, and give up when their client
cancels). Every stream ends with exactly one ``COMPLETE_FINAL`` flag: after the work,
on cancellation, on an error (with the reason) and when the model unloads.

Streamed responses reach the client without their error code, so a client error's
message starts with "invalid": that is what the orchestrator maps to a 400
(``orchestrator.inference.client.map_exception``).

Light on purpose (no numpy, no torch): imported inside Triton's python backend stub,
which passes its ``triton_python_backend_utils`` module in.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

Work = Callable[[Any, str], None]
"""``work(sender, request_id)``: sends the responses, the last one with COMPLETE_FINAL."""


class StreamWorkers:
    def __init__(self, pb_utils: Any, name: str, max_streams: int) -> None:
        self.pb = pb_utils
        self.name = name
        self.slots = threading.Semaphore(max(1, max_streams))
        self.stopping = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def cancelled(self, sender: Any) -> bool:
        """The client went away, or the model is unloading: stop between steps."""
        return bool(sender.is_cancelled()) or self.stopping.is_set()

    def end(self, sender: Any) -> None:
        """Close a stream without another response (after a cancellation)."""
        sender.send(flags=self.pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def reject(self, sender: Any, exc: BaseException) -> None:
        """End the stream with a client error (INVALID_ARG), before any work started."""
        message = str(exc)
        if not message.lower().startswith("invalid"):
            message = f"invalid request: {message}"
        self._fail(sender, message, self.pb.TritonError.INVALID_ARG)

    def dispatch(self, requests: list, parse: Callable[[Any], Any],
                 work: Callable[[Any, Any, str], None]) -> None:
        """The body of a decoupled ``execute``: ``parse(request)`` on the caller's thread
        (a ValueError is the client's error, rejected at once), then
        ``work(parsed, sender, request_id)`` on a worker."""
        for request in requests:
            sender = request.get_response_sender()
            try:
                parsed = parse(request)
            except ValueError as exc:  # UnicodeDecodeError included
                self.reject(sender, exc)
                continue
            self.submit(sender, request.request_id(),
                        lambda sender, rid, parsed=parsed: work(parsed, sender, rid))

    def scalar(self, request: Any, tensor: Any, default: Any) -> Any:
        """The one value of an optional ``[1]`` input (``default`` when absent; str for
        BYTES); ValueError when it holds another number of values."""
        found = self.pb.get_input_tensor_by_name(request, tensor.name)
        if found is None:
            return default
        array = found.as_numpy().reshape(-1)
        if array.size != 1:
            raise ValueError(f"invalid {tensor.name}: expected one value, got {array.size}")
        item = array[0]
        return item.decode("utf-8") if isinstance(item, bytes) else item.item()

    def submit(self, sender: Any, request_id: str, work: Work) -> None:
        thread = threading.Thread(target=self._run, args=(sender, request_id, work),
                                  daemon=True, name=f"{self.name}-stream")
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def finalize(self, timeout_s: float = 5.0) -> None:
        """On unload: ask every stream to stop and wait for them briefly."""
        self.stopping.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=timeout_s)

    def _run(self, sender: Any, request_id: str, work: Work) -> None:
        try:
            while not self.slots.acquire(timeout=0.05):
                if self.cancelled(sender):
                    self.end(sender)
                    return
            try:
                work(sender, request_id)
            finally:
                self.slots.release()
        except Exception as exc:  # a failed stream must still end, with a reason
            self.pb.Logger.log_error(f"{self.name}: request {request_id!r} failed: {exc!r}")
            self._fail(sender, f"{self.name} failed: {exc}", self.pb.TritonError.INTERNAL)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _fail(self, sender: Any, message: str, code: Any) -> None:
        error = self.pb.TritonError(message, code)
        with contextlib.suppress(Exception):
            sender.send(self.pb.InferenceResponse(error=error),
                        flags=self.pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
