"""Every flag of every command refuses a value it cannot take in one line, exit status 2, before any
work; and a run's config.json is held to the same rules. The cases are generated from the declared
options, so a new flag is covered without a new test."""

import argparse
import dataclasses
import json
import math
import typing

import pytest

from cyclegan_keras.cli import build_parser, main
from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import BOUNDS
from cyclegan_keras.training.config import TrainConfig, config_from_json


def _commands():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices


def _wrong_values(action) -> list[str]:
    if action.choices is not None:
        return ["not-a-choice"]
    convert = action.type
    if not hasattr(convert, "bounds"):
        return []
    values = ["x", "nan", "inf"] + (["2.5"] if convert.kind is int else [])
    step = 1 if convert.kind is int else 0.5
    for key, value in convert.bounds.items():
        outside = {"minimum": value - step, "maximum": value + step, "above": value, "below": value}[key]
        values.append(str(outside))
    return values


CASES = [
    (command, action.option_strings[0], value)
    for command, sub in _commands().items()
    for action in sub._actions
    if action.option_strings
    for value in _wrong_values(action)
]


def test_every_typed_flag_is_covered():
    flags = {(command, flag) for command, flag, _ in CASES}
    # The flags the hostile cases were found with, among all the others.
    for expected in [("train", "--lambda-identity"), ("train", "--lr"), ("train", "--beta1"),
                     ("train", "--ngf"), ("serve", "--port"), ("translate", "--tile"),
                     ("evaluate", "--size"), ("export", "--format")]:  # fmt: skip
        assert expected in flags
    assert len(CASES) > 150


@pytest.mark.parametrize(("command", "flag", "value"), CASES, ids=[f"{c} {f} {v}" for c, f, v in CASES])
def test_a_wrong_value_is_one_line_and_exit_2(command, flag, value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([command, f"{flag}={value}", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(err) == 1 and flag in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "out").exists()


def _wrong_settings(spec, kind) -> list:
    values = {bool: ["yes", 1], int: [2.5, "3", True], float: ["x", math.nan, math.inf], str: [5, ["a"]]}[
        kind
    ]
    bounds = {key: spec.metadata[key] for key in BOUNDS if key in spec.metadata}
    if kind in (int, float):
        step = 1 if kind is int else 0.5
        values += [
            {"minimum": v - step, "maximum": v + step, "above": v, "below": v}[k] for k, v in bounds.items()
        ]
    return values


SETTINGS = []
for _spec in dataclasses.fields(TrainConfig):
    if "help" not in _spec.metadata:
        continue
    _kinds = typing.get_args(typing.get_type_hints(TrainConfig)[_spec.name]) or (
        typing.get_type_hints(TrainConfig)[_spec.name],
    )
    _kind = next(k for k in _kinds if k is not type(None))
    SETTINGS += [(_spec.name, value) for value in _wrong_settings(_spec, _kind)]
    if type(None) not in _kinds:
        SETTINGS.append((_spec.name, None))


@pytest.mark.parametrize(("name", "value"), SETTINGS, ids=[f"{n}={v!r}" for n, v in SETTINGS])
def test_config_json_settings_get_the_flags_rules(name, value):
    saved = json.loads(json.dumps({**dataclasses.asdict(TrainConfig()), name: value}))
    with pytest.raises(UsageError, match=name):
        config_from_json(saved)


@pytest.mark.parametrize("saved", ["[]", "null", '"text"', '{"crop_size": 32'])
def test_a_resumed_run_with_a_damaged_config_is_one_line(saved, tmp_path, capsys):
    from cyclegan_keras.run.checkpoint import save_checkpoint
    from tests.conftest import make_tiny_cyclegan

    out = tmp_path / "run"
    model = make_tiny_cyclegan()
    model.compile()
    model.build((1, 16, 16, 3))
    model.build_optimizers()
    save_checkpoint(model, out / "checkpoints", 1)
    (out / "config.json").write_text(saved)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert "config.json" in err[0] and "another --out" in err[0]
    assert (out / "config.json").read_text() == saved  # left as it was
