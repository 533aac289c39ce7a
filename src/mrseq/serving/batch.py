"""A batch of requests -> one answer each, with one forward pass for every volume in it.

Decoding and preprocessing dominate on CPU, so a batch's requests are read and preprocessed
in parallel threads (numpy and torch release the GIL), then all their volumes go through the
net together. Each request fails alone: a bad one answers its own status, the others are served.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from mrseq.serving.decode import BadInput, Budget, decode, out_of_memory, records

log = logging.getLogger(__name__)


@dataclass
class Request:
    body: bytes | None
    spacing: str | None = None


@dataclass
class Answer:
    status: int  # 200, or the failed request's own status
    payload: list[dict] | dict  # records, or {"error", "status"}

    @classmethod
    def failed(cls, exc: BadInput) -> Answer:
        return cls(exc.status, {"error": str(exc), "status": exc.status})


def answer_batch(
    predictor,
    requests: list[Request],
    pool: Executor,
    budget_s: float | None = None,
    memory_mb: int | None = None,
) -> list[Answer]:
    budgets = [Budget(budget_s) for _ in requests]

    def read(idx):
        try:
            return decode(requests[idx].body, requests[idx].spacing, budgets[idx])
        except BadInput as exc:
            return exc
        except MemoryError:
            return out_of_memory(memory_mb)

    def prepare(idx):
        try:
            budgets[idx].check("every volume read, none preprocessed")
            return [predictor.tensor(i.array, i.affine) for i in decoded[idx].items]
        except BadInput as exc:
            return exc
        except MemoryError:
            return out_of_memory(memory_mb)
        except Exception as exc:  # this request's volumes only; the batch goes on
            log.warning("preprocessing failed: %s: %s", type(exc).__name__, exc)
            return BadInput("a volume of this request could not be preprocessed", 422)

    answers: list[Answer | None] = [None] * len(requests)
    decoded, tensors = {}, {}
    for idx, result in enumerate(pool.map(read, range(len(requests)))):
        if isinstance(result, BadInput):
            answers[idx] = Answer.failed(result)
        else:
            decoded[idx] = result
    for idx, result in zip(list(decoded), pool.map(prepare, list(decoded)), strict=True):
        if isinstance(result, BadInput):
            answers[idx] = Answer.failed(result)
        else:
            tensors[idx] = result
    if tensors:
        order = [(idx, n) for idx, ts in tensors.items() for n in range(len(ts))]
        probs, distances = predictor.outputs(torch.stack([tensors[i][n] for i, n in order]))
        for idx in tensors:
            mine = [k for k, (i, _) in enumerate(order) if i == idx]
            answers[idx] = Answer(
                200, records(predictor, decoded[idx], probs[mine], distances[mine])
            )
    return answers
