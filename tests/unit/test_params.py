import json
from pathlib import Path

import pytest

from mrseq.params import (
    covers,
    declared_files,
    declared_keys,
    get_dotted,
    load_yaml,
    stage_params,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_declared_key_exists_in_params_yaml():
    params = load_yaml(ROOT / "params.yaml")
    for stage in load_yaml(ROOT / "dvc.yaml")["stages"]:
        for key in declared_keys(stage, ROOT / "dvc.yaml"):
            get_dotted(params, key)  # raises KeyError if missing


def test_declared_files_are_the_stage_files_not_its_folders():
    files = {p.relative_to(ROOT).as_posix() for p in declared_files("tune", ROOT / "dvc.yaml")}
    assert {"pipelines/tune.py", "src/mrseq/training.py", "src/mrseq/nets.py"} <= files
    assert not {"data/processed", "data/synthetic", "src/mrseq"} & files


def test_stage_sees_only_declared_keys(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    p = stage_params("split")
    assert set(p) == {"split", "other"}
    with pytest.raises(KeyError):
        p["train"]


def test_reads_are_recorded_for_the_audit(tmp_path):
    (tmp_path / "params.yaml").write_text("a: {x: 1, y: 2}\nb: 3\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    params: [a.x, b]\n")
    p = stage_params("s", str(tmp_path / "params.yaml"), str(tmp_path / "dvc.yaml"))
    assert p["a"]["x"] == 1
    assert p.seen == {"a.x"}
    assert covers(["a.x", "b"], sorted(p.seen)) == ([], ["b"])
    assert covers(["a"], ["a.x", "c"]) == (["c"], [])


def test_a_plain_copy_for_the_record_is_not_a_read(tmp_path):
    from mrseq.params import Tracked, as_plain

    p = Tracked({"a": {"x": 1, "y": [2]}, "b": 3})
    copy = as_plain(p)
    assert copy == {"a": {"x": 1, "y": [2]}, "b": 3}
    assert type(copy["a"]) is dict and p.seen == set()
    p.plain()
    assert p.seen == {"a.x", "a.y", "b"}


def test_audit_file_written_at_exit(tmp_path):
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text("a: {x: 1}\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    params: [a]\n")
    code = "from mrseq.params import stage_params; stage_params('s')['a']['x']"
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        check=True,
        env={**__import__("os").environ, "MRSEQ_PARAMS_AUDIT": str(tmp_path / "audit")},
    )
    assert json.loads((tmp_path / "audit" / "s.json").read_text()) == ["a.x"]
