"""YAML configs onto dataclasses, with command-line overrides (TRL's ``TrlParser``).

Every config in ``configs/`` mirrors one dataclass field for field. ``TrlParser`` already merges a
YAML file and ``--field value`` overrides onto dataclasses; this module adds errors that name the
file and the key at fault, and overrides of mapping fields (``env_kwargs``), which argparse cannot
parse: ``--env_kwargs '{"reward": "length"}'`` (JSON, replaces the mapping) and ``--env_kwargs.reward_model
path`` (one key, merged into it; the value is read as JSON when it parses, else as text).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit its dataclass."""


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from the YAML file at ``path`` (optional) and CLI-style ``overrides``.

    ``overrides`` are ``["--field", "value", ...]`` as a user types them. Unknown keys in the file or
    the overrides raise :class:`ConfigError` naming them and the file.
    """
    from trl import TrlParser

    args, mapping_edits = _mapping_overrides(cls, list(overrides))
    if path is not None:
        path = Path(path)
        _check_keys(cls, path)
        args = ["--config", str(path), *args]
    parser = TrlParser(dataclass_types=[cls])
    try:
        (config,) = parser.parse_args_and_config(args=args)
    except SystemExit as exc:  # argparse exits on a malformed --flag value, after printing why
        where = f" (config file {path})" if path else ""
        raise ConfigError(f"invalid command-line override in {list(overrides)}{where}: see the message above") from exc
    except ValueError as exc:  # HfArgumentParser: "Some specified arguments are not used …"
        known = sorted(f.name for f in dataclasses.fields(cls))
        raise ConfigError(
            f"unknown command-line override(s) in {list(overrides)} for {cls.__name__}; known: {known}"
        ) from exc
    for name, keys, value in mapping_edits:  # in command-line order: a JSON mapping, then keys on top of it
        if not keys:
            setattr(config, name, value)
            continue
        mapping = dict(getattr(config, name) or {})
        inner = mapping
        for key in keys[:-1]:
            inner[key] = dict(inner[key]) if isinstance(inner.get(key), dict) else {}
            inner = inner[key]
        inner[keys[-1]] = value
        setattr(config, name, mapping)
    return config


def _is_mapping_field(field: dataclasses.Field) -> bool:
    hint = field.type
    if isinstance(hint, str):
        return hint.split("[", 1)[0].strip() in ("dict", "Dict")
    return hint is dict or getattr(hint, "__origin__", None) is dict


def _mapping_overrides(cls: type, args: list[str]) -> tuple[list[str], list[tuple[str, list[str], object]]]:
    """Take ``--field JSON`` and ``--field.key value`` for mapping fields out of ``args``.

    Returns the other arguments (for ``TrlParser``) and the edits ``(field, keys, value)`` in order.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    mappings = sorted(name for name, f in fields.items() if _is_mapping_field(f))
    rest: list[str] = []
    edits: list[tuple[str, list[str], object]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, inline = arg.partition("=")
        name, dot, dotted = flag[2:].partition(".") if flag.startswith("--") else ("", "", "")
        if name not in fields or (name not in mappings and not dot):
            rest.append(arg)
            i += 1
            continue
        if name not in mappings:
            raise ConfigError(f"{flag}: {name!r} is not a mapping, so it takes no dotted key; mappings: {mappings}")
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(args):
            value, i = args[i + 1], i + 2
        else:
            raise ConfigError(f"{flag} needs a value")
        if dot:
            keys = dotted.split(".")
            if not all(keys):
                raise ConfigError(f"{flag}: empty key in the dotted name")
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value  # a path or a name: text as typed
            edits.append((name, keys, parsed))
            continue
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f'{flag}: expected a JSON object such as \'{{"reward": "length"}}\', got {value!r} ({exc.msg})'
            ) from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"{flag}: expected a JSON object (a mapping), got {type(parsed).__name__} {value!r}")
        edits.append((name, [], parsed))
    return rest, edits


def _check_keys(cls: type, path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)} | {"env"}
    unknown = sorted(set(data) - known)
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{path}: unknown key(s) {', '.join(hints)} for {cls.__name__}; known: {sorted(known)}")


def parse_script_args(cls: type[T], argv: Sequence[str] | None = None) -> T:
    """Parse ``[--config FILE] [--field value ...]`` for a script in ``scripts/``."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    path = None
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ConfigError("--config needs a file path")
        path = args[i + 1]
        del args[i : i + 2]
    return load_config(cls, path, args)


def save_config(config: object, path: str | Path) -> None:
    """Write a dataclass config as YAML that :func:`load_config` reads back."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False), encoding="utf-8")
