"""Options declared once: a dataclass field carries its flag, help, choices and bounds as metadata.

``TrainConfig`` (training), ``TranslateOptions``, ``ExportOptions`` (deploy) and ``EvaluateOptions``
(evaluation) are declared with ``option``; the command line generates its flags from them
(``cyclegan_keras.cli.flags``) and ``check_options`` holds a value from Python or a JSON file to the
same rules. This module imports no TensorFlow and no Keras (the command line's help reads it).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import field
from typing import Any

from cyclegan_keras.errors import UsageError

# Bounds a number may have (``option``'s rules): ``minimum`` and ``maximum`` include their value,
# ``above`` and ``below`` exclude it.
BOUNDS = ("minimum", "maximum", "above", "below")


def option(default: Any, help: str, group: str | None = None, **rules: Any) -> Any:
    """A dataclass field with its command-line description.

    Args:
        default: the default value.
        help: the ``--help`` text.
        group: the ``--help`` section, where a command has sections (``train``: ``data``, ``model``,
            ``optimisation``, ``run``).
        **rules: ``choices`` (allowed values), ``minimum``/``maximum`` (the smallest and largest allowed
            number), ``above``/``below`` (bounds that the number must stay strictly within), ``exclusive``
            (fields sharing this name cannot be given together), ``one_required`` (with ``exclusive``:
            one of them must be given), ``required`` (the flag must be given), ``positional`` (an
            argument without a flag) with ``nargs``, ``resume_applies`` (the flag may change a run that
            ``--resume`` continues; every other flag that differs from the run's own setting is refused
            there), ``metavar``, ``flag`` (the option's name, when it is not the field's),
            ``off_flag`` (a second flag that turns a boolean off), ``official`` (the official code's
            option: the README's table and ``--help`` name it), ``formats`` (export formats the option
            applies to).
    """
    return field(default=default, metadata={"help": help, "group": group, **rules})


def flag_of(spec: dataclasses.Field) -> str:
    """The command-line flag of a declared field."""
    return spec.metadata.get("flag", "--" + spec.name.replace("_", "-"))


def declared(options: type) -> list[dataclasses.Field]:
    """The fields of a dataclass that are options (declared with ``option``)."""
    return [spec for spec in dataclasses.fields(options) if "help" in spec.metadata]


def value_type(options: type, spec: dataclasses.Field) -> type:
    """The type of a field's values (``int`` for ``int | None``)."""
    hint = typing.get_type_hints(options)[spec.name]
    return next(kind for kind in typing.get_args(hint) or (hint,) if kind is not type(None))


def within(value: float, **bounds: float | None) -> bool:
    """Whether ``value`` is a finite number within ``bounds`` (``BOUNDS``' keywords)."""
    if not math.isfinite(value):
        return False
    minimum, maximum = bounds.get("minimum"), bounds.get("maximum")
    above, below = bounds.get("above"), bounds.get("below")
    return not (
        (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
        or (above is not None and value <= above)
        or (below is not None and value >= below)
    )


def range_text(kind: type, **bounds: float | None) -> str:
    """What ``within`` accepts, in words: ``a positive integer``, ``a finite number from 0 to 1``, ..."""
    noun = "an integer" if kind is int else "a finite number"
    if kind is int and bounds.get("minimum") == 1 and not any(bounds.get(k) for k in BOUNDS[1:]):
        return "a positive integer"
    parts = [
        f"{word} {bounds[key]}"
        for key, word in (("minimum", ">="), ("above", ">"), ("maximum", "<="), ("below", "<"))
        if bounds.get(key) is not None
    ]
    return noun + (" " + " and ".join(parts) if parts else "")


def check_choice(key: str, value: Any, choices) -> Any:
    """Returns ``value`` if it is one of ``choices``, else raises a ``UsageError`` that lists them."""
    if value not in choices:
        raise UsageError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_setting(spec: dataclasses.Field, value: Any, hint: Any) -> None:
    """Refuses a setting of the wrong type, outside its choices or its bounds (NaN and infinities
    included), naming the field and its flag: Python and JSON files get the flags' rules."""
    rules = spec.metadata
    name = f"{spec.name} ({flag_of(spec)})"
    kinds = typing.get_args(hint) or (hint,)
    if value is None:
        if type(None) in kinds:
            return
        raise UsageError(f"{name} needs a value, got null")
    kind = next(k for k in kinds if k is not type(None))
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    fits = {
        bool: isinstance(value, bool),
        int: number and isinstance(value, int),
        float: number,
        str: isinstance(value, str),
    }.get(kind, True)
    bounds = {key: rules[key] for key in BOUNDS if key in rules}
    if kind in (int, float) and fits and not within(value, **bounds):
        fits = False
    if not fits:
        wanted = {bool: "true or false", str: "a string"}.get(kind) or range_text(kind, **bounds)
        raise UsageError(f"{name} must be {wanted}, got {value!r}")
    if "choices" in rules:
        check_choice(spec.name, value, rules["choices"])


def check_options(options: Any) -> None:
    """``check_setting`` for every declared field of a dataclass instance."""
    hints = typing.get_type_hints(type(options))
    for spec in declared(type(options)):
        check_setting(spec, getattr(options, spec.name), hints[spec.name])
