"""TorchServe frontend settings A/B on the p50 of one client (issue #13), in one run.

For each variant of serve/config.properties (extra lines appended to a copy), start TorchServe
(one worker, batch 1) and time the zipped DICOM T2 series at one client, alternating one
in-process request and one through TorchServe, so both medians come from the same minutes (a
first version timed the in-process baseline before each variant: it drifted from 118 to 165 ms
between variants while TorchServe stayed at 167-176 ms). Prints one row per variant.
Usage: python bench/serve_config.py [--model models/mrseq] [--requests 80]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mrseq.predict import Predictor
from mrseq.serving import archive
from mrseq.serving.client import post

# bench/serve.py, this script's neighbour (python puts bench/ first on the path)
from serve import CONFIG, alternate, dicom_zip, in_process, running

VARIANTS = {
    "as shipped": [],
    "async_logging": ["async_logging=true"],
    "prefer_direct_buffer": ["prefer_direct_buffer=true"],
    "both": ["async_logging=true", "prefer_direct_buffer=true"],
}
SERVE = {
    "batch_size": 1,
    "max_batch_delay_ms": 20,
    "workers": 1,
    "response_timeout_s": 120,
    "worker_memory_mb": 1536,
}


def paired_p50(store: Path, config: Path, body: bytes, local, n: int) -> tuple[float, float]:
    """(in-process p50, TorchServe p50) in ms, requests alternating between the two."""
    with running(store, config, store.parent / f"state_{config.stem}") as (url, _):

        def send():
            status, _ = post(url, body, {"X-Spacing": "0.5,0.5,3.3"})
            assert status == 200, status

        return alternate(local, send, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/mrseq")
    parser.add_argument("--requests", type=int, default=80)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # as in a TorchServe worker (MRSEQ_TORCH_THREADS=1)
    model = Path(args.model)
    predictor = Predictor.from_dir(model)
    body = dicom_zip((384, 384, 28), [None], (0.5, 0.5, 3.3), "t2_tse")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        archive.build_mar(model, store, SERVE)
        for name, lines in VARIANTS.items():
            config = Path(tmp) / f"{name.replace(' ', '_')}.properties"
            config.write_text(CONFIG.read_text() + "\n".join(["", *lines, ""]))
            local, served = paired_p50(
                store, config, body, in_process(predictor, body), args.requests
            )
            rows.append((name, local, served))
            print(
                f"{name:<22} in-process {local:7.1f} ms  torchserve {served:7.1f} ms  "
                f"ratio {served / local:.2f}",
                flush=True,
            )
    best = min(rows, key=lambda r: r[2] / r[1])
    print(f"best: {best[0]} (ratio p50 torchserve/in-process {best[2] / best[1]:.2f})")


if __name__ == "__main__":
    main()
