"""YAML configs onto dataclasses, with command-line overrides (TRL's ``TrlParser``).

Every config in ``configs/`` mirrors one dataclass field for field. ``TrlParser`` already merges a
YAML file and ``--field value`` overrides onto dataclasses; this module adds errors that name the
file and the key at fault.
"""

from __future__ import annotations

import dataclasses
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

    args = list(overrides)
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
    return config


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
