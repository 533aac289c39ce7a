"""`mrseq` command line: argparse only; the work happens in the package's functions."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def _workers(value: str) -> int:
    n = int(value)
    return n if n > 0 else (os.cpu_count() or 1)


def _add_ingest(sub) -> None:
    p = sub.add_parser(
        "ingest",
        help="convert a DICOM tree into one volume file per series/b-value + series.csv",
        description="Walk DICOM_DIR (any layout), group files by SeriesInstanceUID, split "
        "multi-b-value series, order slices along the slice normal, and write "
        "OUT_DIR/volumes/*.npz and OUT_DIR/series.csv. Bad files are skipped with a warning. "
        "With --dicomweb URL (and no DICOM_DIR) the studies are first fetched from that PACS "
        "into OUT_DIR/dicom.",
    )
    p.add_argument("dirs", nargs="+", metavar="[DICOM_DIR] OUT_DIR")
    p.add_argument("--workers", type=_workers, default=0, help="processes (0: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_dicomweb(p, write_back=False)
    p.set_defaults(func=_run_ingest)


def _add_fetch(sub) -> None:
    p = sub.add_parser(
        "fetch",
        help="download studies from a PACS over DICOMweb into a DICOM tree",
        description="QIDO-RS finds the studies (all, or --study UID), WADO-RS fetches their "
        "image series into OUT_DIR/<study>/<series>/<sop>.dcm, e.g. data/raw for training.",
    )
    p.add_argument("out_dir")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_dicomweb(p, write_back=False)
    p.set_defaults(func=_run_fetch)


def _run_fetch(args) -> int:
    if not args.dicomweb:
        raise ValueError("--dicomweb URL is required")
    _fetched(args, args.out_dir)
    return 0


def _add_dicomweb(p, write_back: bool = True) -> None:
    p.add_argument("--dicomweb", metavar="URL", help="a PACS's DICOMweb root to fetch from")
    p.add_argument(
        "--study", action="append", metavar="UID", help="only this study (repeatable); default all"
    )
    if write_back:
        p.add_argument(
            "--write-back",
            action="store_true",
            help="store the results in each study as a DICOM Basic Text SR (STOW-RS)",
        )


def _fetched(args, folder: str) -> str:
    import requests

    from mrseq.pacs import fetch

    try:
        studies = fetch(args.dicomweb, folder, args.study, not getattr(args, "quiet", False))
    except requests.RequestException as exc:
        raise ConnectionError(f"cannot reach the PACS at {args.dicomweb}: {exc}") from exc
    print(f"fetched {len(studies)} studies from {args.dicomweb}", file=sys.stderr)
    return folder


def _run_ingest(args) -> int:
    from mrseq.ingest import ingest

    if len(args.dirs) != (1 if args.dicomweb else 2):
        raise ValueError("give DICOM_DIR OUT_DIR, or --dicomweb URL OUT_DIR")
    out_dir = args.dirs[-1]
    source = _fetched(args, os.path.join(out_dir, "dicom")) if args.dicomweb else args.dirs[0]
    _, summary = ingest(source, out_dir, workers=args.workers, progress=not args.quiet)
    for path, why in summary.skipped.items():
        print(f"skipped file {path}: {why}", file=sys.stderr)
    for volume_id, why in summary.rejected.items():
        print(f"rejected volume {volume_id}: {why}", file=sys.stderr)
    print(summary.line())
    return 0 if summary.volumes or not (summary.skipped or summary.rejected) else 1


def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated multi-vendor prostate mpMRI DICOM cohort + labels.csv",
        description="Physics-based simulator: per-patient anatomy, T2/fat-suppressed T2/DWI/ADC "
        "signal equations, vendor conventions. Writes OUT_DIR/<patient>/<study>/<series>/*.dcm "
        "and OUT_DIR/labels.csv.",
    )
    p.add_argument("out_dir")
    p.add_argument("--patients", type=int, default=60, help="number of patients (paper: 1086)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_workers, default=0, help="processes (0: all cores)")
    p.add_argument(
        "--resolution-scale",
        type=float,
        default=1.0,
        help="multiply every matrix size by this (below 1 for quick test cohorts)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args) -> int:
    from mrseq.simulate import simulate_cohort

    labels = simulate_cohort(
        args.out_dir,
        n_patients=args.patients,
        seed=args.seed,
        workers=args.workers,
        resolution_scale=args.resolution_scale,
        progress=not args.quiet,
    )
    print(f"{labels.patient_id.nunique()} patients, {len(labels)} volumes -> {args.out_dir}")
    print(labels.label.value_counts().sort_index().to_string())
    return 0


def _add_audit(sub) -> None:
    p = sub.add_parser(
        "audit-shortcuts",
        help="how well geometry alone or intensity histograms alone predict the label",
        description="Patient-grouped cross-validated simple classifiers on (a) geometry only and "
        "(b) normalised intensity histograms, on an ingested cohort (series.csv + labels.csv).",
    )
    p.add_argument("interim_dir", help="ingest output (series.csv, volumes/)")
    p.add_argument("labels_csv")
    p.add_argument("--out", help="write the numbers as JSON here")
    p.set_defaults(func=_run_audit)


def _run_audit(args) -> int:
    import json

    from mrseq.audit import audit_shortcuts

    result = audit_shortcuts(args.interim_dir, args.labels_csv)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


def _add_montage(sub) -> None:
    p = sub.add_parser("montage", help="a PNG grid of mid-slices per class, patient and vendor")
    p.add_argument("interim_dir", help="ingest output (series.csv, volumes/)")
    p.add_argument("labels_csv")
    p.add_argument("out_png")
    p.add_argument("--per-class", type=int, default=6)
    p.set_defaults(func=_run_montage)


def _run_montage(args) -> int:
    from mrseq.montage import montage

    montage(args.interim_dir, args.labels_csv, args.out_png, per_class=args.per_class)
    print(f"wrote {args.out_png}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify DICOM files or folders with an exported model",
        description="Groups files into series (multi-b series split as in ingest) and prints one "
        "record per volume.",
    )
    p.add_argument("paths", nargs="*", help="DICOM files or folders (or --dicomweb)")
    p.add_argument(
        "--model",
        default="models/mrseq",
        help="exported model folder (model_spec.json); default: what make run exports",
    )
    p.add_argument("--format", choices=["json", "csv", "table"], default="json")
    _add_dicomweb(p)
    p.set_defaults(func=_run_predict)


def _sources(args, tmp: str) -> list[str]:
    given = [g for g in (getattr(args, "paths", None) or [getattr(args, "path", None)]) if g]
    if bool(given) == bool(args.dicomweb):
        raise ValueError("give DICOM files or folders, or --dicomweb URL (not both)")
    if args.write_back and not args.dicomweb:
        raise ValueError("--write-back needs --dicomweb")
    return [_fetched(args, tmp)] if args.dicomweb else given


def _write_back(args, fetched: str, records: list[dict]) -> None:
    from mrseq.pacs import write_back

    stored = write_back(args.dicomweb, fetched, records)
    print(f"stored {len(stored)} results SR in {args.dicomweb}", file=sys.stderr)


def _run_predict(args) -> int:
    import tempfile

    from mrseq.predict import Predictor, format_records

    predictor = Predictor.from_dir(args.model)
    with tempfile.TemporaryDirectory(prefix="mrseq-pacs-") as tmp:
        paths = _sources(args, tmp)
        records = predictor.predict_paths(paths)
        if args.write_back:
            _write_back(args, tmp, records)
    print(format_records(records, args.format))
    return 0 if records else 1


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="start (or stop) TorchServe on the packaged model",
        description="Starts TorchServe on MODEL_STORE/mrseq.mar with serve/config.properties and "
        "waits until the model's worker is READY. --foreground keeps it attached (containers); "
        "--stop stops the server started with the same --state folder.",
    )
    p.add_argument("--model-store", default="models/store")
    p.add_argument("--state", default=".serve", help="pid file, unpacked models and logs")
    p.add_argument("--config", default="serve/config.properties", help="TorchServe config")
    p.add_argument("--host", default="127.0.0.1", help="inference/metrics bind address")
    p.add_argument("--ports", default="8080,8081,8082", help="inference,management,metrics")
    p.add_argument("--foreground", action="store_true")
    p.add_argument("--stop", action="store_true")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for READY")
    p.set_defaults(func=_run_serve)


def _run_serve(args) -> int:
    import signal

    from mrseq.serving import process

    if args.stop:
        process.stop(args.state)
        print("stopped")
        return 0
    ports = tuple(int(v) for v in args.ports.split(","))
    config = Path(args.config)
    if not config.is_file():
        print(f"mrseq serve: no TorchServe config at {config} (pass --config)", file=sys.stderr)
        return 2
    proc = process.start(args.model_store, args.state, config, ports, args.host, args.foreground)
    process.wait_ready(f"http://127.0.0.1:{ports[1]}", args.timeout)
    print(
        f"mrseq model READY: inference http://{args.host}:{ports[0]}/predictions/mrseq, "
        f"metrics http://{args.host}:{ports[2]}/metrics"
    )
    if proc is None:
        return 0
    signal.signal(signal.SIGTERM, lambda *_: process.stop(args.state))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        process.stop(args.state)
        return proc.wait()


def _add_ready(sub) -> None:
    p = sub.add_parser(
        "ready",
        help="exit 0 when a TorchServe worker can serve the model (readiness probe)",
        description="Asks the management API (bound to localhost) for the model's workers; "
        "exit 0 when one is READY, 1 otherwise (with the reason). /ping says Healthy even "
        "when no worker can serve, so probes that decide on traffic use this.",
    )
    p.add_argument("--management", default="http://127.0.0.1:8081")
    p.add_argument("--timeout", type=float, default=3)
    p.set_defaults(func=_run_ready)


def _run_ready(args) -> int:
    from mrseq.serving.process import worker_status

    ready, why, _ = worker_status(args.management, args.timeout)
    if not ready:
        print(f"mrseq ready: not ready ({why})", file=sys.stderr)
    return 0 if ready else 1


def _add_classify(sub) -> None:
    p = sub.add_parser(
        "classify",
        help="send each series under PATH to a running server and report",
        description="Walks PATH, zips each series in memory (series of a study on exactly one "
        "grid, such as per-b-value DWI series and their ADC, together), posts it to "
        "URL/predictions/mrseq "
        "and prints one record per volume; disagreements with the headers are flagged, files "
        "and series that could not be classified are listed. Exit codes: 0 every series "
        "classified, 1 nothing to classify, 3 server unreachable or not answering within "
        "--timeout, 4 some series or files failed (listed on stderr).",
    )
    p.add_argument("path", nargs="?", help="DICOM file or folder (or --dicomweb)")
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--format", choices=["json", "csv", "table"], default="table")
    p.add_argument("--timeout", type=float, default=120, help="seconds per series (default 120)")
    _add_dicomweb(p)
    p.set_defaults(func=_run_classify)


def _run_classify(args) -> int:
    import tempfile
    import urllib.error

    from mrseq.predict import format_records
    from mrseq.serving.client import classify

    with tempfile.TemporaryDirectory(prefix="mrseq-pacs-") as tmp:
        (path,) = _sources(args, tmp)
        try:
            records = classify(path, args.url, args.timeout)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            print(f"mrseq classify: cannot reach {args.url}: {reason}", file=sys.stderr)
            return 3
        if args.write_back:
            _write_back(args, tmp, records)
    print(format_records(records, args.format))
    failed = [r for r in records if r.get("label") is None]
    for r in failed:
        where = r.get("series_description") or r.get("path") or r.get("series_uid") or "?"
        why = "; ".join(r["warnings"])
        print(f"mrseq classify: not classified: {where}: {why}", file=sys.stderr)
    if failed:
        print(f"mrseq classify: {len(failed)} of {len(records)} not classified", file=sys.stderr)
        return 4
    return 0 if records else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrseq",
        description="Prostate mpMRI sequence classification from pixels "
        "(T2WI_nan, T2WI_fs, DWI_Low, DWI_High, ADC).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_simulate,
        _add_ingest,
        _add_fetch,
        _add_audit,
        _add_montage,
        _add_predict,
        _add_serve,
        _add_ready,
        _add_classify,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"mrseq {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # a PACS that cannot be reached (as classify's server: 3)
        print(f"mrseq {args.command}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
