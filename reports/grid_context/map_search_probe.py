"""Probe for the next session (2026-12-07, twelfth session), no model change: could the diffusion
pairs find the ADC map themselves instead of needing a volume read as ADC?

In every grid group of three or more volumes, for every ordered triple (c, a, m): is
log(S_a / S_m) a line in c, as `mrseq.predict._dwi_pair` tests it with c as the map? Prints
the passing triples by the true kinds of c, a and m. On the seed 9100 cohort
(`map_search_seed9100.txt`): ADC c with two DWI 76, eADC c with two DWI 12 (the pair is still
two DWI; the map is not ADC), and 5 false pairs: a subtraction c with two DCE phases 2, a DWI
c 3. At DWI_PAIR_NO_MAP's stricter thresholds (adopted for groups with no map reading):
ADC c 65, eADC c 2, nothing else.

Usage: PYTHONPATH=src:reports/grid_context python reports/grid_context/map_search_probe.py \
    PREDICTIONS.csv INTERIM OUT.csv
"""

import sys
from pathlib import Path

import pandas as pd
from dwi_pairs_probe import fit, kind

from mrseq.evaluate import _grid_key, _pixels
from mrseq.ingest import load_saved_volume
from mrseq.predict import DWI_PAIR, DWI_PAIR_NO_MAP, _groups


def main() -> None:
    d = pd.read_csv(sys.argv[1])
    interim = Path(sys.argv[2])
    rows = list(d.itertuples())
    pixels, grids = _pixels(interim, rows), []
    for r in rows:
        array, affine = load_saved_volume(interim / r.file)
        grids.append(_grid_key(r, array.shape, affine))
    out = []
    for members in (g for g in _groups(grids) if len(g) >= 3):
        for c in members:
            for a in (a for a in members if a != c):
                for m in (m for m in members if m not in (a, c)):
                    stats = fit(pixels(c).ravel(), pixels(a), pixels(m))
                    if stats:
                        out.append(dict(c=kind(d, c), a=kind(d, a), m=kind(d, m), **stats))
    o = pd.DataFrame(out)
    o.to_csv(sys.argv[3], index=False)
    for name, e in (("DWI_PAIR", DWI_PAIR), ("DWI_PAIR_NO_MAP", DWI_PAIR_NO_MAP)):
        ok = (o.r2_adc >= e["r2"]) & (o.beta.abs() <= e["beta"]) & (o.gap.abs() >= e["gap"])
        short = o[ok][["c", "a", "m"]].apply(
            lambda col: col.str.replace("DWI_.*", "DWI", regex=True)
        )
        print(f"{name}: {len(o)} triples, {int(ok.sum())} pass")
        print(short.value_counts().to_string())


if __name__ == "__main__":
    main()
