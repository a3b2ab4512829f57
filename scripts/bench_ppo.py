"""PPO throughput and peak memory: samples (replies scored) per second over a few updates of a config.

    python scripts/bench_ppo.py [--ppo_config configs/ppo/gpu.yaml] [--iterations 4] [--device cuda] [--threads 1]

Runs ``iterations`` PPO updates of the config (no evaluation between them, no wandb, a throw-away run
folder) and prints samples/s over the updates after the first (which pays for warm-up), seconds per
update and peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, the process's peak RSS on a CPU.
"""

from __future__ import annotations

import dataclasses
import resource
import tempfile
from dataclasses import dataclass

import torch

from rlhf.config import load_config, parse_script_args
from rlhf.models.policy import resolve_device
from rlhf.runs.records import read_run
from rlhf.training.ppo import PPOConfig, train_ppo


@dataclass
class BenchConfig:
    """Which PPO config to time, for how many updates, where."""

    ppo_config: str = "configs/ppo/tiny.yaml"
    iterations: int = 4
    device: str = ""  # empty: the config's own device
    threads: int = 0  # torch CPU threads; 0 keeps torch's default (1 is steadier on a shared machine)


def main() -> None:
    """Time ``iterations`` updates and print the numbers docs/BENCHMARKS.md records."""
    bench = parse_script_args(BenchConfig)
    if bench.threads:
        torch.set_num_threads(bench.threads)
    config = load_config(PPOConfig, bench.ppo_config)
    device = bench.device or config.device
    with tempfile.TemporaryDirectory() as runs:
        episodes = bench.iterations * config.batch_size
        config = dataclasses.replace(
            config, device=device, runs_dir=runs, wandb_mode="disabled", total_episodes=episodes,
            eval_steps=10**9, eval_contexts=8, save_steps=10**9, resume=False, stop_after_steps=None,
        )  # fmt: skip
        on_cuda = resolve_device(device).type == "cuda"
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()
        result = train_ppo(config)
        rows = [r for r in read_run(result.run_dir)["metrics"] if "objective/scores" in r]
    first, last = rows[0], rows[-1]
    per_update = (last["wall_time"] - first["wall_time"]) / max(1, len(rows) - 1)
    samples_s = (last["samples"] - first["samples"]) / max(1e-9, last["wall_time"] - first["wall_time"])
    if on_cuda:
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (torch.cuda.max_memory_allocated)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (peak RSS of the process)"
    print(f"config {bench.ppo_config} on {resolve_device(device)}: batch {config.batch_size}, "
          f"response_length {config.response_length}, {config.num_ppo_epochs} PPO epochs")  # fmt: skip
    print(f"updates timed: {len(rows) - 1} (after the first); {per_update:.2f} s per update; {samples_s:.1f} samples/s")
    print(f"peak memory: {peak}; whole call {result.seconds:.0f} s")


if __name__ == "__main__":
    main()
