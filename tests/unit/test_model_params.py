"""One parameter declaration per family, one check, one message shape; unknown families."""

from __future__ import annotations

import math

import pytest

from recsys.errors import ModelFitError, RecsysError, UnknownFamilyError
from recsys.models import FAMILIES, get_model_class, make_model, validate_params
from recsys.models.params import Param, check_params


def _bad_value(spec: Param) -> object:
    """A value the spec refuses (None where it is not optional)."""
    if spec.kind == "bool":
        return 1  # not a bool
    if spec.kind == "choice":
        return "no-such-choice"
    if spec.kind == "text":
        return 5
    if spec.kind in ("int", "int_list"):
        if spec.low is not None:
            return int(spec.low) - 1
        return 1.5
    if spec.low is not None:  # float
        return spec.low - 1.0 if not spec.low_open else spec.low
    if spec.high is not None:
        return spec.high + 1.0
    return math.inf


CASES = [
    (family, name)
    for family in FAMILIES
    for name, spec in get_model_class(family).param_specs.items()
    if spec.kind != "any"
]


def test_every_family_declares_its_parameters_and_their_defaults_pass():
    for family in FAMILIES:
        cls = get_model_class(family)
        assert cls.param_specs, f"{family} declares no parameters"
        assert cls.default_params == {n: s.default for n, s in cls.param_specs.items()}
        assert validate_params(family, {}) == {}
        # every declared choice is offered by the forms
        for name, spec in cls.param_specs.items():
            if spec.kind == "choice" and isinstance(spec.default, str):
                assert cls.param_choices[name] == spec.choices


@pytest.mark.parametrize(("family", "name"), CASES)
def test_a_bad_value_names_the_family_the_parameter_and_what_it_accepts(family, name):
    spec = get_model_class(family).param_specs[name]
    bad = _bad_value(spec)
    with pytest.raises(ModelFitError) as info:
        validate_params(family, {name: bad})
    assert str(info.value) == f"{family}: parameter '{name}' must be {spec.describe()}, got {bad!r}"


def test_descriptions_give_the_range_with_open_and_closed_bounds():
    assert Param(1, "int", low=1).describe() == "an integer >= 1"
    assert Param(0.1, "float", low=0, high=1, high_open=True).describe() == "a finite number in [0, 1)"
    assert Param(0.5, "float", low=0, high=1, low_open=True).describe() == "a finite number in (0, 1]"
    assert Param(None, "int", low=2, optional=True).describe() == "an integer >= 2 or None"
    assert Param("a", "choice", choices=("a", "b")).describe() == "one of 'a', 'b'"


def test_values_at_the_bounds_and_of_near_kinds():
    specs = {
        "share": Param(0.1, "float", low=0, high=0.5, high_open=True),
        "n": Param(1, "int", low=1),
        "flag": Param(True, "bool"),
        "mode": Param(0, "choice", choices=(0, 1)),
        "units": Param([8], "int_list", low=1),
    }
    ok = check_params("fam", specs, {"share": 0, "n": 1, "flag": False, "mode": 1, "units": 4})
    assert ok == {"share": 0.0, "n": 1, "flag": False, "mode": 1, "units": [4]}
    assert isinstance(ok["share"], float)
    for bad in ({"share": 0.5}, {"share": float("nan")}, {"n": True}, {"n": 2.0}, {"flag": "yes"}):
        with pytest.raises(ModelFitError, match=f"fam: parameter '{next(iter(bad))}'"):
            check_params("fam", specs, bad)
    with pytest.raises(ModelFitError, match="'mode'"):
        check_params("fam", specs, {"mode": True})  # True is not the choice 1
    with pytest.raises(ModelFitError, match="'units'"):
        check_params("fam", specs, {"units": [8, 0]})
    with pytest.raises(ModelFitError, match="fam: unknown parameter.*nope"):
        check_params("fam", specs, {"nope": 1})


def test_rules_tying_parameters_together_still_apply():
    with pytest.raises(ModelFitError, match="prod2vec: parameter 'min_alpha' must be <= alpha"):
        validate_params("prod2vec", {"alpha": 0.01, "min_alpha": 0.02})
    with pytest.raises(ModelFitError, match="tfidf: .*must be > 0"):
        validate_params("tfidf", {"title_weight": 0, "brand_weight": 0, "category_weight": 0})
    with pytest.raises(ModelFitError, match="popularity: parameter 'event_weights'"):
        validate_params("popularity", {"event_weights": {"view": -1}})


def test_an_unknown_family_is_a_clear_bad_request_not_a_key_error():
    for call in (lambda: get_model_class("word2vec"), lambda: make_model("word2vec"),
                 lambda: validate_params("word2vec", {})):  # fmt: skip
        with pytest.raises(UnknownFamilyError) as info:
            call()
        err = info.value
        assert isinstance(err, ModelFitError) and isinstance(err, RecsysError)
        assert str(err).startswith("unknown model family 'word2vec'; choose one of: popularity,")
        assert not isinstance(err, KeyError)


def test_a_subclass_that_lists_only_default_params_still_fits_its_values_unchecked():
    from recsys.models.base import EmbeddingModel

    class Plain(EmbeddingModel):
        family = "plain"
        default_params = {"n": 3}

        def fit(self, dataset, progress=None):  # pragma: no cover - not called
            return self

    assert Plain(n="anything")._validate() == {"n": "anything"}
    with pytest.raises(ModelFitError, match="plain: unknown parameter"):
        Plain(m=1)
