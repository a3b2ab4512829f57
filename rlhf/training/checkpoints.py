"""PPO checkpoints: what a run saves every ``save_steps`` updates, and how a resumed run picks up.

A checkpoint is ``<run_dir>/checkpoints/step-NNNNNN/`` holding the policy (and its tokenizer), the value
model, the optimizer and scheduler state, and ``state.json`` (``{"step": …, "samples": …, "kl_coef": …}``, the
next update's KL coefficient; written last: a folder without it is incomplete and ignored). TRL's
``PPOTrainer.train`` cannot resume, so these are ours.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch


def checkpoint_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first (``<run_dir>/checkpoints/step-000010``)."""
    folder = Path(run_dir) / "checkpoints"
    found = [p for p in folder.glob("step-*") if (p / "state.json").is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda p: json.loads((p / "state.json").read_text())["step"])


def latest_checkpoint(run_dir: str | os.PathLike) -> tuple[Path | None, dict[str, int]]:
    """The newest complete checkpoint and its counters, or ``(None, {"step": 0, "samples": 0})``."""
    found = checkpoint_dirs(run_dir)
    if not found:
        return None, {"step": 0, "samples": 0}
    return found[-1], json.loads((found[-1] / "state.json").read_text())


def save_checkpoint(run_dir: Path, policy, value, tokenizer, optimizer, scheduler, step: int, samples: int,
                    kl_coef: float) -> Path:  # fmt: skip
    """Write policy, value, optimizer/scheduler state and counters to ``checkpoints/step-N`` (atomically)."""
    target = run_dir / "checkpoints" / f"step-{step:06d}"
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    policy.save_pretrained(staging / "policy")
    tokenizer.save_pretrained(staging / "policy")
    value.save_pretrained(staging / "value")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, staging / "optimizer.pt")
    (staging / "state.json").write_text(json.dumps({"step": step, "samples": samples, "kl_coef": kl_coef}))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` (at least one) checkpoints."""
    for old in checkpoint_dirs(run_dir)[: -max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)


def load_optimizer_state(checkpoint: Path, optimizer: Any, scheduler: Any, device: Any) -> None:
    """Restore the optimizer and scheduler state a checkpoint saved."""
    states = torch.load(checkpoint / "optimizer.pt", map_location=device, weights_only=True)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])


def trim_record(run_dir: Path, last_step: int) -> None:
    """Drop metric and sample rows logged after the checkpoint a resumed run restarts from (they are redone)."""
    for name in ("metrics.jsonl", "samples.jsonl"):
        path = run_dir / name
        if path.is_file():
            keep = [line for line in path.read_text().splitlines() if line.strip() and _row_step(line) <= last_step]
            path.write_text("".join(f"{line}\n" for line in keep))


def _row_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a partial last line of a killed run: dropped
