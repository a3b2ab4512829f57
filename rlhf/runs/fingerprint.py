"""What made an artefact: a fingerprint of a stage's config and of its inputs, so stale outputs are never reused.

Every stage keys its output on one: the policy cache on its config (folder name; what it holds in its
``fingerprint.json``, which later stages read), the synthetic preference file on its settings and the policy's
fingerprint (file name), the reward model on its config, preference file and base model (``fingerprint.json`` in
its folder), each run record on its trainer's config and the fingerprints of the policy, reward model, prompt
files and env it read (``run.json``).
A stage reuses its output only when the fingerprint it would write now equals the stored one.

Inputs are found in the config itself: any string value that names an existing file or folder is an
input, fingerprinted by :func:`artefact_fingerprint`. Fields that only say where or how a run is logged
(:data:`NOT_RESULTS`) are left out, so renaming a wandb project does not re-train anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

FINGERPRINT_FILE = "fingerprint.json"
# Config fields that do not change what a run computes: where and how it is logged, resumed, checkpointed.
NOT_RESULTS = frozenset(
    {"project", "group", "run_name", "wandb_mode", "runs_dir", "device", "threads", "resume", "stop_after_steps",
     "tags", "save_steps", "save_total_limit", "num_sample_rows", "preferences_dir", "output_dir", "policy_config",
     "cache_dir"}
)  # fmt: skip


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=_plain).encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A JSON stand-in for an object in a config (a reward callable, a scorer): its type and name."""
    name = getattr(value, "name", None) or getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"<{type(value).__module__}.{type(value).__qualname__} {name}>"


def artefact_fingerprint(ref: str | os.PathLike) -> str:
    """The fingerprint of an input named by ``ref``.

    A folder with a ``fingerprint.json`` (written by what made it): a reward model's stage fingerprint as stored; a
    saved policy's :func:`content_record` as stored while its files are as saved, else its content hashed again,
    so a copy (new modification times, same bytes) reads as the same input and a folder edited in place as a new
    one. Any other folder (a policy from elsewhere, a dataset): its files' names, sizes and modification times, so a
    rebuilt folder reads as new without reading gigabytes. A file (preferences, prompts): its bytes. Anything else
    (a hub name, a scorer name): the name itself.
    """
    path = Path(ref)
    if path.is_dir():
        stored = path / FINGERPRINT_FILE
        if not stored.is_file():
            return _stat_digest(path)
        record = json.loads(stored.read_text())
        if "files" in record and record["files"] != _stat_digest(path):
            return content_fingerprint(path)
        return record["fingerprint"]
    if path.is_file():
        return _file_digest(path)
    return f"name:{ref}"


def content_record(folder: str | os.PathLike) -> dict[str, str]:
    """``fingerprint.json`` for a policy folder we save: its :func:`content_fingerprint`, and its files' names,
    sizes and modification times when that was taken (see :func:`artefact_fingerprint`)."""
    return {"fingerprint": content_fingerprint(folder), "files": _stat_digest(Path(folder))}


def content_fingerprint(folder: str | os.PathLike) -> str:
    """The digest of what ``folder`` holds: each file's name and bytes (``fingerprint.json`` left out), whatever
    the files' modification times."""
    folder = Path(folder)
    return _digest([[str(p.relative_to(folder)), _file_digest(p)] for p in _files(folder)])


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != FINGERPRINT_FILE)


def _stat_digest(folder: Path) -> str:
    return _digest([[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in _files(folder)])


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def env_identity(env_id: str) -> dict[str, Any]:
    """A registered env as data for a run's fingerprint: its id, entry point and registered kwargs."""
    import gymnasium

    from rlhf.envs.registration import resolve_env_id

    try:
        env_id = resolve_env_id(env_id)  # "module:id" imports module, which registers id
    except ValueError:
        return {"id": env_id}  # make_env names the unknown id, with the registered ones
    spec = gymnasium.registry[env_id]
    return {"id": env_id, "entry_point": str(spec.entry_point), "kwargs": dict(spec.kwargs)}


def _results_only(values: Any) -> Any:
    """``values`` without the :data:`NOT_RESULTS` keys, at any depth (``policy_kwargs.cache_dir`` too)."""
    if isinstance(values, dict):
        return {k: _results_only(v) for k, v in values.items() if k not in NOT_RESULTS}
    return values


def _inputs(values: Any, prefix: str = "") -> dict[str, str]:
    """``{field: fingerprint}`` for every string in ``values`` (nested dicts and lists) naming a file or folder."""
    found: dict[str, str] = {}
    if isinstance(values, dict):
        for key, value in values.items():
            found.update(_inputs(value, f"{prefix}{key}."))
    elif isinstance(values, (list, tuple)):
        for i, value in enumerate(values):
            found.update(_inputs(value, f"{prefix}{i}."))
    elif isinstance(values, str) and values and Path(values).exists():
        found[prefix.rstrip(".")] = artefact_fingerprint(values)
    return found


def stage_fingerprint(config: Any, **inputs: Any) -> dict[str, Any]:
    """``{"fingerprint", "config", "inputs"}`` of a stage run with ``config`` (a dataclass or a dict).

    ``config`` is kept without :data:`NOT_RESULTS`; ``inputs`` holds the fingerprint of every file or folder
    the config names, plus the given ``inputs`` (paths are fingerprinted, other values kept as they are).
    """
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    values = _results_only(json.loads(json.dumps(values, default=_plain)))
    found = _inputs(values)
    for key, value in inputs.items():
        is_path = isinstance(value, (str, os.PathLike)) and str(value) and Path(value).exists()
        plain = json.loads(json.dumps(value, default=_plain))
        found[key] = artefact_fingerprint(value) if is_path else plain
        found.update(_inputs(_results_only(plain), f"{key}."))
    # Paths count by what they hold (``inputs``), not by how they are spelled: ``artifacts/reward_model`` and its
    # absolute path, or the same folder named from another directory, give one fingerprint.
    digest = _digest({"config": _paths_masked(values), "inputs": _paths_masked(found)})
    return {"fingerprint": digest, "config": values, "inputs": found}


def _paths_masked(values: Any) -> Any:
    """``values`` with every string that names an existing file or folder replaced by ``"<path>"``."""
    if isinstance(values, dict):
        return {k: _paths_masked(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [_paths_masked(v) for v in values]
    if isinstance(values, str) and values and Path(values).exists():
        return "<path>"
    return values


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 6) -> str:
    """What changed between two :func:`stage_fingerprint` results, as ``config.lr 0.1 → 0.2; inputs.policy``."""
    changes = []
    for part in ("config", "inputs"):
        before, after = old.get(part) or {}, new.get(part) or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                shown = f" {before.get(key)!r} → {after.get(key)!r}" if part == "config" else " changed"
                changes.append(f"{part}.{key}{shown}")
    if not changes:
        return "nothing recorded differs: it was fingerprinted by an older rlhf-gym (or has no fingerprint)"
    more = f" and {len(changes) - limit} more" if len(changes) > limit else ""
    return "; ".join(changes[:limit]) + more
