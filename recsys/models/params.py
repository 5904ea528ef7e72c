"""The one declaration and the one check of every model family's parameters.

A family lists its parameters once, in ``param_specs`` (name -> :class:`Param`:
kind, allowed range or values, default). :class:`recsys.models.base.ItemModel`
derives ``default_params`` and ``param_choices`` from it, and
:func:`check_params` refuses a bad value with one message shape whatever the
family::

    content: parameter 'dropout' must be a number in [0, 1), got 1.5

Rules that tie two parameters together (``min_alpha <= alpha``) stay in the
family's ``_check_together``; they raise :class:`~recsys.errors.ModelFitError`
too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.errors import ModelFitError

__all__ = ["Param", "check_params", "check_value", "with_defaults"]

#: the kinds of parameter a family can declare
KINDS = ("int", "float", "bool", "choice", "int_list", "text", "any")


@dataclass(frozen=True)
class Param:
    """One parameter of a model family.

    Parameters
    ----------
    default : object
        The value used when the parameter is not given.
    kind : {"int", "float", "bool", "choice", "int_list", "text", "any"}
        ``"int_list"``: an integer or a list of integers (each in the range), checked
        to a list; ``"text"``: a string; ``"any"``: not checked here (the family's
        ``_check_together`` does).
    low, high : float, optional
        The allowed range (ints and floats; each item of an int list).
    low_open, high_open : bool
        Exclude the bound itself (``low_open=True``: must be > low).
    choices : tuple
        The allowed values of a ``"choice"`` parameter.
    optional : bool
        None is allowed too.
    """

    default: Any
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Param kind must be one of {KINDS}, got {self.kind!r}")

    def describe(self) -> str:
        """What the parameter accepts, in words ("an integer >= 1", "a number in [0, 1)")."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "text":
            text = "a string"
        elif self.kind == "any":
            text = "any value"
        else:
            noun = {"int": "an integer", "float": "a finite number", "int_list": "a list of integers"}[
                self.kind
            ]
            text = noun + self._range()
        return text + (" or None" if self.optional else "")

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f" in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f" {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f" {'<' if self.high_open else '<='} {_num(self.high)}"
        return ""

    def _in_range(self, v: float) -> bool:
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return not (self.high is not None and (v > self.high or (self.high_open and v == self.high)))

    def coerce(self, value: Any) -> Any:
        """The value as the family uses it (ints as int, floats as float, an int list as a
        list); raises ValueError when it is not allowed."""
        if value is None and self.optional:
            return None
        if self.kind == "any":
            return value
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
        elif self.kind == "choice":
            if any(_same(value, c) for c in self.choices):
                return value
        elif self.kind == "text":
            if isinstance(value, str):
                return value
        elif self.kind == "int":
            if _is_int(value) and self._in_range(value):
                return int(value)
        elif self.kind == "float":
            if _is_number(value) and math.isfinite(value) and self._in_range(value):
                return float(value)
        elif self.kind == "int_list":
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            if items and all(_is_int(v) and self._in_range(v) for v in items):
                return [int(v) for v in items]
        raise ValueError(self.describe())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _is_int(v: Any) -> bool:
    return not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer))


def _is_number(v: Any) -> bool:
    return not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, float, np.integer, np.floating))


def _same(value: Any, choice: Any) -> bool:
    """``value == choice`` of the same kind (True never stands for 1, nor "1" for 1)."""
    if choice is None:
        return value is None
    if isinstance(choice, (bool, np.bool_)):
        return isinstance(value, (bool, np.bool_)) and bool(value) == bool(choice)
    if isinstance(choice, str):
        return isinstance(value, str) and value == choice
    if isinstance(choice, (int, np.integer)):
        return _is_int(value) and value == choice
    return isinstance(value, type(choice)) and value == choice


def check_value(owner: str, name: str, spec: Param, value: Any) -> Any:
    """One parameter checked: its value as used, or :class:`ModelFitError` naming the
    family (``owner``), the parameter and what it accepts."""
    try:
        return spec.coerce(value)
    except ValueError:
        raise ModelFitError(f"{owner}: parameter '{name}' must be {spec.describe()}, got {value!r}") from None


def check_params(owner: str, specs: Mapping[str, Param], params: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter of ``params`` checked against its :class:`Param`.

    Returns
    -------
    dict
        ``params`` with each value as the family uses it (see :meth:`Param.coerce`).

    Raises
    ------
    ModelFitError
        ``"<family>: parameter '<name>' must be <what it accepts>, got <value>"``, for the
        first bad value in declaration order; or a name that is not declared.
    """
    unknown = sorted(set(params) - set(specs))
    if unknown:
        allowed = ", ".join(sorted(specs)) or "none"
        raise ModelFitError(f"{owner}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
    out = dict(params)
    for name, spec in specs.items():
        if name in params:
            out[name] = check_value(owner, name, spec, params[name])
    return out


def with_defaults(specs: Mapping[str, Param], defaults: Mapping[str, Any]) -> dict[str, Param]:
    """``specs`` with the defaults taken from ``defaults`` (a family whose defaults are a
    tuned table kept elsewhere, e.g. Prod2Vec's)."""
    from dataclasses import replace

    missing = sorted(set(specs) ^ set(defaults))
    if missing:
        raise ValueError(f"specs and defaults differ in: {', '.join(missing)}")
    return {name: replace(specs[name], default=value) for name, value in defaults.items()}
