"""TorchServe against the in-process Predictor on the same inputs, in one run (issue #13).

Inputs: a NIfTI volume, a zipped DICOM T2 series (384 x 384 x 28) and a zipped multi-b DWI
series (3 b-values x 20 slices of 128 x 128). For each: where the time goes in-process
(decode, preprocess, forward, records + JSON), p50/p95 and throughput in-process (1 / 8 / 16
threads) and through TorchServe (workers x batch settings, 1 / 8 / 16 clients), and the worker
RSS over --rss-requests requests. Ends with the two ratio lines of the issue (DICOM T2 zip):
p50 at one client, one worker, in-process and TorchServe requests alternating (both medians from
the same minutes), and throughput at 8 clients, best TorchServe setting vs 8 threads:
    ratio p50 torchserve/in-process 1.12
    ratio throughput torchserve/in-process 0.91
Usage: python bench/serve.py [--model models/mrseq] [--requests 48] [--rss-requests 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import tempfile
import time
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import psutil

from mrseq.dicom_write import Geometry, SeriesToWrite, new_uid, write_series
from mrseq.predict import Predictor
from mrseq.serving import archive, client, process
from mrseq.serving.decode import decode, records

CONFIG = Path("serve/config.properties")  # run from the checkout, like `make bench`
SETTINGS = [(1, 1), (2, 1), (2, 8)]  # (workers, batch size)
# TorchServe's own running sums on its Prometheus endpoint: the frontend's request count and
# per-request times (microseconds) and the handler's own time (ms; serving/handler.py).
FRONTEND, QUEUE = "ts_inference_latency_microseconds", "ts_queue_latency_microseconds"
HANDLER, COUNT = "MrseqHandlerMilliseconds", "ts_inference_requests_total"
CLIENTS = (1, 8, 16)
T2 = "DICOM zip T2 384x384x28"  # the input of the two ratio lines


def nifti() -> bytes:
    rng = np.random.default_rng(0)
    volume = rng.random((320, 320, 24)).astype(np.float32) * 1000
    return nib.Nifti1Image(volume, np.diag([0.55, 0.55, 3.3, 1])).to_bytes()


def dicom_zip(shape, b_values, spacing, description: str) -> bytes:
    rng = np.random.default_rng(1)
    stacks = [rng.integers(0, 3000, shape).astype(np.uint16) for _ in b_values]
    geometry = Geometry(
        np.array([-100.0, -100.0, -40.0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), spacing
    )
    tags = dict(
        PatientID="BENCH",
        StudyInstanceUID=new_uid(),
        SeriesInstanceUID=new_uid(),
        SeriesDescription=description,
        Manufacturer="SIEMENS",
        ScanningSequence="EP" if b_values[0] is not None else "SE",
        FrameOfReferenceUID=new_uid(),
    )
    style = "siemens" if b_values[0] is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_series(tmp, SeriesToWrite(stacks, geometry, tags, list(b_values), style))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, path in enumerate(paths):
                z.write(path, f"{n:05d}.dcm")
    return buf.getvalue()


def inputs() -> dict[str, bytes]:
    return {
        "NIfTI 320x320x24": nifti(),
        "DICOM zip T2 384x384x28": dicom_zip((384, 384, 28), [None], (0.5, 0.5, 3.3), "t2_tse"),
        "DICOM zip DWI 3b x 128x128x20": dicom_zip(
            (128, 128, 20), [0.0, 800.0, 1400.0], (2.0, 2.0, 4.0), "ep2d_diff"
        ),
    }


def stats(latencies: list[float], wall: float) -> dict:
    ms = np.array(latencies) * 1000
    return {"p50": float(np.median(ms)), "p95": float(np.percentile(ms, 95)), "rps": len(ms) / wall}


def run(send, n: int, clients: int) -> dict:
    def one(_):
        start = time.perf_counter()
        send()
        return time.perf_counter() - start

    for _ in range(2):
        send()  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, range(max(n, clients))))
    return stats(latencies, time.perf_counter() - start)


def alternate(local, served, n: int) -> tuple[float, float]:
    """(p50 of local, p50 of served) in ms, one client, requests alternating between the two
    paths so both medians come from the same minutes (measured one after the other, the
    in-process baseline drifted from 118 to 165 ms between runs on this machine)."""
    for _ in range(2):
        local(), served()  # warm-up
    times: dict = {local: [], served: []}
    for _ in range(n):
        for path in (local, served):
            start = time.perf_counter()
            path()
            times[path].append(1000 * (time.perf_counter() - start))
    return float(np.median(times[local])), float(np.median(times[served]))


def breakdown(predictor: Predictor, data: bytes, repeats: int = 5) -> dict:
    """Median ms per step of what the handler runs, in-process."""
    steps: dict[str, list[float]] = {"decode": [], "preprocess": [], "forward": [], "json": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        decoded = decode(data, "0.5,0.5,3.3")
        t1 = time.perf_counter()
        batch = np.stack([predictor.tensor(i.array, i.affine).numpy() for i in decoded.items])
        t2 = time.perf_counter()
        import torch

        outputs = predictor.outputs(torch.from_numpy(batch))
        t3 = time.perf_counter()
        json.dumps(records(predictor, decoded, *outputs))
        t4 = time.perf_counter()
        for name, a, b in zip(steps, (t0, t1, t2, t3), (t1, t2, t3, t4), strict=True):
            steps[name].append((b - a) * 1000)
    return {k: float(np.median(v)) for k, v in steps.items()}


def in_process(predictor: Predictor, data: bytes):
    import torch

    def send():
        decoded = decode(data)
        batch = torch.stack([predictor.tensor(i.array, i.affine) for i in decoded.items])
        json.dumps(records(predictor, decoded, *predictor.outputs(batch)))

    return send


def workers_rss(state: Path) -> float:
    """Summed RSS (MB) of the Python workers under the TorchServe frontend."""
    pid = int((state / "tmp" / ".model_server.pid").read_text().strip())
    kids = psutil.Process(pid).children(recursive=True)
    return sum(k.memory_info().rss for k in kids if "python" in k.name().lower()) / 2**20


def torchserve(
    model: Path, bodies: dict, workers: int, batch: int, n: int, rss_n: int, paired=None
) -> dict:
    """Latency and throughput per input and client count; with `paired` (an in-process sender
    of the DICOM T2 zip), also both p50s at one client measured alternately (`alternate`)."""
    serve = {
        "batch_size": batch,
        "max_batch_delay_ms": 20,
        "workers": workers,
        "response_timeout_s": 120,
        "worker_memory_mb": 1536,
    }
    with tempfile.TemporaryDirectory() as tmp:
        archive.build_mar(model, Path(tmp) / "store", serve)
        with running(Path(tmp) / "store", CONFIG, Path(tmp) / "state") as (url, metrics):
            out = {}
            for name, data in bodies.items():
                out[name] = {c: run(_poster(url, data), n, c) for c in CLIENTS}
            if workers == 1 and batch == 1:
                out["frontend"] = {
                    k: frontend_breakdown(url, metrics, v) for k, v in bodies.items()
                }
            if paired is not None:
                out["paired"] = alternate(paired, _poster(url, bodies[T2]), 2 * n)
            if rss_n:
                out["rss"] = _rss(url, bodies["NIfTI 320x320x24"], Path(tmp) / "state", rss_n)
            return out


@contextlib.contextmanager
def running(store: Path, config: Path, state: Path):
    """A TorchServe on store's .mar with this config, on random free-ish ports, until the block
    ends: yields (inference URL, metrics URL)."""
    base = random.randint(20000, 40000)
    ports = (base, base + 1, base + 2)
    process.start(store, state, config, ports=ports)
    try:
        process.wait_ready(f"http://127.0.0.1:{ports[1]}", 180)
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[2]}"
    finally:
        process.stop(state)


def metric_sums(metrics_url: str) -> dict[str, float]:
    """The bench's TorchServe metrics, summed over their label sets."""
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in (FRONTEND, QUEUE, HANDLER, COUNT):
            sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


def frontend_breakdown(url: str, metrics_url: str, data: bytes, n: int = 20) -> dict:
    """Mean ms per request over n sequential requests (one client, one worker): what the client
    waits, what the frontend counts (request in to response out), its queue, the handler;
    transport (frontend to worker and back) is frontend - queue - handler, outside (HTTP client
    and socket) is client - frontend. Means, not medians: TorchServe publishes its timers as
    running sums, and the worker's reach the endpoint a moment after the response."""
    send = _poster(url, data)
    send()
    time.sleep(2)
    before = metric_sums(metrics_url)
    start = time.perf_counter()
    for _ in range(n):
        send()
    client_ms = (time.perf_counter() - start) * 1000 / n
    time.sleep(2)  # let the worker's metrics arrive
    after = metric_sums(metrics_url)
    done = after.get(COUNT, 0) - before.get(COUNT, 0)
    if done != n:
        raise RuntimeError(f"TorchServe counted {done} requests, the bench sent {n}")

    def mean(name: str, scale: float) -> float:
        return (after.get(name, 0) - before.get(name, 0)) * scale / n

    frontend, queue, handler = mean(FRONTEND, 1e-3), mean(QUEUE, 1e-3), mean(HANDLER, 1.0)
    return {
        "client": client_ms,
        "frontend": frontend,
        "queue": queue,
        "handler": handler,
        "transport": frontend - queue - handler,
        "outside": client_ms - frontend,
    }


def _poster(url: str, data: bytes):
    def send():
        status, _ = client.post(url, data, {"X-Spacing": "0.5,0.5,3.3"})
        assert status == 200, status

    return send


def _rss(url: str, data: bytes, state: Path, n: int) -> dict:
    send = _poster(url, data)
    for _ in range(20):
        send()
    before = workers_rss(state)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: send(), range(n)))
    after = workers_rss(state)
    return {"requests": n, "before_mb": before, "after_mb": after, "growth": after / before - 1}


def print_breakdown(frontend: dict) -> None:
    print("\nwhere the time goes through TorchServe (w1 b1, 1 client, mean ms of 20 requests)")
    for name, b in frontend.items():
        print(f"  {name:<30} " + "  ".join(f"{k} {v:7.1f}" for k, v in b.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/mrseq")
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rss-requests", type=int, default=1000)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # as in a TorchServe worker (MRSEQ_TORCH_THREADS=1)
    model, bodies = Path(args.model), inputs()
    predictor = Predictor.from_dir(model)
    print(
        f"model {model}; inputs: "
        + ", ".join(f"{k} ({len(v) / 1e6:.1f} MB)" for k, v in bodies.items())
    )
    print("\nwhere the time goes in-process (median ms): decode, preprocess, forward, records+JSON")
    for name, data in bodies.items():
        b = breakdown(predictor, data)
        print(f"  {name:<30} " + "  ".join(f"{k} {v:7.1f}" for k, v in b.items()))
    results = {"in-process": {}}
    for name, data in bodies.items():
        results["in-process"][name] = {
            c: run(in_process(predictor, data), args.requests, c) for c in CLIENTS
        }
    for workers, batch in SETTINGS:
        key = f"torchserve w{workers} b{batch}"
        rss_n = args.rss_requests if (workers, batch) == SETTINGS[-1] else 0
        paired = in_process(predictor, bodies[T2]) if (workers, batch) == (1, 1) else None
        results[key] = torchserve(model, bodies, workers, batch, args.requests, rss_n, paired)
    print_breakdown(results["torchserve w1 b1"]["frontend"])
    print(f"\n{'path':<22} {'input':<30} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}")
    for path, by_input in results.items():
        for name, by_clients in by_input.items():
            if name in ("rss", "frontend", "paired"):
                continue
            for c, s in by_clients.items():
                row = f"{s['p50']:>8.1f} {s['p95']:>8.1f} {s['rps']:>7.2f}"
                print(f"{path:<22} {name:<30} {c:>7} {row}")
    rss = results[f"torchserve w{SETTINGS[-1][0]} b{SETTINGS[-1][1]}"]["rss"]
    print(
        f"\nworker RSS over {rss['requests']} requests: {rss['before_mb']:.0f} -> "
        f"{rss['after_mb']:.0f} MB ({100 * rss['growth']:+.1f} %, goal <= +10 %)"
    )
    local = results["in-process"][T2]
    served = [v[T2] for k, v in results.items() if k != "in-process"]
    best = max(served, key=lambda s: s[8]["rps"])
    own, through = results["torchserve w1 b1"]["paired"]
    print(
        f"\np50 at 1 client, {T2}, alternating requests (w1 b1, {2 * args.requests} each): "
        f"in-process {own:.1f} ms, TorchServe {through:.1f} ms"
    )
    print(f"ratio p50 torchserve/in-process {through / own:.2f}")
    print(f"ratio throughput torchserve/in-process {best[8]['rps'] / local[8]['rps']:.2f}")


if __name__ == "__main__":
    main()
