"""Run records: every training run logs to Weights & Biases and to a local folder beside it.

wandb is offline by default (``wandb sync`` uploads later), online when a key is configured and the
mode says so, or ``disabled``. Offline wandb files have no Python reader, so each run also writes a
plain record that the comparison report reads::

    <runs_dir>/<group>/<name>/
        run.json        algo, env, group, tags, config, status ("running" → "finished", "failed" or "interrupted")
        metrics.jsonl   one {"step": …, metric: value, …} per line
        samples.jsonl   sample replies, one {"step": …, "context": …, "reply": …, …} per line
        summary.json    final numbers, written by finish()

Runs of one experiment share a ``group`` so PPO and the baselines sit side by side in wandb.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

WANDB_MODES = ("offline", "online", "disabled")
FAILED, INTERRUPTED = "failed", "interrupted"

# Records started and not yet finished or marked: a trainer wrapped in :func:`marks_failure` marks the ones
# its own call opened when it raises.
_open_records: list[RunRecord] = []


@dataclass
class RunSettings:
    """Where and how a run is logged; each trainer's config carries these fields."""

    project: str = "rlhf-gym"  # the wandb project
    group: str = "default"  # the wandb group and <runs_dir>/<group>: the runs one report compares
    run_name: str | None = None  # the run's folder and wandb name; None: the algorithm's name
    wandb_mode: str = "offline"  # offline (wandb sync later), online (needs a key) or disabled
    runs_dir: str = "artifacts/runs"  # run records go under it, relative to the working directory


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def group_folder(runs_dir: str | os.PathLike, group: str) -> Path:
    """``<runs_dir>/<group>``: the folder holding every run record of an experiment."""
    return Path(runs_dir) / _slug(group)


def run_folder(runs_dir: str | os.PathLike, group: str, name: str) -> Path:
    """``<runs_dir>/<group>/<name>``: where :meth:`RunRecord.start` writes the run ``name``."""
    return group_folder(runs_dir, group) / _slug(name)


class RunRecord:
    """One run's local record and its wandb run; create with :meth:`start`."""

    def __init__(self, folder: Path, info: dict[str, Any], wandb_run: Any = None) -> None:
        self.folder = folder
        self.info = info
        self.wandb_run = wandb_run
        self._started = time.time()

    @classmethod
    def start(
        cls,
        *,
        algo: str,
        env_id: str,
        config: dict[str, Any],
        project: str = "rlhf-gym",
        group: str = "default",
        name: str | None = None,
        runs_dir: str | os.PathLike = "artifacts/runs",
        wandb_mode: str = "offline",
        tags: Sequence[str] = (),
        resume: bool = False,
        fingerprint: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Open ``<runs_dir>/<group>/<name>`` (default name: the algo) and the wandb run.

        ``resume=True`` appends to an existing record and resumes its wandb run; otherwise an
        existing record of the same name is an error, so no finished run is overwritten by accident.
        ``fingerprint`` (:func:`rlhf.runs.fingerprint.stage_fingerprint`) is stored in run.json, for
        :func:`finished_run` to reuse the run only while what made it is unchanged.
        """
        if wandb_mode not in WANDB_MODES:
            raise ValueError(f"wandb_mode must be one of {WANDB_MODES}, got {wandb_mode!r}")
        folder = run_folder(runs_dir, group, name or algo)
        name = folder.name
        run_file = folder / "run.json"
        if run_file.exists() and not resume:
            raise FileExistsError(f"run record {folder} exists: pick another run name, delete it, or resume")
        folder.mkdir(parents=True, exist_ok=True)
        if resume and run_file.exists():
            info = json.loads(run_file.read_text())
            info["status"] = "running"
            info.pop("status_reason", None)
        else:
            info = {
                "name": name,
                "algo": algo,
                "env_id": env_id,
                "group": group,
                "project": project,
                "tags": [algo, env_id, *tags],
                "config": config,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "status": "running",
            }
            if fingerprint is not None:
                info["fingerprint"] = fingerprint
        wandb_run = None
        if wandb_mode != "disabled":
            wandb_run = _init_wandb(info, folder, wandb_mode, resume)
            info["wandb_id"] = wandb_run.id
        record = cls(folder, info, wandb_run)
        record._write_info()
        _open_records.append(record)
        return record

    @classmethod
    def for_config(
        cls,
        config: RunSettings,
        *,
        algo: str,
        env_id: str,
        name: str | None = None,
        tags: Sequence[str] = (),
        resume: bool = False,
        fingerprint: dict[str, Any] | None = None,
    ) -> RunRecord:
        """:meth:`start` a run of a trainer config (a :class:`RunSettings` dataclass), logging all its fields."""
        return cls.start(
            algo=algo,
            env_id=env_id,
            config=dataclasses.asdict(config),
            project=config.project,
            group=config.group,
            name=name or config.run_name,
            runs_dir=config.runs_dir,
            wandb_mode=config.wandb_mode,
            tags=tags,
            resume=resume,
            fingerprint=fingerprint,
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Append ``metrics`` at ``step`` to metrics.jsonl and to wandb."""
        row = {"step": int(step), "wall_time": round(time.time() - self._started, 3), **_plain(metrics)}
        _append_jsonl(self.folder / "metrics.jsonl", [row])
        if self.wandb_run is not None:
            self.wandb_run.log(dict(metrics), step=int(step))

    def log_samples(self, rows: Sequence[dict[str, Any]], step: int, key: str = "samples") -> None:
        """Append sample rows (context, reply, rewards…) to samples.jsonl and as a wandb table."""
        rows = [{"step": int(step), **_plain(r)} for r in rows]
        _append_jsonl(self.folder / "samples.jsonl", rows)
        if self.wandb_run is not None and rows:
            import wandb

            columns = list(rows[0])
            table = wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])
            self.wandb_run.log({key: table}, step=int(step))

    def finish(self, summary: dict[str, Any] | None = None) -> None:
        """Write summary.json, mark the record finished and close the wandb run."""
        summary = _plain(summary or {})
        (self.folder / "summary.json").write_text(json.dumps(summary, indent=2))
        self.info["status"] = "finished"
        self._write_info()
        self._close()
        if self.wandb_run is not None:
            self.wandb_run.summary.update(summary)
            self.wandb_run.finish()
            self.wandb_run = None

    def mark(self, status: str, reason: str = "") -> None:
        """End an unfinished run as ``status`` ("failed", "interrupted"), with the ``reason``; a resume can
        still continue it. The report keeps such runs apart from the finished ones."""
        self.info["status"] = status
        if reason:
            self.info["status_reason"] = reason
        self._write_info()
        self._close()
        if self.wandb_run is not None:
            self.wandb_run.finish(exit_code=1 if status == FAILED else 255)
            self.wandb_run = None

    def _close(self) -> None:
        if self in _open_records:
            _open_records.remove(self)

    def _write_info(self) -> None:
        tmp = self.folder / "run.json.tmp"
        tmp.write_text(json.dumps(self.info, indent=2, default=str))
        os.replace(tmp, self.folder / "run.json")


def marks_failure(train: Callable[P, R]) -> Callable[P, R]:
    """Decorate a trainer: a run record it opened and left unfinished is marked "interrupted" on Ctrl-C and
    "failed" on any other exception (with the error), so no record is left "running" by a dead process."""

    @functools.wraps(train)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        opened_before = {id(r) for r in _open_records}
        try:
            return train(*args, **kwargs)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            for record in [r for r in _open_records if id(r) not in opened_before]:
                if record.info.get("status") == "running":
                    record.mark(INTERRUPTED if interrupted else FAILED, f"{type(exc).__name__}: {exc}"[:500])
            raise

    return wrapper


def _init_wandb(info: dict[str, Any], folder: Path, mode: str, resume: bool):
    import wandb

    wandb_dir = Path(os.environ.get("WANDB_DIR", folder.parent.parent / "wandb"))
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=info["project"],
        group=info["group"],
        name=info["name"],
        job_type=info["algo"],
        tags=info["tags"],
        config=info["config"],
        dir=str(wandb_dir),
        mode=mode,
        id=info.get("wandb_id") if resume else None,
        resume="allow" if resume else None,
        reinit="finish_previous",
    )


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready copy: numpy and torch scalars become Python numbers."""
    out = {}
    for key, value in data.items():
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()
        out[key] = value
    return out


def _append_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, default=str) + "\n")
        f.flush()


def read_run(folder: str | os.PathLike) -> dict[str, Any]:
    """A run record as ``{"info", "metrics", "samples", "summary"}``; names the file when one is unreadable.

    A half-written record (no summary, a truncated last line) still reads: its status says so.
    """
    folder = Path(folder)
    run_file = folder / "run.json"
    if not run_file.is_file():
        raise FileNotFoundError(f"{folder} is not a run record: no run.json")
    try:
        info = json.loads(run_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{run_file}: not valid JSON ({exc})") from exc
    summary_file = folder / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    return {
        "info": info,
        "metrics": _read_jsonl(folder / "metrics.jsonl"),
        "samples": _read_jsonl(folder / "samples.jsonl"),
        "summary": summary,
    }


def finished_run(
    folder: str | os.PathLike,
    *,
    resume: bool = False,
    resume_hint: str | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The finished run record at ``folder`` (as :func:`read_run` gives it) to reuse, or ``None`` to train.

    Trainers call this first. With ``fingerprint`` (:func:`rlhf.runs.fingerprint.stage_fingerprint` of the run
    they would do now) a finished record is reused only when its stored fingerprint is the same; one of the
    same algorithm made by other settings or inputs is moved aside to ``<group>/.superseded/`` (printed, with
    what differs) and ``None`` returned, so the run is redone; a record of another algorithm or without a
    fingerprint is refused, naming the folder and what differs. An unfinished record is an error unless the
    caller is resuming it with the same fingerprint (``None`` then): another process may be writing it.
    ``resume_hint`` tells, in that error, how to resume with the calling trainer, where it can.
    """
    from rlhf.runs.fingerprint import differences

    folder = Path(folder)
    if not (folder / "run.json").is_file():
        return None
    run = read_run(folder)
    status = run["info"].get("status")
    stored = run["info"].get("fingerprint")
    same = fingerprint is None or (stored or {}).get("fingerprint") == fingerprint["fingerprint"]
    keep_both = "set run_name to keep both, or delete the folder to replace it"
    if status == "finished":
        algo = run["info"].get("algo", "run")
        if same:
            print(f"{algo}: skipped, finished run record exists at {folder} with the same settings and inputs")
            return run
        changed = differences(stored or {}, fingerprint)
        if stored is None or stored.get("inputs", {}).get("algo") != fingerprint["inputs"].get("algo"):
            raise FileExistsError(f"run record {folder} holds another run ({changed}): {keep_both}")
        aside = folder.parent / ".superseded" / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder, aside)
        print(f"{algo}: settings or inputs changed since {folder} was made ({changed}): training again; "
              f"the old record is in {aside}")  # fmt: skip
        return None
    if resume:
        if not same:
            raise FileExistsError(
                f"cannot resume {folder} with other settings or inputs ({differences(stored or {}, fingerprint)}): "
                f"resume with its own, or {keep_both}"
            )
        return None
    resume = f"{resume_hint}, " if resume_hint else ""
    raise FileExistsError(
        f"run record {folder} is unfinished (status {status!r}): {resume}delete the folder to train again, "
        "or set run_name"
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):  # a run killed mid-write leaves a partial last line: skip it
                break
            raise ValueError(f"{path}:{number}: not valid JSON ({exc})") from exc
    return rows
