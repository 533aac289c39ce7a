"""Shared fixtures: tiny synthetic DICOM series written with mrseq's own writer."""

from __future__ import annotations

import numpy as np
import pytest

from mrseq.dicom_write import Geometry, SeriesToWrite, new_uid, write_series

AXIAL = (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
SAGITTAL = (np.array([0, 1.0, 0]), np.array([0, 0, -1.0]))


def make_series(
    folder,
    stacks=None,
    b_values=(None,),
    b_style=None,
    orientation=AXIAL,
    spacing=(0.7, 0.8, 3.0),
    slope=1.0,
    intercept=0.0,
    **tags,
):
    """Write a small series; returns (paths, stacks, tags)."""
    rng = np.random.default_rng(len(str(folder)))
    if stacks is None:
        stacks = [rng.integers(0, 3000, (12, 10, 6)) for _ in b_values]
    geo = Geometry(np.array([-20.0, -30.0, 10.0]), *orientation, spacing)
    base = dict(
        PatientID="P1",
        StudyInstanceUID=new_uid(),
        SeriesInstanceUID=new_uid(),
        SeriesDescription="t2_tse_tra",
        Manufacturer="SIEMENS",
        ScanningSequence="SE",
        FrameOfReferenceUID=new_uid(),
    )
    base.update(tags)
    series = SeriesToWrite(list(stacks), geo, base, list(b_values), b_style, slope, intercept)
    return write_series(folder, series), stacks, base


@pytest.fixture
def series_factory(tmp_path):
    counter = iter(range(1000))

    def factory(**kw):
        return make_series(tmp_path / "dicom" / f"s{next(counter)}", **kw)

    return factory
