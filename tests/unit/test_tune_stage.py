"""The tune stage script's own logic: a stored sweep is resumed only for the same settings."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stored(monkeypatch, tmp_path):
    """(the stage's prepare_storage, a storage folder holding one trial stored for "abc")."""
    monkeypatch.syspath_prepend(str(ROOT / "pipelines"))
    prepare = importlib.import_module("tune").prepare_storage
    storage = tmp_path / "ray"
    prepare(storage, "abc")
    (storage / "trial").mkdir()
    return prepare, storage


def test_a_sweep_stored_for_the_same_settings_is_kept(stored):
    prepare, storage = stored
    prepare(storage, "abc")
    assert (storage / "trial").is_dir()


def test_a_sweep_stored_for_other_settings_or_unmarked_is_discarded(stored):
    prepare, storage = stored
    prepare(storage, "changed")
    assert not (storage / "trial").exists()
    assert (storage / "settings.sha").read_text() == "changed"
    (storage / "settings.sha").unlink()  # a sweep from before the mark existed
    (storage / "trial").mkdir()
    prepare(storage, "changed")
    assert not (storage / "trial").exists()
