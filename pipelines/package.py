"""Stage package: models/mrseq + handler + the mrseq package -> models/store/mrseq.mar."""

import argparse
import json
from pathlib import Path

from _common import setup
from mrseq.export import SPEC_FILE
from mrseq.params import stage_params
from mrseq.serving.archive import build_mar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="exported model folder")
    parser.add_argument("--out", required=True, help="TorchServe model store")
    args = parser.parse_args()
    setup()
    serve = stage_params("package")["serve"]  # tracked: build_mar's reads are the audit's
    spec = json.loads((Path(args.model) / SPEC_FILE).read_text())
    version = spec.get("git_revision", "unknown")[:12] or "1.0"
    mar = build_mar(args.model, args.out, serve, version=version)
    print(f"wrote {mar} ({mar.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
