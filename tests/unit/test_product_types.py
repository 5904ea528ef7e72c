"""The product type read off the titles of a catalogue that has no category column."""

from __future__ import annotations

from recsys.cli.importing import format_report
from recsys.data.adapters import import_generic
from recsys.data.product_types import infer_product_types

BRANDS = ["Alfa", "Bravo", "Carlo", "Delta", "Echo", "Fox"]
COLOURS = ["Red", "Blue", "Green", "Black"]
SIZES = ["Small", "Medium", "Large"]


def _titles() -> list[str]:
    titles = []
    for b in BRANDS:
        for c in COLOURS[:2]:
            titles.append(f"{b} Unisex {c} Printed Trolley Bag")
        for c in COLOURS:  # the colour last, nothing after it: it varies between identical titles
            titles.append(f"{b} Steel Water Bottle {c} 750")  # and a number: skipped
        for s in SIZES:
            titles.append(f"{b} Women Cotton Kurta {s}")
        # the head before a joining word
        titles += [
            f"{b} Cotton Kurta with Dupatta",
            f"{b} Trolley Bag with Tag",
            f"{b} Water Bottle with Lid",
        ]
        titles += [f"{b} Rose Perfume {n} ml" for n in (50, 100)]  # a unit after a number
        titles.append(f"{b} Wheat Pasta - Family Pack")  # a detail after the separator
    titles += ["Hand-carved Walnut Chessboard", "Alfa Unisex Red Printed Trolley Bag"]  # one title twice
    return titles


def test_a_shared_head_is_a_type_and_colours_sizes_numbers_are_not():
    titles = _titles()
    inferred = infer_product_types(titles)
    got = dict(zip(titles, inferred.types))
    assert got["Carlo Unisex Blue Printed Trolley Bag"] == "Bag"
    # the colour, last but varying between otherwise identical titles, is no type
    assert got["Delta Steel Water Bottle Green 750"] == "Bottle"
    assert got["Echo Women Cotton Kurta Large"] == "Kurta"
    assert got["Fox Cotton Kurta with Dupatta"] == "Kurta"
    assert got["Bravo Rose Perfume 100 ml"] == "Perfume"
    assert got["Echo Wheat Pasta - Family Pack"] == "Pasta"
    assert got["Hand-carved Walnut Chessboard"] == ""  # no word shared: no type, not a guess
    assert inferred.n_types == 5
    assert inferred.coverage == (len(titles) - 1) / len(titles)
    # titles are counted once: four ids of one name make no type
    assert infer_product_types(["Lone Chessboard"] * 4 + ["Zed Lamp", "Kay Lamp"]).n_types == 0


def test_titles_in_scripts_with_combining_marks_and_without_words():
    # Devanagari and Tamil write vowel signs as combining marks: the word is read whole
    hindi = ["लाल सूती कुर्ता", "नीला सूती कुर्ता", "हरा रेशमी कुर्ता", "पीला कुर्ता"]
    assert list(infer_product_types(hindi).types) == ["कुर्ता"] * 4
    tamil = ["நீல பருத்தி சட்டை", "சிவப்பு சட்டை", "கருப்பு பட்டு சட்டை"]
    assert list(infer_product_types(tamil).types) == ["சட்டை"] * 3
    # Chinese titles have no spaces: one word each, none shared, no type (not a guess)
    assert infer_product_types(["红色棉质T恤", "蓝色棉质T恤", "绿色棉质T恤"]).n_types == 0
    # blanks, missing values, numbers, emoji: no type, no error
    odd = ["", None, float("nan"), "123", "😀", "Red Bag 😀", "Blue Bag", "Tan Bag"]
    assert list(infer_product_types(odd).types) == [""] * 5 + ["Bag"] * 3


def _catalogue(tmp_path, with_category: bool = False):
    rows = ["sku,name,price" + (",dept" if with_category else "")]
    for i, t in enumerate(_titles()):
        rows.append(f"s{i},{t},9.5" + (",Home" if with_category else ""))
    path = tmp_path / "products.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_without_a_category_column_stores_and_reports_the_inferred_type(tmp_path):
    ds = import_generic(_catalogue(tmp_path), None)
    cat = ds.catalog.set_index("title")["category"]
    assert cat["Fox Steel Water Bottle Black 750"] == "Bottle"
    assert cat["Hand-carved Walnut Chessboard"] == ""
    assert ds.summary()["categories"] == 5
    notes = ds.report.reading["catalog"]
    assert notes["category"].startswith("inferred from title: 5 types, 99% of items")
    assert "category (inferred from title: 5 types, 99% of items)" in notes["mapping"]
    assert "category: inferred from title: 5 types" in format_report(ds)
    # with an events file too: the catalogue's titles, said on the catalogue's notes
    events = tmp_path / "events.csv"
    events.write_text("session,sku\n1,s0\n1,s1\n2,s2\n")
    ds = import_generic(_catalogue(tmp_path), events)
    assert (
        ds.summary()["categories"] == 5 and "inferred from title" in ds.report.reading["catalog"]["category"]
    )
    # too few titles to share a word: no category, and the note says why
    (tmp_path / "two.csv").write_text("sku,name\na,Walnut Chessboard\nb,Brass Lamp\n")
    ds = import_generic(tmp_path / "two.csv", None)
    assert (ds.catalog["category"] == "").all()
    assert ds.report.reading["catalog"]["category"].startswith("none: the file has no category column")


def test_the_opt_out_and_a_column_of_ones_own(tmp_path):
    path = _catalogue(tmp_path)
    for ds in (
        import_generic(path, None, {"category": "-"}),  # the command line's --map category=-
        import_generic(path, None, infer_category=False),  # the Data page's "none"
    ):
        assert (ds.catalog["category"] == "").all() and "category" not in ds.report.reading["catalog"]
    ds = import_generic(path, None, {"price": "category"})  # a column of one's own instead
    assert set(ds.catalog["category"]) == {"9.5"} and "category" not in ds.report.reading["catalog"]


def test_a_catalogue_with_a_category_column_is_untouched(tmp_path):
    ds = import_generic(_catalogue(tmp_path, with_category=True), None, {"dept": "category"})
    assert set(ds.catalog["category"]) == {"Home"} and "category" not in ds.report.reading["catalog"]
    ds = import_generic(_catalogue(tmp_path, with_category=True), None, {"dept": "-"})
    assert (ds.catalog["category"] != "").sum() > 0  # the column left out: the titles' type again
