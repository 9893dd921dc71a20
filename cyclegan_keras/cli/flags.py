"""Flags generated from declared options (``cyclegan_keras.options``), and the parser's one-line errors."""

from __future__ import annotations

import argparse
import typing

from cyclegan_keras.options import BOUNDS, declared, flag_of, range_text, value_type, within


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, naming the flag and what it takes (the usage
    block that argparse prints first buries it; ``--help`` shows it)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def bounded(kind: type, **bounds: float):
    """An argparse ``type`` that reads an int or a finite float within the bounds (``above`` and
    ``below`` exclude their value, ``minimum`` and ``maximum`` include it)."""
    wanted = range_text(kind, **bounds)

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not within(value, **bounds):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    convert.kind, convert.bounds = kind, bounds  # what the command table test feeds wrong values
    return convert


def add_flags(parser: argparse.ArgumentParser, options: type, *, only_given: bool = False) -> None:
    """One flag (or positional argument) per declared field of ``options``, from its metadata.

    Args:
        parser: the command's parser.
        options: a dataclass declared with ``option``.
        only_given: leave a flag out of the namespace unless it is given (``train``: so that ``--resume``
            can tell a changed setting from the default), instead of the field's default.
    """
    sections: dict[str, argparse._ArgumentGroup] = {}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for spec in declared(options):
        rules = spec.metadata
        target = parser
        if rules["group"] is not None:
            if rules["group"] not in sections:
                sections[rules["group"]] = parser.add_argument_group(rules["group"])
            target = sections[rules["group"]]
        if "exclusive" in rules:
            if rules["exclusive"] not in exclusive:
                required = rules.get("one_required", False)
                exclusive[rules["exclusive"]] = target.add_mutually_exclusive_group(required=required)
            target = exclusive[rules["exclusive"]]
        default = argparse.SUPPRESS if only_given else spec.default
        text = rules["help"] + (f" [official {rules['official']}]" if "official" in rules else "")
        if rules.get("positional"):
            target.add_argument(spec.name, nargs=rules.get("nargs"), metavar=rules.get("metavar"), help=text)
            continue
        kind = value_type(options, spec)
        if kind is bool:
            target.add_argument(
                flag_of(spec), action="store_true", help=text, dest=spec.name, default=default
            )
            if "off_flag" in rules:
                target.add_argument(
                    rules["off_flag"],
                    action="store_false",
                    help=f"the default: no {flag_of(spec)}",
                    dest=spec.name,
                    default=default,
                )
            continue
        if spec.default is not None and "default" not in text:
            text += f" (default: {spec.default})"
        arguments = {"help": text, "metavar": rules.get("metavar"), "choices": rules.get("choices")}
        if kind is not str:
            arguments["type"] = bounded(kind, **{key: rules[key] for key in BOUNDS if key in rules})
        if rules.get("required"):
            arguments["required"] = True
        arguments = {key: value for key, value in arguments.items() if value is not None}
        target.add_argument(flag_of(spec), dest=spec.name, default=default, **arguments)


def options_from(args: argparse.Namespace, options: type) -> dict:
    """The values of ``options``' declared fields in a parsed namespace, by field name."""
    return {spec.name: getattr(args, spec.name) for spec in declared(options) if hasattr(args, spec.name)}
