"""dvc.yaml and the code name the files inside stage outputs the same way (mrseq.layout)."""

import re
from pathlib import Path

from mrseq import layout
from mrseq.params import load_yaml

ROOT = Path(__file__).resolve().parents[2]
FILE = re.compile(r"[\w./-]+\.(?:csv|json|ckpt)\b")


def _out_folders(stages: dict) -> set[str]:
    folders = set()
    for stage in stages.values():
        for out in stage.get("outs", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            if not Path(path).suffix:
                folders.add(path)
    return folders


def _mentions(stage: dict) -> list[str]:
    text = stage["cmd"] + " " + " ".join(map(str, stage.get("deps", [])))
    return FILE.findall(text)


def test_files_inside_stage_outputs_are_named_by_layout():
    stages = load_yaml(ROOT / "dvc.yaml")["stages"]
    folders = _out_folders(stages)
    names = {v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str)}
    inside = [
        path
        for stage in stages.values()
        for path in _mentions(stage)
        if any(path.startswith(folder + "/") for folder in folders)
    ]
    assert inside, "dvc.yaml points into no stage folder: the check checks nothing"
    assert [p for p in inside if Path(p).name not in names] == []


def test_array_files_live_in_the_arrays_folder():
    assert layout.array_file("v1").split("/") == [layout.ARRAYS_DIR, "v1.npy"]
