"""DICOM as archives hold it: compressed transfer syntaxes, multi-frame files, non-images."""

from __future__ import annotations

import copy
import logging
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from mrseq.dicom import _pixels, is_localiser, load_volume, read_instance, scan
from mrseq.ingest import ingest, load_saved_volume
from mrseq.simulate import simulate_cohort

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("codecs")
    simulate_cohort(root / "raw", 2, seed=3, resolution_scale=0.3, progress=False)
    table, _ = ingest(root / "raw", root / "ref", workers=1, progress=False)
    return root, table


def series_datasets(raw: Path) -> dict[str, list[Dataset]]:
    series = defaultdict(list)
    for path in sorted(raw.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        series[ds.SeriesInstanceUID].append(ds)
    return series


def same_volumes(root: Path, reference, folder: str) -> None:
    table, summary = ingest(root / folder, root / f"{folder}_i", workers=1, progress=False)
    # the simulator's 1-3 slice localisers are rejected with their reason, as in the reference
    assert all(is_localiser(why) for why in summary.rejected.values()) and not summary.skipped
    assert sorted(table.volume_id) == sorted(reference.volume_id)
    merged = reference.merge(table, on="volume_id", suffixes=("_ref", ""))
    for row in merged.itertuples():
        a, affine_a = load_saved_volume(root / "ref" / row.file_ref)
        b, affine_b = load_saved_volume(root / f"{folder}_i" / row.file)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(affine_a, affine_b, atol=1e-4)


@pytest.mark.parametrize(
    "syntax",
    [
        JPEGLSLossless,
        JPEG2000Lossless,
        RLELossless,
        DeflatedExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    ],
    ids=lambda s: s.name,
)
def test_lossless_re_encodings_give_pixel_identical_volumes(cohort, syntax):
    root, reference = cohort
    folder = f"enc_{syntax}"
    for path in sorted((root / "raw").rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        if syntax.is_compressed:
            ds.compress(syntax)
        else:
            ds.file_meta.TransferSyntaxUID = syntax
        target = root / folder / path.relative_to(root / "raw")
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
    assert (
        pydicom.dcmread(next((root / folder).rglob("*.dcm"))).file_meta.TransferSyntaxUID == syntax
    )
    same_volumes(root, reference, folder)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_expb.dcm",
    ],
)
def test_pydicoms_reference_encodings_decode_to_the_same_pixels(name):
    reference = read_instance(get_testdata_file("MR_small.dcm"))
    other = read_instance(get_testdata_file(name))
    np.testing.assert_array_equal(_pixels(other), _pixels(reference))


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG2000.dcm"])
def test_lossy_jpeg_syntaxes_decode(name):
    inst = read_instance(get_testdata_file(name))
    assert not isinstance(inst, str), inst
    assert _pixels(inst).shape == inst.shape


def test_a_file_no_decoder_can_read_fails_naming_its_syntax():
    # pydicom's JPEG-lossy.dcm: a misplaced marker that libjpeg and Pillow both refuse.
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    inst = read_instance(get_testdata_file("JPEG-lossy.dcm"))
    with pytest.raises(ValueError, match="cannot decode JPEG Extended"):
        _pixels(inst)


def test_a_syntax_without_a_decoder_is_skipped_with_its_name(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: nothing decodes it
    ds.PixelData = pydicom.encaps.encapsulate([ds.PixelData])
    ds.save_as(tmp_path / "mpeg.dcm")
    reason = read_instance(str(tmp_path / "mpeg.dcm"))
    assert isinstance(reason, str) and "MPEG2" in reason and "1.2.840.10008.1.2.4.100" in reason


def test_legacy_converted_multi_frame_files_give_the_same_volumes(cohort):
    from highdicom.legacy import LegacyConvertedEnhancedMRImage

    logging.getLogger("highdicom").setLevel(logging.ERROR)
    root, reference = cohort
    (root / "legacy").mkdir()
    for n, (uid, datasets) in enumerate(series_datasets(root / "raw").items()):
        frames = LegacyConvertedEnhancedMRImage(
            datasets, uid, n + 1, generate_uid(), 1
        )  # one file per series, as Siemens XA and Philips export
        frames.save_as(root / "legacy" / f"series{n}")  # no extension, as archives often have
    same_volumes(root, reference, "legacy")


def enhanced_dwi(path: Path, b_values=(0.0, 800.0)) -> np.ndarray:
    """A hand-built Enhanced MR DWI: 6 slices x 2 b-values in one file, b per frame in the
    MR Diffusion functional group, rescale in the shared Pixel Value Transformation group."""
    rng = np.random.default_rng(0)
    stacks = rng.integers(0, 3000, (len(b_values), 6, 16, 12)).astype(np.uint16)
    base = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds = Dataset()
    for keyword in ("PatientID", "StudyInstanceUID", "Modality", "Manufacturer"):
        setattr(ds, keyword, base.get(keyword, "X"))
    ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_MR, generate_uid()
    ds.SeriesInstanceUID, ds.SeriesDescription = generate_uid(), "ep2d_diff"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = 16, 12, stacks.shape[0] * stacks.shape[1]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([Dataset()])
    shared.PixelMeasuresSequence[0].PixelSpacing = [2.0, 2.0]
    shared.PixelMeasuresSequence[0].SliceThickness = 4.0
    shared.PlaneOrientationSequence = Sequence([Dataset()])
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PixelValueTransformationSequence = Sequence([Dataset()])
    shared.PixelValueTransformationSequence[0].RescaleSlope = 2.0
    shared.PixelValueTransformationSequence[0].RescaleIntercept = 0.0
    shared.PixelValueTransformationSequence[0].RescaleType = "US"
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for b in b_values:
        for k in range(stacks.shape[1]):
            item = Dataset()
            item.PlanePositionSequence = Sequence([Dataset()])
            item.PlanePositionSequence[0].ImagePositionPatient = [0.0, 0.0, 4.0 * k]
            item.MRDiffusionSequence = Sequence([Dataset()])
            item.MRDiffusionSequence[0].DiffusionBValue = b
            item.FrameContentSequence = Sequence([Dataset()])
            item.FrameContentSequence[0].InStackPositionNumber = k + 1
            per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = stacks.tobytes()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return stacks


def test_an_enhanced_dwi_splits_into_one_volume_per_frame_b_value(tmp_path):
    stacks = enhanced_dwi(tmp_path / "dwi.dcm")
    groups = scan([tmp_path]).groups
    assert [g.b_value for g in groups] == [0.0, 800.0]
    for group, stack in zip(groups, stacks, strict=True):
        assert not group.error, group.error
        volume = load_volume(group)
        assert volume.array.shape == (12, 16, 6)  # (columns, rows, slices)
        np.testing.assert_array_equal(volume.array, stack.transpose(2, 1, 0) * 2.0)
        assert volume.spacing == pytest.approx((2.0, 2.0, 4.0))


def test_an_enhanced_file_compressed_still_reads(tmp_path):
    stacks = enhanced_dwi(tmp_path / "dwi.dcm")
    ds = pydicom.dcmread(tmp_path / "dwi.dcm")
    ds.compress(JPEGLSLossless)
    (tmp_path / "jls").mkdir()
    ds.save_as(tmp_path / "jls" / "dwi.dcm")
    groups = scan([tmp_path / "jls"]).groups
    np.testing.assert_array_equal(load_volume(groups[1]).array, stacks[1].transpose(2, 1, 0) * 2.0)


def test_non_image_objects_and_dicomdir_are_skipped_with_a_reason(tmp_path):
    sr = read_instance(get_testdata_file("test-SR.dcm"))
    assert isinstance(sr, str) and sr.startswith("not an image") and "SR" in sr
    folder = Path(get_testdata_file("DICOMDIR", read=False)).parent
    shutil.copy(folder / "DICOMDIR", tmp_path / "DICOMDIR")
    reason = read_instance(str(tmp_path / "DICOMDIR"))
    assert isinstance(reason, str) and "DICOMDIR" in reason
    pdf = copy.deepcopy(pydicom.dcmread(get_testdata_file("MR_small.dcm"), stop_before_pixels=True))
    for keyword in ("Rows", "Columns"):
        delattr(pdf, keyword)
    pdf.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"  # Encapsulated PDF Storage
    pdf.save_as(tmp_path / "report.dcm")
    reason = read_instance(str(tmp_path / "report.dcm"))
    assert "Encapsulated PDF" in reason


def test_jpeg_baseline_8_bit_monochrome_decodes_as_pillow_reads_it(tmp_path):
    """JPEG baseline is lossy: the reference is what Pillow decodes from the same codestream
    (decoders may round the inverse DCT differently, by one grey level)."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    rng = np.random.default_rng(1)
    plane = (rng.random((32, 40)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(plane).save(buf, format="JPEG", quality=90)
    reference = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.Rows, ds.Columns = plane.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "baseline.dcm")
    inst = read_instance(str(tmp_path / "baseline.dcm"))
    assert not isinstance(inst, str), inst
    decoded = _pixels(inst).astype(int)
    assert decoded.shape == reference.shape
    assert np.abs(decoded - reference).max() <= 1
