import pytest
from pydicom.dataset import Dataset

from mrseq.dicom_write import _set_b_value
from mrseq.sequences import CLASSES, UNKNOWN, b_value, header_hint, label_for_b_value


def ds(**tags) -> Dataset:
    d = Dataset()
    for k, v in tags.items():
        setattr(d, k, v)
    return d


def test_classes_are_the_papers_five():
    assert CLASSES == ("T2WI_nan", "T2WI_fs", "DWI_Low", "DWI_High", "ADC")


@pytest.mark.parametrize(
    "b, label", [(0, "DWI_Low"), (499.9, "DWI_Low"), (500, "DWI_High"), (2000, "DWI_High")]
)
def test_b_value_boundary(b, label):
    assert label_for_b_value(b) == label


@pytest.mark.parametrize(
    "style, tag",
    [("standard", "(0018,9087)"), ("siemens", "siemens"), ("ge", "ge"), ("philips", "philips")],
)
def test_b_value_read_from_each_vendor_tag(style, tag):
    d = ds(SeriesDescription="x")
    _set_b_value(d, 800, style)
    value, where = b_value(d)
    assert value == 800
    assert where.startswith(tag)


def test_ge_b_value_offset_removed_and_first_value_used():
    d = ds()
    block = d.private_block(0x0043, "GEMS_PARM_01", create=True)
    block.add_new(0x39, "IS", ["1000001400", "8", "0", "0"])
    assert b_value(d)[0] == 1400
    block.add_new(0x39, "IS", ["50", "8", "0", "0"])  # some exports omit the offset
    assert b_value(d)[0] == 50


def test_no_b_value_anywhere():
    assert b_value(ds(SeriesDescription="t2_tse_tra")) == (None, "")


def hint(**tags):
    return header_hint(ds(**tags))


def test_hint_for_every_class_and_unknown():
    assert hint(SeriesDescription="t2_tse_tra", ScanningSequence="SE").label == "T2WI_nan"
    assert hint(SeriesDescription="t2_tse_tra", ScanOptions="FS").label == "T2WI_fs"
    assert hint(SeriesDescription="t2_tirm_tra", ScanningSequence="IR").label == "T2WI_fs"
    assert hint(SeriesDescription="Ax T2 IDEAL WATER").label == "T2WI_fs"
    for word in ("spair", "SPIR", "stir", "FatSat", "fs", "Dixon Water"):
        assert hint(SeriesDescription=f"T2 {word} ax").label == "T2WI_fs", word
    low = ds(SeriesDescription="ep2d_diff")
    _set_b_value(low, 50, "siemens")
    assert header_hint(low).label == "DWI_Low"
    high = ds(SeriesDescription="")
    _set_b_value(high, 1400, "philips")
    assert header_hint(high).label == "DWI_High"
    assert hint(ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]).label == "ADC"
    assert hint(SeriesDescription="dADC_ax").label == "ADC"
    unknown = hint(SeriesDescription="Series")
    assert unknown.label == UNKNOWN and unknown.reason


def test_eadc_is_not_adc():
    h = hint(ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "EADC"], SeriesDescription="EADC")
    assert h.label != "ADC"


def test_diffusion_without_b_value_is_unknown_with_reason():
    h = hint(SeriesDescription="ep2d_diff_tra", ScanningSequence="EP")
    assert h.label == UNKNOWN and "b-value" in h.reason
