"""Framework-agnostic inference: a model folder in, one record per volume out.

`Predictor.from_dir` rebuilds preprocessing from model_spec.json alone (never params.yaml).
Evaluation, `mrseq predict` and the TorchServe handler all go through it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mrseq import records as schema
from mrseq.dicom import Volume, header_geometry, load_volume, scan
from mrseq.export import MODEL_FILE, SPEC_FILE
from mrseq.preprocess import PreprocessSpec, preprocess_volume
from mrseq.validate import why_bad_geometry, why_unusable

# A T2-weighted TSE series is one acquisition of its slab and an ADC map one derived image per
# series. A series the reader split into several volumes of one image type (several b-values,
# dynamic phases, or every slice position repeated) is diffusion, dynamic or multi-echo: none of
# these. Volumes that differ in image type (Dixon water/fat, ADC beside trace) are not counted.
ONE_PER_SERIES = ("T2WI_nan", "T2WI_fs", "ADC")
# What is left for such a series is one acquisition: diffusion (each volume its own b-value
# class) or a dynamic / other series. The whole series answers that question once, from the
# evidence of all its volumes, so a low-b volume that alone looks "other" follows its series.
# Each volume's share of a family becomes the series' posterior for it (the product of its
# volumes' family probabilities, normalised): the Bayesian form of "the series decides", which
# keeps its doubt where the volumes disagree (zeroing the losing family overstated confidence:
# ECE 0.085 against 0.076 on the benchmark's repeated series, same answers, 2026-12-06).
SERIES_FAMILIES = (("DWI_Low", "DWI_High"), ("other",))
# Series of one study on exactly one grid (matrix, voxel size, orientation, slice positions) are
# one acquisition stored per b-value, images derived from one (ADC, eADC), or a protocol that
# copies geometry (Dixon water beside in-phase, T1 beside T2, DCE phases). A turbo spin echo T2
# and an EPI diffusion acquisition do not share a grid, so where such a group holds a volume
# read as diffusion, whether the group is T2 is decided once from all its volumes, as the series
# context decides a family: a b=50 series that alone looks like fat-suppressed T2 follows its
# b=1400 and ADC twins. Groups with no diffusion reading (Dixon, T1 beside T2) are left alone.
# Made after reading the benchmark's errors (README, 2026-12-07), so its gain there is not
# clean evidence; not read for it: the test split (2 answers changed, both to right) and a
# cohort simulated afterwards (seed 9000: 13 changed, 9 to right, none to wrong).
GRID_FAMILIES = (("T2WI_nan", "T2WI_fs"), ("DWI_Low", "DWI_High", "ADC", "other"))
DIFFUSION = ("DWI_Low", "DWI_High", "ADC")
# An ADC map is the fit of its own DWI images: voxel by voxel it rises with log(S_low / S_high).
# Where a grid group holds a volume read as low b and another read as high b, the rank
# correlation of each other member with that log ratio (over the brighter 40 % of the low-b
# image) says whether it is this acquisition's ADC map, whatever the vendor's scaling, units,
# clipping or background; an eADC or calculated image falls with it instead. It enters as a
# likelihood ratio on ADC, odds(ADC | rho) / odds(ADC), from a logistic fit on a separately
# seeded cohort (`python bench/adc_evidence.py`, README, 2026-12-07): a no-vendor-trust check.
ADC_EVIDENCE = {"intercept": -2.038, "slope": 6.34, "base_log_odds": 0.615}  # 57 volumes, seed 9100
ADC_FOREGROUND = 60  # percentile of the low-b image above which voxels count
ADC_SAMPLES = 50_000  # voxels per correlation (a fixed stride, reproducible)
# An ADC map also names its own DWI images: for two b-values of one acquisition, voxel by voxel
# log(S_a / S_m) = c + (b_m - b_a) * ADC, and nothing else (S0, the T2 weighting, cancels; c is
# the series' storage scales). Any other image on the grid breaks that: an eADC or a T2 keeps
# S0 (the ratio then also rises with log S_a), a DCE phase or T1 follows contrast, not
# diffusion. So where a grid group holds a volume read as ADC, two other members whose log
# ratio is a line in that map (R2 >= r2 of the line, |coefficient of log S_a| <= beta, with a
# b gap of `gap` s/mm2 or more: low, as the map's unit is a guess that can miss a decade) are
# two DWI images of it, whatever they alone looked like: a whole acquisition read `other` (it
# looked like nothing seen in training) keeps only its DWI_Low / DWI_High shares. Thresholds
# set on a separately seeded cohort (seed 9100: 72 ordered DWI pairs passed, no pair with an
# eADC, DCE phase or anything else; the nearest, a DCE pair, had R2 0.92;
# `reports/grid_context/dwi_pairs_probe.py`) (README, 2026-12-07, twelfth session).
DWI_PAIR = {"r2": 0.95, "beta": 0.15, "gap": 10.0}
# Where no member reads as ADC (the whole acquisition, map included, looked like nothing seen in
# training), every member is tried as the map with a stricter test: on the fit cohort, of 1,318
# such tries 65 passed with an ADC as the map and 2 with an eADC (both times two real DWI
# images), none otherwise; at DWI_PAIR's thresholds two DCE phases passed beside their
# subtraction (`reports/grid_context/map_search_probe.py`). Groups larger than MAP_SEARCH_MAX
# are not searched (the tries grow as n^3; a DWI acquisition on one grid is 2-6 volumes).
DWI_PAIR_NO_MAP = {"r2": 0.98, "beta": 0.1, "gap": 10.0}
MAP_SEARCH_MAX = 8
TISSUE_ADC = (0.3e-3, 2.5e-3)  # mm2/s: fat below (ADC near 0), free water at high b in noise
# The ADC map's unit (vendors store 1e-6, 1e-5, 1e-3 mm2/s or mm2/s) is the decade that puts
# the 90th percentile of its bright voxels here (fat can fill the lower half where a DWI's fat
# suppression is poor, so not the median).
UPPER_ADC = 2.0e-3


def repeated(keys: list) -> np.ndarray:
    """True where a (series UID, image type) key occurs more than once; None never does."""
    counts = Counter(k for k in keys if k is not None)
    return np.array([k is not None and counts[k] > 1 for k in keys], dtype=bool)


def _groups(keys: list) -> list[list[int]]:
    """Indices sharing each key (None is no key), in order of first appearance."""
    out: dict = {}
    for i, k in enumerate(keys):
        if k is not None:
            out.setdefault(k, []).append(i)
    return list(out.values())


def in_series_context(classes: list[str], probs: np.ndarray, keys: list) -> np.ndarray:
    """Probabilities with ONE_PER_SERIES ruled out (and the rest renormalised) for the volumes
    whose series holds another volume of the same image type, then in each such series every
    SERIES_FAMILIES share the series' joint posterior for that family; the others unchanged."""
    probs = np.array(probs, copy=True)
    rows = repeated(keys)
    if not rows.any():
        return probs
    probs[rows] = _without(probs[rows], [classes.index(c) for c in ONE_PER_SERIES if c in classes])
    families = [[classes.index(c) for c in f if c in classes] for f in SERIES_FAMILIES]
    families = [f for f in families if f]
    for members in _groups([k if r else None for k, r in zip(keys, rows, strict=True)]):
        probs[members] = _one_family(probs[members], families)
    return probs


def in_grid_context(classes: list[str], probs: np.ndarray, grids: list, series: list) -> np.ndarray:
    """Probabilities with GRID_FAMILIES decided per group of volumes that share a `grid_key`,
    span two or more series (`series`: their `context_key`s) and hold a diffusion reading."""
    probs = np.array(probs, copy=True)
    families = [[classes.index(c) for c in f if c in classes] for f in GRID_FAMILIES]
    diffusion = [classes.index(c) for c in DIFFUSION if c in classes]
    for members in _groups(grids):
        spanned = {series[i] for i in members if series[i] is not None}
        if len(spanned) > 1 and np.isin(probs[members].argmax(1), diffusion).any():
            probs[members] = _one_family(probs[members], families)
    return probs


def adc_correlations(probs: np.ndarray, classes: list[str], grids: list, array) -> dict:
    """{member: rho} for the members of each grid group that hold a volume read as DWI_Low and
    another read as DWI_High: each other member's rank correlation with log(S_low / S_high),
    the best over the group's high-b readings (none where it is itself the only one).
    `array(i)` gives volume i's pixels (loaded only for such groups)."""
    reads = probs.argmax(1)
    low, high = classes.index("DWI_Low"), classes.index("DWI_High")
    out = {}
    for members in _groups(grids):
        lows = [i for i in members if reads[i] == low]
        highs = [i for i in members if reads[i] == high]
        if not lows or not highs or len(members) < 3:
            continue
        lo = max(lows, key=lambda i: probs[i, low])
        bright = _bright_voxels(array(lo))
        ratios = {k: _log_ratio(array(lo), array(k), bright) for k in highs}
        for m in members:
            others = [k for k in highs if k != m]
            if m != lo and others:
                values = array(m).ravel()[bright]
                out[m] = max(_rank_correlation(values, ratios[k]) for k in others)
    return out


def _bright_voxels(low_b: np.ndarray) -> np.ndarray:
    """Flat indices of the low-b image's brighter voxels, at most ADC_SAMPLES (a fixed stride)."""
    bright = np.flatnonzero(low_b.ravel() > np.percentile(low_b, ADC_FOREGROUND))
    return bright[:: max(1, len(bright) // ADC_SAMPLES)]


def _log_ratio(low_b: np.ndarray, high_b: np.ndarray, bright: np.ndarray) -> np.ndarray:
    """log(low_b / high_b) at `bright`, both floored at 1e-3 of the low-b maximum."""
    floor = np.float32(1e-3 * max(float(np.abs(low_b).max()), 1e-6))
    low, high = low_b.ravel()[bright], high_b.ravel()[bright]
    return np.log(np.maximum(low, floor)) - np.log(np.maximum(high, floor))


def _rank_correlation(values: np.ndarray, ratio: np.ndarray) -> float:
    """Spearman correlation of a member's voxels with the log ratio (0 where either is flat)."""
    from scipy.stats import spearmanr

    if len(values) < 10 or values.std() == 0 or ratio.std() == 0:
        return 0.0
    return float(spearmanr(values, ratio).statistic)


def adc_likelihood_ratio(rho: float) -> float:
    """odds(ADC | rho) / odds(ADC) from ADC_EVIDENCE's logistic fit."""
    e = ADC_EVIDENCE
    return float(np.exp(e["intercept"] + e["slope"] * rho - e["base_log_odds"]))


def in_adc_context(classes: list[str], probs: np.ndarray, grids: list, array) -> np.ndarray:
    """Probabilities with each `adc_correlations` member's ADC odds times its likelihood
    ratio (the rest renormalised); everything else unchanged."""
    probs = np.array(probs, copy=True)
    adc = classes.index("ADC")
    for i, rho in adc_correlations(probs, classes, grids, array).items():
        weights = np.ones(len(classes))
        weights[adc] = adc_likelihood_ratio(rho)
        probs[i] = probs[i] * weights / max(float((probs[i] * weights).sum()), 1e-12)
    return probs


def diffusion_pairs(probs: np.ndarray, classes: list[str], grids: list, array) -> set[int]:
    """Members of the grid groups holding a volume read as ADC that form a DWI_PAIR with another
    member (neither read as ADC; either order passes). `array(i)` gives volume i's pixels."""
    adc = classes.index("ADC")
    reads, out = probs.argmax(1), set()
    for members in _groups(grids):
        maps = [i for i in members if reads[i] == adc]
        if maps:
            best = max(maps, key=lambda i: probs[i, adc])
            tries = [(best, [i for i in members if reads[i] != adc], DWI_PAIR)]
        elif 3 <= len(members) <= MAP_SEARCH_MAX:
            tries = [(c, [i for i in members if i != c], DWI_PAIR_NO_MAP) for c in members]
        else:
            continue
        for c, rest, test in tries:
            out |= _pairs_through(array(c).ravel(), rest, array, test, out)
    return out


def _pairs_through(adc_map: np.ndarray, rest: list[int], array, test: dict, found: set) -> set:
    """The members of `rest` that form a pair (`_dwi_pair` at `test`) through `adc_map`."""
    out = set()
    for a in rest:
        design = _pair_design(adc_map, array(a))  # once per a, whatever m it is tried with
        for m in rest:
            if m != a and not {a, m} <= found | out and _is_pair(design, array(m), test):
                out |= {a, m}
    return out


def _dwi_pair(adc_map: np.ndarray, a: np.ndarray, m: np.ndarray, test: dict = DWI_PAIR) -> bool:
    """True where log(a / m) over a's bright tissue voxels is a line in the ADC map, as `test`
    (DWI_PAIR's keys) says, with no share of log a."""
    return _is_pair(_pair_design(adc_map, a), m, test)


def _pair_design(adc_map: np.ndarray, a: np.ndarray):
    """(a, its bright voxels, which of them are tissue, [1, ADC] and [1, ADC, log a] there) for
    `_is_pair`; None with too few tissue voxels."""
    bright = _bright_voxels(a)
    adc = _tissue_adc(adc_map[bright])
    tissue = np.isfinite(adc)
    if tissue.sum() < 100:
        return None
    floor = 1e-3 * max(float(np.abs(a).max()), 1e-6)
    log_a = np.log(np.maximum(a.ravel()[bright][tissue], floor))
    line = np.column_stack([np.ones(int(tissue.sum())), adc[tissue] * 1e3])  # 1e-3 mm2/s
    return a, bright, tissue, line, np.column_stack([line, log_a])


def _is_pair(design, m: np.ndarray, test: dict) -> bool:
    if design is None:
        return False
    a, bright, tissue, line, both_design = design
    y = _log_ratio(a, m, bright)[tissue]
    both = np.linalg.lstsq(both_design, y, rcond=None)[0]
    residual = y - line @ np.linalg.lstsq(line, y, rcond=None)[0]
    r2 = 1 - float((residual**2).sum()) / max(float(((y - y.mean()) ** 2).sum()), 1e-12)
    e = test
    return r2 >= e["r2"] and abs(float(both[2])) <= e["beta"] and abs(both[1]) * 1e3 >= e["gap"]


def _tissue_adc(values: np.ndarray) -> np.ndarray:
    """ADC map values in mm2/s (the decade UPPER_ADC picks), NaN outside TISSUE_ADC; all NaN
    where too few values are positive to tell the unit."""
    values = values.astype(float)
    positive = values[values > 0]
    if len(positive) < 100:
        return np.full(len(values), np.nan)
    values = values * 10.0 ** np.round(np.log10(UPPER_ADC / np.percentile(positive, 90)))
    return np.where((values > TISSUE_ADC[0]) & (values < TISSUE_ADC[1]), values, np.nan)


def in_pair_context(classes: list[str], probs: np.ndarray, grids: list, array) -> np.ndarray:
    """Probabilities with everything but DWI_Low and DWI_High ruled out (the two renormalised)
    for the `diffusion_pairs` members; everything else unchanged."""
    probs = np.array(probs, copy=True)
    rows = sorted(diffusion_pairs(probs, classes, grids, array))
    if rows:
        keep = [classes.index(c) for c in ("DWI_Low", "DWI_High")]
        probs[rows] = _without(probs[rows], [i for i in range(len(classes)) if i not in keep])
    return probs


def in_contexts(classes: list[str], probs, series: list, grids: list, array) -> list[np.ndarray]:
    """[`in_series_context`, `in_grid_context`, `in_pair_context`, `in_adc_context`], each on
    top of the one before: what every caller (predict, HTTP, classify, evaluation) applies."""
    in_series = in_series_context(classes, probs, series)
    in_grid = in_grid_context(classes, in_series, grids, series)
    in_pairs = in_pair_context(classes, in_grid, grids, array)
    return [in_series, in_grid, in_pairs, in_adc_context(classes, in_pairs, grids, array)]


def grid_key(study_uid: str | None, shape, affine: np.ndarray):
    """(study, matrix, voxel axes and first slice to 0.1 mm): equal for series on one grid;
    None without a study (a bare array or NIfTI upload)."""
    if not study_uid:
        return None
    corner = np.round(np.asarray(affine, dtype=float)[:3, :4], 1) + 0.0  # no -0.0
    return (str(study_uid), tuple(int(n) for n in shape[:3]), tuple(corner.ravel()))


def _one_family(probs: np.ndarray, families: list[list[int]]) -> np.ndarray:
    """A series' volumes with each family's share replaced by the series' posterior for it."""
    shares = np.stack([probs[:, f].sum(axis=1) for f in families], axis=1)
    evidence = np.log(shares + 1e-12).sum(axis=0)  # joint log-likelihood of each family
    posterior = np.exp(evidence - evidence.max())
    posterior /= posterior.sum()
    out = probs.copy()
    for i, f in enumerate(families):
        out[:, f] = probs[:, f] / np.maximum(shares[:, [i]], 1e-12) * posterior[i]
    return out


def _without(probs: np.ndarray, columns: list[int]) -> np.ndarray:
    """Rows with `columns` zeroed and renormalised (a row with nothing left stays as it was)."""
    rest = probs.copy()
    rest[:, columns] = 0
    total = rest.sum(axis=1, keepdims=True)
    return np.where(total > 0, rest / np.maximum(total, 1e-12), probs)


def context_key(volume: Volume | None):
    """The key `in_series_context` groups by: (series UID, image type); None without headers."""
    if volume is None:
        return None
    first = volume.group.instances[0]
    return (first.series_uid, first.image_type)


def volume_grid_key(volume: Volume | None):
    """`grid_key` of a volume read from DICOM; None for bare arrays."""
    if volume is None:
        return None
    return grid_key(volume.group.first.get("StudyInstanceUID"), volume.array.shape, volume.affine)


def _note(classes: list[str], before: np.ndarray, after: np.ndarray, template: str) -> list[str]:
    """[template with {was} and {now} filled] when a context step changed the answer, else []."""
    was, now = classes[int(np.argmax(before))], classes[int(np.argmax(after))]
    return [] if was == now else [template.format(was=was, now=now)]


def grid_note(classes: list[str], before: np.ndarray, after: np.ndarray) -> list[str]:
    """The warning a record carries when the grid context changed its answer."""
    return _note(
        classes,
        before,
        after,
        "another series of its study lies on exactly its grid and reads as diffusion, so T2 or "
        "not is decided with it: {now}, where its series alone said {was}",
    )


def adc_note(classes: list[str], before: np.ndarray, after: np.ndarray) -> list[str]:
    """The warning a record carries when the ADC evidence changed its answer."""
    verb = "rise" if classes[int(np.argmax(after))] == "ADC" else "do not rise"
    return _note(
        classes,
        before,
        after,
        f"on its grid lie a low-b and a high-b image, and its pixels {verb} with their log ratio "
        "as an ADC map's must: {now}, where it read {was}",
    )


def pair_note(classes: list[str], before: np.ndarray, after: np.ndarray) -> list[str]:
    """The warning a record carries when the diffusion pairs changed its answer."""
    return _note(
        classes,
        before,
        after,
        "on its grid lie an ADC map and another image whose log ratio with it is a line in that "
        "map, as for two b-values of one DWI acquisition: {now}, where it read {was}",
    )


def context_note(classes: list[str], alone: np.ndarray, together: np.ndarray) -> list[str]:
    """The warning a record carries when the series context changed its answer."""
    return _note(
        classes,
        alone,
        together,
        "its series holds other volumes of the same slab (b-values, phases or repeats), so it is "
        f"not {'/'.join(ONE_PER_SERIES)} and is read with them: {{now}}, where the volume alone "
        "said {was}",
    )


@dataclass
class Predictor:
    model: torch.jit.ScriptModule
    spec: dict
    preprocess: PreprocessSpec
    classes: list[str]

    @classmethod
    def from_dir(cls, model_dir: str | os.PathLike) -> Predictor:
        folder = Path(model_dir)
        spec_path = folder / SPEC_FILE
        if not spec_path.is_file():
            raise FileNotFoundError(f"no {SPEC_FILE} in {folder}: is this an exported model?")
        spec = json.loads(spec_path.read_text())
        model = torch.jit.load(
            str(folder / spec["model"].get("file", MODEL_FILE)), map_location="cpu"
        )
        model.eval()
        return cls(model, spec, PreprocessSpec.from_dict(spec["preprocessing"]), spec["classes"])

    @property
    def version(self) -> str:
        return f"{self.spec.get('git_revision', 'unknown')[:12]}@{self.spec.get('created', '')}"

    def tensor(self, array: np.ndarray, affine: np.ndarray) -> torch.Tensor:
        return preprocess_volume(array, affine, self.preprocess)

    @torch.no_grad()
    def outputs(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, *shape) preprocessed tensors -> (N, classes) softmax probabilities and (N,)
        feature distances (NaN for a model without the distance gate)."""
        temperature = float(self.spec.get("output", {}).get("temperature", 1.0))
        raw = self.model(batch.float())
        n = len(self.classes)
        probs = torch.softmax(raw[:, :n] / temperature, dim=1).numpy()
        distance = raw[:, n].numpy() if raw.shape[1] > n else np.full(len(probs), np.nan)
        return probs, distance

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        return self.outputs(batch)[0]

    def predict_outputs(self, volumes: list[tuple[np.ndarray, np.ndarray]], batch_size: int = 8):
        """(probabilities, distances) of (array, affine) pairs, as `outputs`."""
        probs, distances = [np.zeros((0, len(self.classes)))], [np.zeros(0)]
        for start in range(0, len(volumes), batch_size):
            chunk = volumes[start : start + batch_size]
            p, d = self.outputs(torch.stack([self.tensor(a, m) for a, m in chunk]))
            probs.append(p)
            distances.append(d)
        return np.concatenate(probs), np.concatenate(distances)

    def predict_arrays(self, volumes: list[tuple[np.ndarray, np.ndarray]], batch_size: int = 8):
        return self.predict_outputs(volumes, batch_size)[0]

    @property
    def unknown_below(self) -> float:
        """Confidence below which the answer is `unknown` (0 for models without the gate)."""
        return float(self.spec.get("output", {}).get("unknown_below", 0.0))

    @property
    def unknown_beyond(self) -> float:
        """Feature distance beyond which the answer is `unknown` (inf without the gate)."""
        return float(self.spec.get("output", {}).get("unknown_beyond", np.inf))

    def gates(self) -> schema.Gates:
        return schema.Gates(self.unknown_below, self.unknown_beyond)

    def record(self, volume: Volume | None, probs: np.ndarray, warnings=None, distance=np.nan):
        return schema.prediction(
            self.classes, probs, volume, warnings, self.version, self.gates(), distance
        )

    def in_context(self, probs: np.ndarray, volumes: list) -> list[np.ndarray]:
        """`in_contexts` (series, grid, diffusion pairs, ADC evidence, each on top of the one
        before) for volumes (mrseq.dicom.Volume, or None for bare arrays)."""
        series = [context_key(v) for v in volumes]
        grids = [volume_grid_key(v) for v in volumes]
        return in_contexts(self.classes, probs, series, grids, lambda i: volumes[i].array)

    def records(self, volumes: list, probs, distances, warnings: list[list[str]]) -> list[dict]:
        """One record per volume, the series and grid contexts, the diffusion pairs and the ADC
        evidence applied (and said where they decided)."""
        steps = self.in_context(probs, volumes)
        notes = (context_note, grid_note, pair_note, adc_note)
        out = []
        for i, (v, d, w) in enumerate(zip(volumes, distances, warnings, strict=True)):
            chain = [probs[i]] + [step[i] for step in steps]
            said = [
                n(self.classes, a, b) for n, a, b in zip(notes, chain[:-1], chain[1:], strict=True)
            ]
            out.append(self.record(v, chain[-1], w + sum(said, []), d))
        return out

    def predict_volumes(self, volumes: list[Volume]) -> list[dict]:
        probs, distances = self.predict_outputs([(v.array, v.affine) for v in volumes])
        return self.records(volumes, probs, distances, [list(v.warnings) for v in volumes])

    def predict_paths(self, paths: list[str | os.PathLike]) -> list[dict]:
        """DICOM files/folders -> one record per volume; problems become warning records."""
        result = scan(paths)
        records = [schema.problem(why, path=path) for path, why in result.skipped.items()]
        volumes = []
        for group in result.groups:
            if group.error:
                records.append(_problem(group, group.error))
                continue
            why = why_bad_geometry(*header_geometry(group))  # before any pixel is decoded
            if why:
                records.append(_problem(group, why))
                continue
            try:
                volume = load_volume(group)
            except Exception as exc:  # one bad series never stops the rest
                records.append(_problem(group, str(exc)))
                continue
            why = why_unusable(volume.array, volume.affine)  # the limits serving applies
            if why:
                records.append(_problem(group, why))
            else:
                volumes.append(volume)
        return self.predict_volumes(volumes) + records


def _problem(group, why: str) -> dict:
    return schema.problem(why, **schema.where(group))


def format_records(records: list[dict], fmt: str = "json") -> str:
    if fmt == "json":
        return "\n".join(json.dumps(r) for r in records)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(schema.FIELDS), extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow(
                {
                    **r,
                    "probabilities": json.dumps(r.get("probabilities")),
                    "warnings": "; ".join(r.get("warnings", [])),
                }
            )
        return buf.getvalue().rstrip("\n")
    return _table(records)


def _table(records: list[dict]) -> str:
    lines = [f"{'label':<9} {'conf':>5} {'header':<9} {'b':>6}  {'description':<28} flag"]
    for r in records:
        flag = "DISAGREES" if r.get("agrees_with_header") is False else ""
        if r.get("label") == "other":
            flag = f"NOT A TARGET SERIES ({r.get('subtype') or 'subtype not in headers'})"
        elif r.get("label") == "unknown":
            flag = "UNKNOWN: " + r["warnings"][-1]
        if r.get("label") is None:
            flag = "ERROR: " + "; ".join(r["warnings"])
        b = r.get("b_value_header")
        lines.append(
            f"{r.get('label') or '-':<9} {r.get('confidence') or 0:>5.2f} "
            f"{r.get('header_hint') or '-':<9} {'' if b is None else f'{b:g}':>6}  "
            f"{(r.get('series_description') or '')[:28]:<28} {flag}"
        )
    return "\n".join(lines)
