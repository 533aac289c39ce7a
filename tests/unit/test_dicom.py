import os
import random
import shutil

import numpy as np
import pydicom
import pytest

from conftest import AXIAL, SAGITTAL, make_series
from mrseq.dicom import load_volume, scan
from mrseq.ingest import ingest, load_saved_volume


def only_group(folder):
    result = scan([folder])
    assert len(result.groups) == 1, result.groups
    return result.groups[0]


def test_round_trip_pixels_affine_and_rescale(series_factory):
    paths, (stack,), _ = series_factory(slope=2.5, intercept=-100)
    volume = load_volume(only_group(os.path.dirname(paths[0])))
    np.testing.assert_allclose(volume.array, stack * 2.5 - 100)
    np.testing.assert_allclose(volume.spacing, (0.7, 0.8, 3.0), atol=1e-4)
    # RAS affine: voxel (0,0,0) at LPS (-20,-30,10) -> RAS (20,30,10); x and y axes flipped.
    np.testing.assert_allclose(volume.affine[:3, 3], [20, 30, 10], atol=1e-3)
    np.testing.assert_allclose(np.diag(volume.affine)[:3], [-0.7, -0.8, 3.0], atol=1e-4)


def _pydicom_stack(paths) -> np.ndarray:
    """The reference: each file's rescaled pixels by pydicom, (column, row, slice), along z."""
    files = sorted((pydicom.dcmread(p) for p in paths), key=lambda d: d.ImagePositionPatient[2])
    planes = [d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in files]
    return np.stack(planes).transpose(2, 1, 0)


def test_slices_with_own_rescale_or_moved_pixels_load_as_pydicom_reads_them(series_factory):
    """One read per volume covers the common case (one layout, one rescale); a slice with its
    own rescale, or a file rewritten after its header was read, takes the per-slice path."""
    paths, _, _ = series_factory(slope=2.5, intercept=-100)
    group = only_group(os.path.dirname(paths[0]))
    np.testing.assert_allclose(load_volume(group).array, _pydicom_stack(paths))
    ds = pydicom.dcmread(paths[3])
    ds.RescaleSlope, ds.ImageComments = "1.5", "a longer header moves the pixel data"
    ds.save_as(paths[3])
    # the group read before the change still finds the moved pixels (through pydicom) ...
    np.testing.assert_allclose(load_volume(group).array, _pydicom_stack(paths))
    fresh = only_group(os.path.dirname(paths[0]))  # ... and a fresh read sees two rescales
    assert len({i.rescale for i in fresh.instances}) == 2
    np.testing.assert_allclose(load_volume(fresh).array, _pydicom_stack(paths))


def test_slice_order_comes_from_positions_not_file_names(series_factory, tmp_path):
    paths, (stack,), _ = series_factory()
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    names = [f"{n:04d}" for n in range(len(paths))]  # no .dcm, names unrelated to order
    random.Random(3).shuffle(names)
    for path, name in zip(paths, names, strict=True):
        shutil.copy(path, shuffled / name)
    volume = load_volume(only_group(shuffled))
    np.testing.assert_array_equal(volume.array, stack)


def test_sagittal_plane_is_reported(series_factory):
    paths, _, _ = series_factory(orientation=SAGITTAL)
    from mrseq.dicom import plane_of

    group = only_group(os.path.dirname(paths[0]))
    assert plane_of(group.instances[0].orientation) == "sagittal"


@pytest.mark.parametrize("style", ["standard", "siemens", "ge", "philips"])
def test_multi_b_series_splits_into_one_volume_per_b(series_factory, style):
    paths, stacks, _ = series_factory(b_values=(50, 400, 800), b_style=style)
    groups = scan([os.path.dirname(paths[0])]).groups
    assert [g.b_value for g in groups] == [50, 400, 800]
    for group, stack in zip(groups, stacks, strict=True):
        assert not group.error
        np.testing.assert_array_equal(load_volume(group).array, stack)


def test_unknown_b_tag_repeats_split_by_order_with_warning(series_factory):
    paths, stacks, _ = series_factory(b_values=(0, 800), b_style=None)
    groups = scan([os.path.dirname(paths[0])]).groups
    assert len(groups) == 2 and all("split by order" in g.warnings[0] for g in groups)
    np.testing.assert_array_equal(load_volume(groups[1]).array, stacks[1])


def test_truncated_and_non_dicom_files_are_skipped_by_name(series_factory, tmp_path):
    paths, _, _ = series_factory()
    folder = os.path.dirname(paths[0])
    with open(paths[0], "rb") as f:
        data = f.read()
    with open(os.path.join(folder, "broken.dcm"), "wb") as f:
        f.write(data[: len(data) // 3])
    with open(os.path.join(folder, "notes.bin"), "wb") as f:
        f.write(b"hello, not a DICOM file")
    result = scan([folder])
    assert result.skipped[os.path.join(folder, "notes.bin")] == "not a DICOM file"
    assert "broken.dcm" in " ".join(result.skipped)
    assert len(result.groups) == 1 and not result.groups[0].error


def test_empty_folder_gives_no_groups(tmp_path):
    assert scan([tmp_path]).groups == []


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        scan([tmp_path / "nope"])


def test_ct_series_is_rejected(series_factory):
    paths, _, _ = series_factory(Modality="CT")
    group = only_group(os.path.dirname(paths[0]))
    assert "CT" in group.error


def test_two_orientations_in_one_series_are_rejected(tmp_path):
    uid = "1.2.3.4"
    make_series(tmp_path / "a", orientation=AXIAL, SeriesInstanceUID=uid)
    make_series(tmp_path / "b", orientation=SAGITTAL, SeriesInstanceUID=uid)
    group = only_group(tmp_path)
    assert "orientations" in group.error


def test_missing_position_is_rejected_naming_the_file(series_factory):
    import pydicom

    paths, _, _ = series_factory()
    ds = pydicom.dcmread(paths[2])
    del ds.ImagePositionPatient
    ds.save_as(paths[2])
    group = only_group(os.path.dirname(paths[0]))
    assert "ImagePositionPatient" in group.error and paths[2] in group.error


def test_missing_slice_is_warned(series_factory):
    paths, _, _ = series_factory()
    os.remove(paths[3])
    group = only_group(os.path.dirname(paths[0]))
    assert not group.error and "missing slices" in group.warnings[0]


def test_mismatched_rows_columns_dropped_with_warning(tmp_path):
    uid = "1.2.3.5"
    rng = np.random.default_rng(0)
    make_series(tmp_path / "a", stacks=[rng.integers(0, 9, (12, 10, 6))], SeriesInstanceUID=uid)
    odd, _, _ = make_series(
        tmp_path / "b", stacks=[rng.integers(0, 9, (8, 8, 6))], SeriesInstanceUID=uid
    )
    for p in odd[1:]:
        os.remove(p)
    group = only_group(tmp_path)
    assert "Rows/Columns" in group.warnings[0] and len(group.instances) == 6


def test_ingest_mixed_folder_keeps_the_good_and_reports_the_bad(tmp_path):
    root = tmp_path / "study"
    make_series(root / "t2", SeriesDescription="t2_tse_tra")
    make_series(root / "dwi", b_values=(50, 800), b_style="siemens", SeriesDescription="ep2d_diff")
    make_series(root / "ct", Modality="CT")
    (root / "junk").mkdir()
    (root / "junk" / "corrupt.dcm").write_bytes(b"\x00" * 200)
    table, summary = ingest(root, tmp_path / "out", workers=1, progress=False)
    assert summary.volumes == 3 and len(table) == 3
    assert sorted(table.b_value.dropna()) == [50, 800] and table.b_value.isna().sum() == 1
    assert len(summary.rejected) == 1 and "CT" in next(iter(summary.rejected.values()))
    assert any("corrupt.dcm" in p for p in summary.skipped)
    array, affine = load_saved_volume(tmp_path / "out" / table.file.iloc[0])
    assert array.ndim == 3 and affine.shape == (4, 4)
    assert set(table.header_hint) == {"T2WI_nan", "DWI_Low", "DWI_High"}


def test_cli_ingest_help_and_run(tmp_path, capsys):
    from mrseq.cli import main

    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    assert "SeriesInstanceUID" in capsys.readouterr().out
    make_series(tmp_path / "in" / "s")
    assert main(["ingest", str(tmp_path / "in"), str(tmp_path / "out"), "--quiet"]) == 0
    assert "1 volumes written" in capsys.readouterr().out


def test_headers_are_plain_values_that_pickle_small(series_factory):
    import pickle

    from pydicom.dataset import Dataset
    from pydicom.multival import MultiValue

    paths, _, _ = series_factory()
    inst = only_group(os.path.dirname(paths[0])).instances[0]
    assert isinstance(inst.ds, dict) and not isinstance(inst.ds, Dataset)
    assert inst.ds["Modality"] == "MR"
    assert not any(isinstance(v, MultiValue) for v in inst.ds.values())
    assert len(pickle.dumps(inst)) < 2000  # a pickled Dataset of the same elements: ~2,600


def test_ingest_in_two_processes_writes_what_one_writes(tmp_path):
    from conftest import make_series

    for n in range(12):  # 72 files, 12 volumes: both passes go to the shared pool
        make_series(tmp_path / "dicom" / f"s{n}", slope=1.0 + n % 2 * 1.5)
    one, _ = ingest(tmp_path / "dicom", tmp_path / "one", workers=1, progress=False)
    two, _ = ingest(tmp_path / "dicom", tmp_path / "two", workers=2, progress=False)
    assert (tmp_path / "one" / "series.csv").read_bytes() == (
        tmp_path / "two" / "series.csv"
    ).read_bytes()
    for name in one.file:
        a, b = (load_saved_volume(tmp_path / d / name) for d in ("one", "two"))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_header_values_are_pydicom_values_converted_once(series_factory):
    """read_instance's value memo gives what pydicom gives, file after file, converts each
    repeated value once, and never remembers a sequence."""
    from mrseq import dicom

    paths = [p for n in range(3) for p in series_factory(b_values=(0, 800), b_style="siemens")[0]]
    dicom._VALUES.clear()
    first = [dicom.read_instance(p) for p in paths]
    entries = dict(dicom._VALUES)
    assert [dicom.read_instance(p) for p in paths] == first
    for path, inst in zip(paths, first, strict=True):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert inst.ds == {k: dicom._plain(ds[k].value) for k in dicom.KEPT if k in ds}
        assert inst.position == tuple(float(v) for v in ds.ImagePositionPatient)
        assert inst.shape == (ds.Rows, ds.Columns) and inst.b_value in (0, 800)
    assert 0 < len(entries) < len(paths) * 10  # ~35 elements read per file, most repeat
    assert not any(vr == "SQ" for _tag, vr, *_ in entries)


def test_volumes_saved_as_stored_integers_load_as_the_rescaled_floats(series_factory, tmp_path):
    """Ingest keeps a fractionally rescaled series' stored integers (half the bytes of float32)
    and the rescale; loading applies it: bit for bit the floats the reader itself gives."""
    from mrseq.ingest import save_volume

    paths, _, _ = series_factory(slope=0.666897, intercept=-3.5)
    group = only_group(os.path.dirname(paths[0]))
    real, stored = load_volume(group), load_volume(group, stored=True)
    assert real.rescale == (1.0, 0.0) and real.array.dtype == np.float32
    assert stored.rescale == (0.666897, -3.5) and stored.array.dtype.kind == "u"
    save_volume(tmp_path / "v.npz", stored.array, stored.affine, stored.rescale)
    array, affine = load_saved_volume(tmp_path / "v.npz")
    assert array.tobytes() == np.ascontiguousarray(real.array).tobytes()
    np.testing.assert_array_equal(affine, real.affine)
    np.testing.assert_allclose(array, _pydicom_stack(paths), rtol=1e-6)
    with np.load(tmp_path / "v.npz") as saved:
        assert saved["array"].dtype == np.int16


def test_saved_volumes_are_the_bytes_np_savez_writes(tmp_path):
    """save_volume skips np.savez's copy of each array, not its format: same file, same load."""
    from mrseq.ingest import save_volume

    rng = np.random.default_rng(0)
    affine = np.diag([-0.7, -0.7, 3.0, 1.0])
    volumes = {
        "int16_view": rng.integers(0, 4000, (4, 6, 3)).astype(np.uint16).transpose(2, 1, 0),
        "float32": rng.random((5, 4, 3)).astype(np.float32),
        "uint16_high": np.full((3, 4, 2), 60000, np.uint16),
        "strided": rng.random((6, 8, 4)).astype(np.float32)[::2, :, 1:],
    }
    for name, array in volumes.items():
        save_volume(tmp_path / f"{name}.npz", array, affine)
        stored = array.astype(np.int16) if name == "int16_view" else array
        np.savez(tmp_path / f"{name}_ref.npz", array=stored, affine=affine)
        assert (tmp_path / f"{name}.npz").read_bytes() == (
            tmp_path / f"{name}_ref.npz"
        ).read_bytes(), name
        array_back, affine_back = load_saved_volume(tmp_path / f"{name}.npz")
        np.testing.assert_array_equal(array_back, array.astype(np.float32))
        np.testing.assert_array_equal(affine_back, affine)
