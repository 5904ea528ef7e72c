"""Agreement of the product types inferred from titles with real categories, hidden.

Each catalogue that has both product names and a category is imported through the project's
own import path with its category left out of the inference (``recsys.data.product_types``
sees the titles only); the inferred types are then scored against the real category:

- ``coverage``: share of items given a type;
- ``ami``: adjusted mutual information between the inferred types and the real categories on
  the items given a type; ``ami_all``: the same on every item, the untyped ones as one more
  cluster (what a category filter or a same-category rule sees);
- ``purity``: share of the typed items whose type's most common real category is theirs.

Catalogues: BigBasket (``type``, 426 values), Instacart's products (the aisle, 134), the demo
(its leaf category; and its ``product_type``, the title's noun, as a second truth). REES46 has
no product names (its importer writes titles from the brand and the category itself), so it is
left out with that reason. Myntra has no category: its types are printed for reading.

``--grid`` scores every setting of the grid below and names the one whose worst catalogue
(ami_all) is best: a setting must hold on every catalogue, never on one alone.

Prints one JSON line.

    .venv/bin/python bench/product_types.py [--grid] [--myntra-out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.data.product_types import (  # noqa: E402
    MAX_WORDS,
    MIN_TITLES,
    VARIANT_SHARE,
    infer_product_types,
)

SHARED = ROOT.parent / "shared" / "datasets"
#: Searched in two stages: the reading (cut, variant words) at the middle thresholds, then the
#: thresholds with the best reading; the grid's 48 settings at once took too long at this load.
STAGE_1 = {
    "min_titles": [5],
    "max_words": [2],
    "variant_share": [0.5, 2.0],
    "cut": [True, False],
}  # 2.0: none
STAGE_2 = {"min_titles": [3, 5, 10, 20], "max_words": [1, 2, 3]}
#: Then, at the best two thresholds, the variant words and the joining words ("with") on and off.
STAGE_3 = {"variant_share": [0.5, 2.0], "connectives": [False, True]}


def catalogues() -> dict[str, tuple[pd.Series, pd.Series]]:
    """name -> (titles, real category) for the catalogues that have both."""
    from recsys.data.adapters import import_generic, import_instacart
    from recsys.data.synthetic import generate_demo

    out: dict[str, tuple[pd.Series, pd.Series]] = {}
    bb = SHARED / "bigbasket_products" / "BigBasket Products.csv"
    if bb.exists():
        ds = import_generic(
            bb,
            None,
            {"index": "item_id", "category": "-", "sub_category": "-"},
            name="bigbasket",
            infer_category=False,
        )
        out["bigbasket_type"] = (ds.catalog["title"], ds.catalog["type"].fillna("").astype(str))
    ic = SHARED / "instacart_sample"
    if ic.exists():
        ds = import_instacart(ic, name="instacart")
        out["instacart_aisle"] = (ds.catalog["title"], ds.catalog["category"].str.split(" > ").str[-1])
    demo = generate_demo(n_items=20000, n_sequences=10, seed=0).catalog
    out["demo_leaf"] = (demo["title"], demo["category"].str.split(" > ").str[-1])
    out["demo_product_type"] = (
        demo["title"],
        demo["leaf_type"] if "leaf_type" in demo else demo["product_type"],
    )
    return out


def score(types: pd.Series, truth: pd.Series) -> dict[str, float]:
    from sklearn.metrics import adjusted_mutual_info_score

    keep = (truth != "").to_numpy()
    types, truth = types[keep], truth[keep]
    typed = (types != "").to_numpy()
    t, y = types[typed].to_numpy(), truth[typed].to_numpy()
    purity = (
        pd.DataFrame({"t": t, "y": y}).groupby("t")["y"].agg(lambda s: s.value_counts().iloc[0]).sum()
        / len(t)
        if len(t)
        else 0.0
    )
    return {
        "coverage": round(float(typed.mean()), 4),
        "ami": round(float(adjusted_mutual_info_score(y, t)), 4) if len(t) else 0.0,
        "ami_all": round(
            float(adjusted_mutual_info_score(truth.to_numpy(), types.where(typed, "(none)").to_numpy())), 4
        ),
        "purity": round(float(purity), 4),
        "n_types": int(pd.Series(t).nunique()),
        "n_real": int(truth.nunique()),
    }


def search(cats: dict[str, tuple[pd.Series, pd.Series]], grid: dict[str, list]) -> list[dict]:
    """Every setting of ``grid`` scored on every catalogue, best first by the worst catalogue's
    ami_all (the demo's product_type, the title's own noun, is shown but not used to choose)."""
    rows = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values))
        per = {name: score(infer_product_types(x, **setting).types, y) for name, (x, y) in cats.items()}
        real = [per[n]["ami_all"] for n in per if n != "demo_product_type"]
        rows.append(
            {
                **setting,
                "worst_ami_all": min(real),
                "mean_ami_all": round(float(np.mean(real)), 4),
                "per": per,
            }
        )
    rows.sort(key=lambda r: (-r["worst_ami_all"], -r["mean_ami_all"]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--grid", action="store_true", help="score the whole grid and pick by the worst catalogue"
    )
    ap.add_argument(
        "--stage-3-only", action="store_true", help="only the third stage, at min_titles 3 and 5, one word"
    )
    ap.add_argument(
        "--myntra-out", help="write Myntra's types (the 20 largest, 20 random titles) to this file"
    )
    args = ap.parse_args()
    cats = catalogues()
    result: dict = {
        "skipped": {
            "rees46_category_code": "no product names: the importer writes titles from brand and category"
        }
    }
    default = {"min_titles": MIN_TITLES, "max_words": MAX_WORDS, "variant_share": VARIANT_SHARE, "cut": True}
    result["defaults"] = default
    t0 = time.perf_counter()
    result["scores"] = {
        name: score(infer_product_types(x, **default).types, y) for name, (x, y) in cats.items()
    }
    result["seconds_defaults_all"] = round(time.perf_counter() - t0, 2)
    if args.stage_3_only:
        result["grid_stage_3"] = search(
            cats, {"min_titles": [3, 5], "max_words": [1], "cut": [True], **STAGE_3}
        )
    if args.grid:
        result["grid_stage_1"] = search(cats, STAGE_1)
        best = {k: v for k, v in result["grid_stage_1"][0].items() if k in ("variant_share", "cut")}
        result["grid_stage_2"] = search(cats, {**STAGE_2, **{k: [v] for k, v in best.items()}})
        top = result["grid_stage_2"][:2]
        result["grid_stage_3"] = [
            row
            for t in top
            for row in search(
                cats,
                {"min_titles": [t["min_titles"]], "max_words": [t["max_words"]], "cut": [True], **STAGE_3},
            )
        ]
        result["grid_stage_3"].sort(key=lambda r: (-r["worst_ami_all"], -r["mean_ami_all"]))
    my = SHARED / "myntra_products" / "myntra_products_catalog.csv"
    if my.exists():
        from recsys.data.adapters import import_generic

        ds = import_generic(my, None, infer_category=False)
        inferred = infer_product_types(ds.catalog["title"], **default)
        result["myntra"] = {"coverage": round(inferred.coverage, 4), "n_types": inferred.n_types}
        if args.myntra_out:
            lines = ["20 largest types:"]
            lines += [
                f"  {n:5d}  {t}"
                for t, n in inferred.types[inferred.types != ""].value_counts().head(20).items()
            ]
            lines.append("20 random titles (seed 0) -> type:")
            pick = ds.catalog.sample(20, random_state=0).index
            lines += [f"  {ds.catalog.at[i, 'title']} -> {inferred.types[i] or '(none)'}" for i in pick]
            Path(args.myntra_out).write_text("\n".join(lines) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
