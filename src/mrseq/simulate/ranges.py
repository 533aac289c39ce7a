"""Every randomised nuisance of the simulator and its range: the one options module.

SynthSeg's lesson (Billot et al., 2023): a network trained only on synthetic images works on
real scans when every nuisance is drawn from ranges far wider than any one site shows, at every
draw, so no domain repeats. What defines a class stays exact and is *not* in this table: T2
weighting with or without fat suppression, the b-value band (< 500 or >= 500 s/mm2), and an ADC
map being a fitted diffusion coefficient (fluid brightest, restricted tissue dark).

The README's randomisation table is `markdown_table()` of this module (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    scale: str  # "lin" (uniform) or "log" (log-uniform)
    what: str
    realistic: str  # the range one real site shows, for comparison

    def draw(self, rng: np.random.Generator, size=None):
        if self.scale == "log":
            return np.exp(rng.uniform(np.log(self.low), np.log(self.high), size))
        return rng.uniform(self.low, self.high, size)


R = Range
RANGES: dict[str, Range] = {
    # anatomy (per patient)
    "anatomy_scale": R(0.8, 1.25, "lin", "whole-pelvis size factor", "0.9-1.1"),
    "prostate_ml": R(15, 200, "log", "prostate volume, mL", "20-80"),
    "warp_mm": R(2, 10, "lin", "smooth deformation amplitude, mm", "-"),
    "texture": R(0.01, 0.12, "lin", "proton-density texture amplitude", "~0.03"),
    "clutter": R(0, 5, "lin", "extra blobs of random tissue (count)", "0"),
    "offset_mm": R(0, 20, "lin", "anatomy offset from the field centre (sd), mm", "~5"),
    # tissue parameters (per patient and tissue, on top of literature ranges)
    "t1_factor": R(0.7, 1.4, "log", "T1 multiplier per tissue", "0.95-1.05"),
    "t2_factor": R(0.6, 1.6, "log", "T2 multiplier per tissue", "0.9-1.1"),
    "adc_factor": R(0.6, 1.5, "log", "ADC multiplier per non-fluid tissue", "0.9-1.1"),
    "fluid_adc_factor": R(0.85, 1.15, "lin", "ADC multiplier for urine and fluids", "0.95-1.05"),
    "pd_factor": R(0.8, 1.2, "lin", "proton density multiplier per tissue", "0.95-1.05"),
    "fat_t2": R(80, 180, "lin", "apparent fat T2 on TSE (J-coupling), ms", "100-140"),
    "perfusion": R(0.0, 0.25, "lin", "IVIM perfusion fraction", "0.03-0.12"),
    # T2 turbo spin echo (per series)
    "t2_te": R(70, 160, "lin", "TE, ms (STIR: 30-90)", "90-120"),
    "t2_tr": R(2000, 9000, "lin", "TR, ms", "3000-6000"),
    "t2_pixel": R(0.35, 1.4, "log", "acquired in-plane pixel, mm", "0.5-0.8"),
    "t2_thickness": R(2.0, 6.0, "lin", "slice thickness, mm", "3-3.6"),
    "t2_snr": R(6, 80, "log", "SNR in bright tissue (x0.6 at 1.5 T)", "20-40"),
    "fs_residual": R(
        0.005, 0.4, "log", "fat left after spectral suppression (fraction)", "0.03-0.15"
    ),
    "fs_edge_fail": R(0.0, 1.2, "lin", "extra residual towards the field edge", "0.3-0.9"),
    "fs_gas_fail": R(0.0, 0.8, "lin", "extra residual next to rectal gas", "0.2-0.6"),
    # diffusion EPI (per series)
    "dwi_te": R(50, 120, "lin", "TE, ms", "60-90"),
    "dwi_tr": R(2000, 10000, "lin", "TR, ms", "3000-8000"),
    "dwi_pixel": R(1.0, 3.5, "log", "acquired in-plane pixel, mm", "1.6-2.5"),
    "dwi_thickness": R(2.5, 6.0, "lin", "slice thickness, mm", "3-4"),
    "dwi_snr": R(5, 60, "log", "b=0 SNR (x0.6 at 1.5 T); high b has the same sigma", "15-30"),
    "dwi_fat": R(0.003, 0.3, "log", "residual fat in DWI (fraction)", "0.01-0.06"),
    "fat_shift_px": R(0, 10, "lin", "chemical-shift displacement of that fat, pixels", "2-6"),
    "epi_shift_px": R(0.1, 3.0, "lin", "smooth EPI distortion, pixels", "0.5-2"),
    "epi_gas_px": R(0.0, 8.0, "lin", "EPI distortion at rectal gas, pixels", "1-5"),
    "nyquist_ghost": R(0.0, 0.08, "lin", "N/2 ghost level", "0.005-0.04"),
    "b_high_max": R(2000, 3000, "lin", "largest high b (very high b, noise floor)", "1400-2000"),
    # non-target series (per series): T1 TSE, T1 gradient echo (DCE, post-contrast), maps
    "t1_tr": R(350, 900, "lin", "T1 TSE TR, ms", "450-700"),
    "t1_te": R(6, 20, "lin", "T1 TSE TE, ms", "8-15"),
    "gre_tr": R(2.5, 8.0, "lin", "T1 gradient-echo TR, ms", "3-5"),
    "gre_te": R(1.0, 3.5, "lin", "T1 gradient-echo TE, ms", "1.2-2.5"),
    "gre_flip": R(8, 30, "lin", "T1 gradient-echo flip angle, degrees", "10-15"),
    "gre_pixel": R(0.6, 2.2, "log", "T1 gradient-echo acquired pixel, mm", "0.9-1.5"),
    "gre_thickness": R(1.0, 5.0, "lin", "T1 gradient-echo slice thickness, mm", "1.5-3"),
    "other_snr": R(5, 60, "log", "SNR of a non-target series", "15-40"),
    "gd_dose": R(0.6, 1.5, "lin", "gadolinium dose and cardiac output factor", "0.9-1.1"),
    "gd_uptake": R(0.5, 2.0, "log", "gadolinium uptake multiplier per tissue", "0.8-1.2"),
    "t2_map_max": R(300, 3000, "log", "T2 map clip, ms", "500-2000"),
    # acquisition and reconstruction (per series)
    "recon_factor": R(1.0, 2.2, "lin", "zero-filled interpolation factor", "1-2"),
    "apodisation": R(0.0, 0.8, "lin", "k-space Hann blend (0: Gibbs ringing)", "0-0.4"),
    "coils": R(1, 4, "lin", "receive channels (noise: Rician to non-central chi)", "1-3"),
    "g_factor": R(0.0, 0.6, "lin", "parallel-imaging noise amplification", "0-0.3"),
    "motion": R(0.0, 0.12, "lin", "share of phase-encode lines with motion errors", "0-0.06"),
    "spike": R(0.0, 1.0, "lin", "k-space spike (probability 0.08), relative strength", "-"),
    "bias": R(0.0, 0.5, "lin", "coil sensitivity amplitude (log field sd)", "0.2"),
    "shading": R(0.0, 0.45, "lin", "3 T dielectric shading depth", "0.05-0.3"),
    "endorectal_gain": R(0.5, 6.0, "lin", "endorectal coil hot spot (probability 0.2)", "1-4"),
    # storage (per series)
    "stored_peak": R(200, 30000, "log", "99.9th percentile stored value", "600-4000"),
    "slope": R(0.2, 5.0, "log", "RescaleSlope (in 35 % of series, any vendor)", "Philips 1.2-4"),
    "adc_max": R(2500, 5000, "lin", "ADC clip, 1e-6 mm2/s", "3000-4095"),
    "adc_background": R(
        0.03, 0.15, "lin", "S0 threshold below which background is zeroed", "~0.08"
    ),
}
# Discrete choices drawn per series (listed in the README under the table).
CHOICES = {
    "adc_fit": "log-linear over all b / b >= 50-200 only (IVIM-free) / two-point",
    "adc_fill": "background zeroed / left noisy / filled with the clip value",
    "adc_units": "1e-6 mm2/s integers / 1e-5 mm2/s integers / rescaled to 1e-3 mm2/s / to mm2/s",
    "bit_depth": "12-bit or 16-bit stored pixels",
    "b_low": "any b in 0-499 (common values or continuous)",
    "b_high": "any b in 500-b_high_max (common values or continuous), calculated b 1000-3000",
    "dwi_plane": "axial 90 %, coronal or sagittal 10 %",
    "other_series": "non-target series per study: localiser, T1 TSE, DCE (2-4 phases, one "
    "series or one per phase), post-contrast T1 FS, subtraction, eADC, T2 map (held out)",
}


def draw(rng: np.random.Generator, name: str, size=None):
    return RANGES[name].draw(rng, size)


def markdown_table() -> str:
    lines = ["| factor | drawn range | scale | one real site |", "|---|---|---|---|"]
    for r in RANGES.values():
        lines.append(f"| {r.what} | {r.low:g}-{r.high:g} | {r.scale} | {r.realistic} |")
    lines += [f"| {k} | {v} | choice | - |" for k, v in CHOICES.items()]
    return "\n".join(lines)
