"""One record schema for every path: `mrseq predict`, the HTTP handler, `mrseq classify`."""

import io
import zipfile

import pytest

from helpers import Context, tiny_model_dir
from mrseq import records
from mrseq.predict import Predictor
from mrseq.serving.handler import MrseqHandler
from mrseq.simulate import simulate_cohort


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    simulate_cohort(root / "raw", n_patients=1, seed=8, resolution_scale=0.3, progress=False)
    (root / "raw" / "junk.dcm").write_bytes(b"not dicom at all")
    return root, tiny_model_dir(root / "model")


def zipped(folder) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, f in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
            z.write(f, f"{n}.dcm")
    return buf.getvalue()


def test_predict_and_http_answer_the_same_fields_for_volumes_and_problems(study):
    root, model = study
    local = Predictor.from_dir(model).predict_paths([root / "raw"])
    handler = MrseqHandler()
    handler.initialize(Context(model))
    http = handler.handle([{"body": zipped(root / "raw")}], Context(model))[0]
    for answer in (local, http):
        assert any(r["label"] is None for r in answer) and any(r["label"] for r in answer)
        assert all(tuple(r) == records.FIELDS for r in answer), [tuple(r) for r in answer]
    by_volume = {r["volume_id"]: r for r in http if r["label"]}
    for r in (r for r in local if r["label"]):
        same = by_volume[r["volume_id"]]
        assert {k: v for k, v in r.items() if k != "path"} == {
            k: v for k, v in same.items() if k != "path"
        }
        assert same["path"] is None  # the server's temporary folder is never answered


def test_a_problem_names_only_record_fields():
    assert records.problem("why", path="a/b")["warnings"] == ["why"]
    with pytest.raises(ValueError, match="file"):
        records.problem("why", file="a/b")
