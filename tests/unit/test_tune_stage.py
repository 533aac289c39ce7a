"""The tune stage script's own logic: a stored sweep is resumed only for the same settings."""

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tune_stage(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "pipelines"))
    return importlib.import_module("tune")


def test_a_sweep_stored_for_the_same_settings_is_kept(monkeypatch, tmp_path):
    stage = tune_stage(monkeypatch)
    storage = tmp_path / "ray"
    stage.prepare_storage(storage, "abc")
    (storage / "trial").mkdir()
    stage.prepare_storage(storage, "abc")
    assert (storage / "trial").is_dir()


def test_a_sweep_stored_for_other_settings_or_unmarked_is_discarded(monkeypatch, tmp_path):
    stage = tune_stage(monkeypatch)
    storage = tmp_path / "ray"
    stage.prepare_storage(storage, "abc")
    (storage / "trial").mkdir()
    stage.prepare_storage(storage, "changed")
    assert not (storage / "trial").exists()
    assert (storage / "settings.sha").read_text() == "changed"
    (storage / "settings.sha").unlink()  # a sweep from before the mark existed
    (storage / "trial").mkdir()
    stage.prepare_storage(storage, "changed")
    assert not (storage / "trial").exists()
