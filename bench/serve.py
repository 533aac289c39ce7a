"""In-process Predictor vs TorchServe on the same inputs, in one run.

Reports p50/p95 latency and throughput for: the in-process path (decode + preprocess + forward,
exactly what the handler runs), TorchServe with batch size 1, and TorchServe with dynamic
batching (batch 8), each with 1 and 8 concurrent clients. Goals: TorchServe p50 / in-process
p50 <= 1.15 at batch 1; throughput with batching / without at 8 clients >= 1.5.
Usage: python bench/serve.py [--model models/mrseq] [--requests 40]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

from mrseq.predict import Predictor
from mrseq.serving import archive, client, process
from mrseq.serving.decode import decode

CONFIG = Path("serve/config.properties")  # run from the checkout, like `make bench`


def body() -> bytes:
    """A T2-like NIfTI volume: 320 x 320 x 24 at 0.55 x 0.55 x 3.3 mm."""
    rng = np.random.default_rng(0)
    image = nib.Nifti1Image(
        rng.random((320, 320, 24)).astype(np.float32) * 1000, np.diag([0.55, 0.55, 3.3, 1])
    )
    return image.to_bytes()


def stats(latencies: list[float], wall: float) -> dict:
    ms = np.array(latencies) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "rps": len(latencies) / wall,
    }


def run(send, n: int, clients: int) -> dict:
    def one(_):
        start = time.perf_counter()
        send()
        return time.perf_counter() - start

    for _ in range(3):
        send()  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, range(n)))
    return stats(latencies, time.perf_counter() - start)


def in_process(predictor: Predictor, data: bytes):
    def send():
        decoded = decode(data)
        item = decoded.items[0]
        predictor.probabilities(predictor.tensor(item.array, item.affine)[None])

    return send


def torchserve(model: Path, data: bytes, batch: int, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        serve = {
            "batch_size": batch,
            "max_batch_delay_ms": 30,
            "workers": 1,
            "response_timeout_s": 120,
        }
        archive.build_mar(model, Path(tmp) / "store", serve)
        base = random.randint(20000, 40000)
        ports = (base, base + 1, base + 2)
        process.start(Path(tmp) / "store", Path(tmp) / "state", CONFIG, ports=ports)
        try:
            process.wait_ready(f"http://127.0.0.1:{ports[1]}", 180)
            url = f"http://127.0.0.1:{ports[0]}"

            def send():
                status, _ = client.post(url, data)
                assert status == 200, status

            return {c: run(send, n, c) for c in (1, 8)}
        finally:
            process.stop(Path(tmp) / "state")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/mrseq")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # as in a TorchServe worker (MRSEQ_TORCH_THREADS=1)
    data, model = body(), Path(args.model)
    predictor = Predictor.from_dir(model)
    results = {
        "in-process": {c: run(in_process(predictor, data), args.requests, c) for c in (1, 8)},
        "torchserve batch 1": torchserve(model, data, 1, args.requests),
        "torchserve batch 8": torchserve(model, data, 8, args.requests),
    }
    print(f"input: NIfTI 320x320x24 float32 ({len(data) / 1e6:.1f} MB), model {model}")
    print(f"{'path':<20} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}")
    for name, by_clients in results.items():
        for clients, s in by_clients.items():
            print(f"{name:<20} {clients:>7} {s['p50']:>8.1f} {s['p95']:>8.1f} {s['rps']:>7.2f}")
    ratio = results["torchserve batch 1"][1]["p50"] / results["in-process"][1]["p50"]
    gain = results["torchserve batch 8"][8]["rps"] / results["torchserve batch 1"][8]["rps"]
    print(f"TorchServe p50 / in-process p50 (1 client, batch 1): {ratio:.2f} (goal <= 1.15)")
    print(f"throughput batch 8 / batch 1 at 8 clients: {gain:.2f} (goal >= 1.5)")


if __name__ == "__main__":
    main()
