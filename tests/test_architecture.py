"""The house rules of the package (issue 38): its public API does not change unnoticed, files of earlier
versions still load, the registries drive what they claim to, and the rooms stay small and acyclic."""

import argparse
import ast
import dataclasses
import json
import pathlib

import keras
import numpy as np
import pytest
import tomllib

import cyclegan_keras
from cyclegan_keras.cli import build_parser

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "cyclegan_keras"
DATA = REPO / "tests" / "data"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _public_api() -> dict:
    from cyclegan_keras.deploy.formats import FORMATS
    from cyclegan_keras.run import checkpoint, folder, lock
    from cyclegan_keras.training.config import TrainConfig

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    flags = {
        name: sorted(
            s for a in sub._actions for s in (a.option_strings or [a.dest]) if s not in ("-h", "--help")
        )
        for name, sub in commands.choices.items()
    }
    layout = [folder.CONFIG_FILE, folder.CHECKPOINTS, checkpoint.LATEST, checkpoint.STATE, checkpoint.KEYED,
              lock.LOCK_FILE]  # fmt: skip
    return {
        "names": sorted(cyclegan_keras.__all__),
        "cli": flags,
        "config": [spec.name for spec in dataclasses.fields(TrainConfig)],
        "formats": {name: entry.suffix for name, entry in FORMATS.items()},
        "run_folder": layout,
    }


def test_the_public_api_is_what_it_was():
    """Names, commands and flags, config keys, formats and the run folder's names: a change to any of them
    is a change to users' scripts, so it must be made here on purpose (add, don't rename)."""
    recorded = json.loads((DATA / "public_api.json").read_text())
    assert _public_api() == recorded
    for name in cyclegan_keras.__all__:
        assert getattr(cyclegan_keras, name).__doc__ or name.isupper(), f"{name} has no docstring"


def test_files_of_the_first_release_load(tmp_path):
    """A generator saved by version 0.1 (modules in one folder) loads with safe_mode and computes what
    it did; a whole CycleGAN's config of 0.1 (the model, its optimizers) deserialises."""
    generator = keras.models.load_model(DATA / "generator_0.1.keras", safe_mode=True)
    photo = np.random.default_rng(0).uniform(-1, 1, (1, 12, 12, 3)).astype("float32")
    np.testing.assert_allclose(generator(photo), np.load(DATA / "generator_0.1_output.npy"), atol=1e-6)
    config = json.loads((DATA / "cyclegan_0.1_config.json").read_text())
    assert config["module"] == "cyclegan_keras.model"  # the old module, which no longer exists
    with keras.saving.custom_object_scope({}):
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert isinstance(model, cyclegan_keras.CycleGAN)
    assert type(model.generator_optimizer).__name__ == "OfficialAdam"


def test_a_format_is_one_module_and_one_registry_entry(tiny_generator_file, tmp_path, monkeypatch):
    """The command line's choices are the registry's; an entry (here with a module outside the package)
    is all that ``export_generator`` and ``load_runner`` need to write, verify and run a format."""
    from cyclegan_keras.deploy import formats
    from cyclegan_keras.deploy.export import export_generator
    from cyclegan_keras.deploy.runners import load_runner

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    choices = {a.dest: a.choices for a in commands.choices["export"]._actions}
    assert tuple(choices["format"]) == tuple(formats.FORMATS)
    assert tuple(choices["quantize"]) == formats.QUANTIZATIONS
    entry = formats.Format("keras_copy", ".kcopy", "a .keras file by another name",
                           module_name="tests.keras_copy_format")  # fmt: skip
    monkeypatch.setitem(formats.FORMATS, entry.name, entry)
    out = tmp_path / "g.kcopy"
    result = export_generator(tiny_generator_file, "keras_copy", out, input_size=16, verbose=False)
    assert out.is_file() and result.max_abs_error == 0.0
    photo = np.random.default_rng(1).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_runner(out)(photo), load_runner(tiny_generator_file)(photo))


def test_a_generator_architecture_is_one_registry_entry(monkeypatch):
    """``generator``, the training settings' check and the official loader read the registry: a new depth
    of a family is one entry."""
    from cyclegan_keras import generator, official_keys
    from cyclegan_keras.errors import UsageError
    from cyclegan_keras.networks.architectures import GENERATORS, Architecture

    monkeypatch.setitem(
        GENERATORS, "resnet_2blocks", Architecture("resnet", 2, parameters=0, size_multiple=4)
    )
    model = generator("resnet_2blocks", ngf=4)
    assert sum(layer.name.endswith("_conv_1") for layer in model.layers) == 2
    assert {"model.11.conv_block.5", "model.19"} <= set(official_keys(model).values())  # block 2, the output
    with pytest.raises(UsageError, match="generator must be one of"):
        generator("resnet_3blocks")


def test_the_names_the_docs_show_exist():
    """Every ``cyclegan_keras.<module>.<name>`` in the README, the docs and the notebooks resolves."""
    import importlib
    import re

    texts = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "notebooks").glob("*.ipynb")]
    shown = {m for path in texts for m in re.findall(r"cyclegan_keras(?:\.[A-Za-z_]\w*)+", path.read_text())}
    shown |= {
        f"{module}.{name.strip()}"
        for path in texts
        for module, names in re.findall(r"from (cyclegan_keras[\w.]*) import ([\w, ]+)", path.read_text())
        for name in names.split(",")
        if name.strip()
    }
    missing = []
    for dotted in sorted(shown):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                value = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                value = getattr(value, attribute, None)
            if value is None:
                missing.append(dotted)
            break
    assert not missing, missing


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: pathlib.Path, modules: dict) -> set[str]:
    """The package's modules that ``path`` imports when it runs (in functions too; not the names it
    imports only for type checking)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cyclegan_keras"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
    return found


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    done, path = set(), []

    def visit(name):
        if name in path:
            cycle = path[path.index(name) :] + [name]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if name in done:
            return
        path.append(name)
        for other in sorted(graph[name] & modules.keys()):
            visit(other)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_modules_and_functions_stay_small():
    too_long = []
    for name, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"module {name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"function {name}.{node.name}: {lines} lines")
    assert not too_long, too_long


def test_every_subpackage_is_installed():
    """A subpackage missing from pyproject's list would be missing from a wheel (not from a clone)."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(REPO).parent.parts) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
