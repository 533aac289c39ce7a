"""TorchServe handler: a thin adapter over mrseq.serving and mrseq.predict.Predictor.

Everything model- and input-specific lives in the mrseq package (shipped inside the .mar), so
swapping TorchServe for another server means rewriting only this file. Works with dynamic
batching: mrseq.serving.batch answers each request of a batch, one forward pass for all.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class MrseqHandler:
    def __init__(self):
        self.predictor = None
        self.budget_s = None
        self.memory_mb = None
        self.initialized = False

    def initialize(self, context) -> None:
        model_dir = context.system_properties.get("model_dir")
        if model_dir not in sys.path:
            sys.path.insert(0, model_dir)  # the mrseq package travels inside the .mar
        import torch

        from mrseq.predict import Predictor
        from mrseq.serving.decode import cap_memory, sweep_stale_requests

        for path in sweep_stale_requests():  # a worker killed mid-request left these behind
            log.warning("removed a stale request folder %s", os.path.basename(path))

        torch.set_num_threads(int(os.environ.get("MRSEQ_TORCH_THREADS", "1")))
        self.predictor = Predictor.from_dir(model_dir)
        # A request's time budget: 3/4 of the model's response timeout (serve.response_timeout_s
        # in params.yaml, baked into the .mar): it answers 503 before TorchServe kills the worker.
        config = getattr(context, "model_yaml_config", None) or {}
        timeout = config.get("responseTimeout")
        self.budget_s = 0.75 * float(timeout) if timeout else None
        # The worker's heap cap (serve.worker_memory_mb, the whole process, model included).
        self.memory_mb = (config.get("handler") or {}).get("memory_mb")
        if cap_memory(self.memory_mb):
            log.info("worker heap capped at %s MB", self.memory_mb)
        threads = int(os.environ.get("MRSEQ_PREPROCESS_THREADS", os.cpu_count() or 1))
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="mrseq-prep")
        self.initialized = True
        log.info("mrseq model %s ready", self.predictor.version)

    def handle(self, data: list[dict], context) -> list:
        from mrseq.serving.batch import Request, answer_batch

        start = time.perf_counter()
        requests = [Request(_body(r), _spacing(r, context, i)) for i, r in enumerate(data)]
        answers = answer_batch(self.predictor, requests, self.pool, self.budget_s, self.memory_mb)
        for idx, answer in enumerate(answers):
            if answer.status != 200:
                context.set_response_status(answer.status, answer.payload["error"], idx)
            else:
                _count(context, answer.payload)
        _spent(context, (time.perf_counter() - start) * 1000)
        return [answer.payload for answer in answers]


def _body(request: dict) -> bytes | None:
    """Raw body, or the first file-like field of a multipart form."""
    for key in ("data", "body", "file"):
        if request.get(key) is not None:
            value = request[key]
            return bytes(value) if isinstance(value, bytes | bytearray) else None
    for key, value in request.items():
        if key != "spacing" and isinstance(value, bytes | bytearray):
            return bytes(value)
    return None


def _spacing(request: dict, context, idx: int) -> str | None:
    value = request.get("spacing")
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    return value or context.get_request_header(idx, "X-Spacing")


def _count(context, answer: list[dict]) -> None:
    """Custom Prometheus counters: predictions per class, header disagreements per hint."""
    from ts.metrics.dimension import Dimension

    metrics = context.metrics
    if metrics is None:
        return
    for r in answer:
        if r.get("label") is None:
            continue
        metrics.add_counter("MrseqPredictions", 1, dimensions=[Dimension("Label", r["label"])])
        if r.get("agrees_with_header") is False:
            dims = [Dimension("HeaderHint", r["header_hint"]), Dimension("Label", r["label"])]
            metrics.add_counter("MrseqHeaderDisagreements", 1, dimensions=dims)


def _spent(context, ms: float) -> None:
    """Handler milliseconds, summed (a counter: rate() over requests gives the mean); against
    TorchServe's ts_inference_latency_microseconds it shows what the frontend adds."""
    if context.metrics is not None:
        context.metrics.add_counter(HANDLER_MS, ms)


HANDLER_MS = "MrseqHandlerMilliseconds"
_service = MrseqHandler()


def handle(data, context):
    """TorchServe's module-level entry point."""
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
