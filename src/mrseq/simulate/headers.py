"""Vendor-style DICOM headers: descriptions, ImageType, sequence tags, and their failures.

10-15 % of descriptions are wrong or empty, as in real archives; the model never reads them,
but the header hints (and the disagreement report) must cope.
"""

from __future__ import annotations

SIEMENS, GE, PHILIPS, CANON = (
    "SIEMENS",
    "GE MEDICAL SYSTEMS",
    "Philips Medical Systems",
    "Canon Medical Systems",
)
WRONG_DESCRIPTION_P = 0.12
_PLANE = {
    SIEMENS: {"axial": "tra", "sagittal": "sag", "coronal": "cor"},
    GE: {"axial": "Ax", "sagittal": "Sag", "coronal": "Cor"},
    PHILIPS: {"axial": "ax", "sagittal": "sag", "coronal": "cor"},
    CANON: {"axial": "AX", "sagittal": "SAG", "coronal": "COR"},
}
_T2 = {SIEMENS: "t2_tse_{p}", GE: "{p} T2 FRFSE", PHILIPS: "T2W_TSE_{p}", CANON: "T2 FSE {p}"}
_FS = {
    SIEMENS: {
        "spair": "t2_tse_spair_{p}",
        "spir": "t2_tse_fs_{p}",
        "stir": "t2_tirm_{p}",
        "dixon": "t2_tse_dixon_{p}_W",
    },
    GE: {
        "spair": "{p} T2 FRFSE FS",
        "spir": "{p} T2 FSE FatSat",
        "stir": "{p} STIR",
        "dixon": "{p} T2 IDEAL WATER",
    },
    PHILIPS: {
        "spair": "T2W_SPAIR_{p}",
        "spir": "T2W_SPIR_{p}",
        "stir": "T2W_STIR_{p}",
        "dixon": "T2W_mDIXON_W_{p}",
    },
    CANON: {
        "spair": "T2 FSE FatSat {p}",
        "spir": "T2 FSE FS {p}",
        "stir": "STIR {p}",
        "dixon": "T2 Dixon Water {p}",
    },
}
_DWI = {SIEMENS: "ep2d_diff_b{b}_tra", GE: "Ax DWI b{b}", PHILIPS: "DWI_b{b}", CANON: "DWI b={b}"}
_ADC = {
    SIEMENS: "ep2d_diff_b{b}_tra_ADC",
    GE: "ADC (10^-6 mm2/s)",
    PHILIPS: "dADC_ax",
    CANON: "ADC map",
}
_CALC = {
    SIEMENS: "ep2d_diff_tra_CALC_BVAL",
    GE: "Ax DWI b{b} CALC",
    PHILIPS: "cDWI_b{b}",
    CANON: "cDWI b={b}",
}
_OTHER = {
    "localiser": {SIEMENS: "localizer", GE: "3-Plane Loc", PHILIPS: "Survey", CANON: "Locator"},
    "t1_tse": {
        SIEMENS: "t1_tse_{p}",
        GE: "{p} T1 FSE",
        PHILIPS: "T1W_TSE_{p}",
        CANON: "T1 FSE {p}",
    },
    "dce": {
        SIEMENS: "t1_vibe_fs_{p}_dyn",
        GE: "{p} DCE LAVA",
        PHILIPS: "DCE_THRIVE_{p}",
        CANON: "Dynamic T1 {p}",
    },
    "t1_post_fs": {
        SIEMENS: "t1_vibe_fs_{p}_post",
        GE: "{p} T1 FS POST",
        PHILIPS: "T1W_FS_post_{p}",
        CANON: "T1 FS post {p}",
    },
    "subtraction": {
        SIEMENS: "t1_vibe_fs_{p}_dyn_SUB",
        GE: "{p} DCE SUB",
        PHILIPS: "DCE_SUB_{p}",
        CANON: "Subtraction",
    },
    "eadc": {SIEMENS: "ep2d_diff_{p}_EADC", GE: "Ax eADC", PHILIPS: "eADC_{p}", CANON: "eADC"},
    "t2_map": {SIEMENS: "t2_map_{p}", GE: "{p} T2 Map", PHILIPS: "T2_map_{p}", CANON: "T2 map {p}"},
}
_GRADIENT_ECHO = ("localiser", "dce", "t1_post_fs", "subtraction")
_TYPE = {
    "t2": ("ORIGINAL", "PRIMARY", "M", "NORM"),
    "dwi": ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"),
    "calc": ("DERIVED", "PRIMARY", "DIFFUSION", "CALC_BVALUE", "TRACEW"),
    "adc": ("DERIVED", "PRIMARY", "DIFFUSION", "ADC"),
    "localiser": ("ORIGINAL", "PRIMARY", "M", "NORM"),
    "t1_tse": ("ORIGINAL", "PRIMARY", "M", "NORM"),
    "dce": ("ORIGINAL", "PRIMARY", "M", "NORM"),
    "t1_post_fs": ("ORIGINAL", "PRIMARY", "M", "NORM"),
    "subtraction": ("DERIVED", "PRIMARY", "SUBTRACTION"),
    "eadc": ("DERIVED", "PRIMARY", "DIFFUSION", "EADC"),
    "t2_map": ("DERIVED", "PRIMARY", "T2 MAP"),
}
_MODEL = {
    SIEMENS: ("Skyra", "Aera", "Prisma"),
    GE: ("Discovery MR750", "SIGNA Premier"),
    PHILIPS: ("Ingenia", "Achieva"),
    CANON: ("Vantage Orian",),
}


def description(rng, vendor: str, kind: str, plane: str, fs: str | None, b: str) -> str:
    """The vendor's usual description, or (sometimes) an empty or misleading one."""
    p = _PLANE[vendor][plane]
    table = {"t2": _T2[vendor], "dwi": _DWI[vendor], "adc": _ADC[vendor], "calc": _CALC[vendor]}
    table |= {other: names[vendor] for other, names in _OTHER.items()}
    text = _FS[vendor][fs] if kind == "t2" and fs else table[kind]
    if rng.random() < WRONG_DESCRIPTION_P:
        text = str(
            rng.choice(
                [
                    "",
                    "Series",
                    "prostate",
                    _T2[vendor],
                    _FS[vendor]["spair"],
                    _DWI[vendor],
                    _ADC[vendor],
                ]
            )
        )
    return text.format(p=p, b=b)


def series_tags(
    rng, study: dict, vendor: str, field: float, kind: str, fs: str | None, tr: float, te: float
) -> dict:
    """Tags shared by every instance of one series (besides UIDs and description)."""
    diffusion = kind in ("dwi", "calc", "adc", "eadc")
    scanning = "EP" if diffusion else ("IR" if fs == "stir" else "SE")
    if kind in _GRADIENT_ECHO:
        scanning = "GR"
    if vendor == GE and diffusion:
        scanning = "EP\\SE"
    options = ""
    if fs in ("spair", "spir") and rng.random() < 0.8:
        options = "FS" if vendor != GE else "FC\\FS"
    if diffusion and rng.random() < 0.5:
        options = "FS"  # DWI is always fat-suppressed; some vendors say so
    tags = {
        **study,
        "Manufacturer": vendor,
        "ManufacturerModelName": str(rng.choice(_MODEL[vendor])),
        "MagneticFieldStrength": f"{field:g}",
        "ImageType": list(_TYPE[kind]),
        "ScanningSequence": scanning,
        "SequenceVariant": "SK\\SP" if not diffusion else "SK\\SP\\OSP",
        "ScanOptions": options or None,
        "RepetitionTime": f"{tr:.0f}",
        "EchoTime": f"{te:.1f}",
        "BodyPartExamined": "PROSTATE",
    }
    if fs == "stir":
        tags["InversionTime"] = f"{(180 if field > 2 else 150):.0f}"
    return tags


def b_text(values: list[float]) -> str:
    return "_".join(f"{v:g}" for v in values)
