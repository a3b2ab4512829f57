"""YAML configs onto dataclasses, with command-line overrides (TRL's ``TrlParser``).

Every config in ``configs/`` mirrors one dataclass field for field. ``TrlParser`` already merges a
YAML file and ``--field value`` overrides onto dataclasses; this module adds errors that name the
file and the key at fault, and overrides of mapping fields (``env_kwargs``), which argparse cannot
parse: ``--env_kwargs '{"reward": "length"}'`` (JSON, replaces the mapping) and ``--env_kwargs.reward_model
path`` (one key, merged into it; the value is read as JSON when it parses, else as text). It checks each
value's type against its field before ``TrlParser`` sees it (so a
bad YAML value is blamed on the YAML file, not on the command line), finds the default configs that ship
inside the package (``rlhf.configs``) from any directory, and describes a dataclass's fields for ``--help``.

Paths: a ``*_config`` field set in a YAML file (``policy_config: ../policy/default.yaml``) is relative to
that file's folder, so a config tree works wherever it lies; a ``configs/<stage>/<name>.yaml`` path that
does not exist from the working directory is the copy shipped in the package. Output paths
(``runs_dir``, ``output_dir``, ``artifacts_dir``…) stay relative to the working directory: outputs go
where the user runs the command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rlhf.errors import UserError

T = TypeVar("T")
SHIPPED_PREFIX = "configs/"


class ConfigError(UserError, ValueError):
    """A config file or override that does not fit its dataclass."""


def shipped_configs() -> Path:
    """The folder of default configs installed with the package (``rlhf.configs``)."""
    from importlib.resources import files

    return Path(str(files("rlhf.configs")))


def config_file(path: str | Path) -> Path:
    """``path`` when it exists; else, for ``configs/<stage>/<name>.yaml``, the copy shipped in the package."""
    path = Path(path)
    text = path.as_posix()
    if not path.exists() and not path.is_absolute() and text.startswith(SHIPPED_PREFIX):
        shipped = shipped_configs() / text[len(SHIPPED_PREFIX) :]
        if shipped.is_file():
            return shipped
    return path


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from the YAML file at ``path`` (optional) and CLI-style ``overrides``.

    ``overrides`` are ``["--field", "value", ...]`` as a user types them. Unknown keys in the file or
    the overrides raise :class:`ConfigError` naming them and the file.
    """
    from trl import TrlParser

    _check_override_names(cls, overrides)
    args, mapping_edits = _mapping_overrides(cls, list(overrides))
    data: dict[str, Any] = {}
    if path is not None:
        path = config_file(path)
        data = _check_keys(cls, path)
        if data:  # an empty file (or one of comments only) leaves every default as it is
            args = ["--config", str(path), *args]
    parser = TrlParser(dataclass_types=[cls])
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            (config,) = parser.parse_args_and_config(args=args)
    except SystemExit as exc:  # argparse exits on a malformed --flag value, after writing why to stderr
        why = (errors.getvalue().strip().splitlines() or ["malformed value"])[-1].split("error: ", 1)[-1]
        raise ConfigError(f"command-line override for {cls.__name__}: {why}") from exc
    except ValueError as exc:  # HfArgumentParser: "Some specified arguments are not used …"
        known = sorted(f.name for f in dataclasses.fields(cls))
        raise ConfigError(
            f"command-line overrides {list(overrides)} for {cls.__name__}: {exc}; known: {known}"
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
    if path is not None:
        _resolve_config_paths(config, data, path)
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


def _check_override_names(cls: type, args: Sequence[str]) -> None:
    known = {f.name for f in dataclasses.fields(cls)} | {"config"}
    names = [a[2:].split("=", 1)[0] for a in args if a.startswith("--")]
    unknown = [n for n in names if n not in known and n.split(".", 1)[0] not in known]
    if unknown:
        raise ConfigError(
            f"unknown command-line option(s) {', '.join('--' + n for n in unknown)} for {cls.__name__}; "
            f"known: {sorted(known - {'config'})} (rlhf-gym <command> --help lists them)"
        )


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _type_problem(kind: Any, value: Any) -> str | None:
    """Why ``value`` (as YAML or argparse gave it) does not fit the field type ``kind``; ``None`` when it does."""
    origin, params = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in params:
            return None
        problems = [_type_problem(p, value) for p in params if p is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if kind is bool:
        if isinstance(value, bool) or str(value).lower() in ("true", "false"):
            return None
        return f"expected true or false, got {value!r}"
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        if isinstance(value, float) and value.is_integer():
            return None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                int(value)
                return None
        return f"expected a whole number, got {value!r}"
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                float(value)
                return None
        return f"expected a number, got {value!r}"
    if kind is str:
        return (
            None
            if isinstance(value, (str, int, float)) and not isinstance(value, bool)
            else f"expected text, got {value!r}"
        )
    if (origin or kind) is list:
        return None if isinstance(value, list) else f"expected a list, got {value!r}"
    if (origin or kind) is dict:
        return None if isinstance(value, dict) else f"expected a mapping of key: value, got {value!r}"
    return None


def _resolve_config_paths(config: Any, data: dict[str, Any], path: Path) -> None:
    """A ``*_config`` path set in the YAML file is relative to that file's folder (when it exists there)."""
    for name, value in data.items():
        if not (name.endswith("_config") and isinstance(value, str) and value):
            continue
        if getattr(config, name) != value or Path(value).is_absolute():
            continue  # overridden on the command line: relative to the working directory
        beside = path.parent / value
        if beside.exists():
            setattr(config, name, str(beside.resolve()))


def _check_keys(cls: type, path: Path) -> dict[str, Any]:
    """The YAML file's mapping, after checking that every key is a field and every value fits its type."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
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
    for name, value in data.items():
        if name in known - {"env"}:
            problem = _type_problem(_field_type(cls, name), value)
            if problem:
                raise ConfigError(f"{path}: {name}: {problem}{_line_of(path, name)}")
    return data


def _line_of(path: Path, key: str) -> str:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return f" (line {number})"
    return ""


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


def describe_fields(cls: type) -> list[tuple[str, str, str, str]]:
    """(name, type, default, meaning) of each field of the dataclass ``cls``; the meaning is the comment
    after the field in its class body, or the comment lines just above it."""
    import inspect

    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines:
            text = line.strip()
            if text.startswith("#"):
                above.append(text.lstrip("# "))
                continue
            name = text.split(":", 1)[0]
            if ":" in text and name.isidentifier() and not text.startswith(("def ", "class ")):
                after = text.split("  # ", 1)[1] if "  # " in text else ""
                comments[name] = after or " ".join(above)
            above = []
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        kind = getattr(hints[f.name], "__name__", None) or str(hints[f.name]).replace("typing.", "")
        rows.append((f.name, str(kind), repr(default), comments.get(f.name, "")))
    return rows
