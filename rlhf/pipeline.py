"""The main job, ``rlhf-gym``: the whole chain on the offline default, each stage reused when done.

policy → synthetic preferences → reward model → PPO (``ppo_rounds`` rounds of iterated RLHF), PPO on the gold
reward (the oracle), GRPO, RLOO, DPO → tabular Q-learning → DQN → comparison report.

The main job runs the stages in ``stages``; by default those that fit its 10-minute budget on 2 CPU cores
(see docs/BENCHMARKS.md), the others are one flag away (``--stages`` lists them) and the job prints which
stages it ran and which it left out.

Every stage is an ordinary library call that reuses its output when it exists and was made by the same
config and inputs (:mod:`rlhf.runs.fingerprint`: the policy cache, the labelled preference file, the
reward-model folder, each finished run record), so re-running the job after an interruption redoes only
what is missing, a changed setting redoes its stage and what depends on it, and any stage runs alone
through its own script. Every stage uses one split of the contexts (checked before anything runs).
The runs share one wandb project and ``group``; the report compares that group. All outputs go under
``artifacts_dir`` (policy cache, preferences, reward model) and ``runs_dir`` (run records, report).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.config import ConfigError, load_config
from rlhf.data.corpus import corpus_contexts
from rlhf.models.policy import DEFAULT_POLICY, PolicyConfig, ensure_policy, generate_replies, load_policy, policy_path


def policy_stage(config: PolicyConfig) -> str:
    """Build or reuse the policy, print its held-out perplexity and sample replies; return its folder."""
    path = config.policy
    if config.policy == DEFAULT_POLICY:
        report = ensure_policy(config)
        path = report.path
        state = "reused cached policy" if report.reused else f"built in {report.train_seconds:.0f}s"
        print(f"{state}: {path}")
        print(
            f"held-out perplexity {report.heldout_perplexity:.2f} "
            f"(unigram model: {report.unigram_perplexity:.2f}) on {report.heldout_tokens} tokens"
        )
    model, tokenizer = load_policy(path, device=config.device)
    contexts = corpus_contexts("heldout", config.heldout_fraction, config.seed)[: config.num_samples]
    replies = generate_replies(model, tokenizer, [c.turns for c in contexts], temperature=0.5, seed=config.seed)
    print("\nsample dialogues (held-out contexts):")
    for context, (reply,) in zip(contexts, replies, strict=True):
        print(f"  User: {context.turns[-1]}\n  Bot:  {reply}\n")
    return path


STAGES = ("policy", "preferences", "reward_model", "ppo", "ppo_oracle", "grpo", "rloo", "dpo", "qlearning", "dqn",
          "report")  # fmt: skip
# What the default job runs: everything but RLOO and DPO, which would take it past 10 minutes on 2 CPU cores.
DEFAULT_STAGES = tuple(s for s in STAGES if s not in ("rloo", "dpo"))


@dataclass
class PipelineConfig:
    """The one-command job (``configs/pipeline/default.yaml``): where things go and which config each stage uses."""

    project: str = "rlhf-gym"
    group: str = "default"  # the wandb group and <runs_dir>/<group>: the runs the report compares
    wandb_mode: str = "offline"
    runs_dir: str = "artifacts/runs"
    artifacts_dir: str = "artifacts"  # policy cache, preferences and reward model go under it
    # Each stage's config file: "configs/…" is the copy shipped in the package unless it exists from here.
    policy_config: str = "configs/policy/default.yaml"
    reward_config: str = "configs/reward/default.yaml"
    ppo_config: str = "configs/ppo/default.yaml"
    qlearning_config: str = "configs/qlearning/default.yaml"
    dqn_config: str = "configs/dqn/default.yaml"
    grpo_config: str = "configs/grpo/default.yaml"
    rloo_config: str = "configs/rloo/default.yaml"
    dpo_config: str = "configs/dpo/default.yaml"
    stages: list[str] = field(default_factory=lambda: list(DEFAULT_STAGES))  # run these, in the chain's order
    # Iterated RLHF (rlhf.training.rounds): PPO's budget split over this many rounds, each labelling the current
    # policy's replies and retraining the reward model on all pairs so far; 1 is a single PPO run.
    ppo_rounds: int = 2
    report_source: str = "auto"  # "local", "wandb" or "auto" (see rlhf.runs.report.load_runs)


def _stage_config(cls: type, path: str, **overrides: Any):
    """``cls`` from the YAML at ``path`` (a missing file is an error: the stage would run on other settings),
    with ``overrides`` applied."""
    config = load_config(cls, path)
    known = {f.name for f in dataclasses.fields(cls)}
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if k in known})


class _Progress:
    """One line per stage as it starts and ends, with its time; a summary table at the end (rich)."""

    def __init__(self, stages: Sequence[str]) -> None:
        from rich.console import Console

        self.console = Console()
        self.stages = list(stages)
        self.times: list[tuple[str, float, str]] = []

    def run(self, name: str, fn: Callable[[], tuple[Any, str]]) -> Any:
        number = f"[{STAGES.index(name) + 1}/{len(STAGES)}]"
        if name not in self.stages:
            self.console.print(f"[dim]{number} {name}: not in stages, skipped (add it to --stages to run it)[/dim]")
            return None
        self.console.rule(f"{number} {name}")
        started = time.time()
        result, note = fn()
        seconds = time.time() - started
        self.times.append((name, seconds, note))
        self.console.print(f"[green]✓[/green] {name} in {seconds:.1f}s — {note}")
        return result

    def summary(self) -> None:
        from rich.table import Table

        table = Table(title="rlhf-gym pipeline")
        for column in ("stage", "seconds", "result"):
            table.add_column(column)
        for name, seconds, note in self.times:
            table.add_row(name, f"{seconds:.1f}", note)
        table.add_row("total", f"{sum(t for _, t, _ in self.times):.1f}", "")
        self.console.print(table)
        left_out = [s for s in STAGES if s not in self.stages]
        ran = [name for name, _, _ in self.times]
        self.console.print(f"stages run: {', '.join(ran) or 'none'}; left out: {', '.join(left_out) or 'none'}")


def run_pipeline(config: PipelineConfig) -> Path | None:
    """Run the chain's ``config.stages`` in order; return the report's path (``None`` without a report stage)."""
    unknown = [s for s in config.stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"stages: unknown stage(s) {unknown}; known, in order: {list(STAGES)}")
    from rlhf.training.reward_model import RewardModelConfig

    artifacts = Path(config.artifacts_dir)
    runs = dict(project=config.project, group=config.group, runs_dir=config.runs_dir, wandb_mode=config.wandb_mode)
    progress = _Progress(config.stages)
    policy_config = _stage_config(PolicyConfig, config.policy_config, cache_dir=str(artifacts / "cache"))
    # The reward model is pointed at the policy folder itself, so it never builds a policy of its own.
    reward_config = _stage_config(
        RewardModelConfig,
        config.reward_config,
        preferences_dir=str(artifacts / "preferences"),
        output_dir=str(artifacts / "reward_model"),
        cache_dir=str(artifacts / "cache"),  # its preference-pretrained backbone is cached beside the policy
        **runs,
    )

    reward_config = _check_one_split(config, policy_config, reward_config)
    if "ppo" in config.stages:  # refuse a round count the PPO budget cannot split before anything runs
        from rlhf.training.ppo import PPOConfig
        from rlhf.training.rounds import round_budgets

        ppo_config = _stage_config(PPOConfig, config.ppo_config)
        try:
            round_budgets(ppo_config.total_episodes, ppo_config.batch_size, config.ppo_rounds)
        except ValueError as exc:
            raise ConfigError(f"{exc} ({config.ppo_config})") from exc

    def policy() -> tuple[str, str]:
        path = policy_stage(policy_config)
        return path, path

    # Later stages need the policy's folder even when its stage is not run; a run of the report alone does not.
    policy_dir = progress.run("policy", policy)
    if policy_dir is None and any(s != "report" for s in config.stages):
        policy_dir = policy_path(policy_config)
    reward_config = dataclasses.replace(reward_config, policy=policy_dir or reward_config.policy)

    def preferences() -> tuple[Path | None, str]:
        from rlhf.training.reward_model import SYNTHETIC, label_preferences

        if reward_config.preferences != SYNTHETIC:
            return None, f"preferences from {reward_config.preferences}: nothing to label"
        path = label_preferences(reward_config, policy_dir)  # the very file the reward_model stage reads
        return path, str(path)

    def reward_model() -> tuple[str, str]:
        from rlhf.training.reward_model import train_reward_model

        report = train_reward_model(reward_config)
        state = "reused" if report.reused else "trained"
        return report.path, f"{state} {report.path} (held-out pairwise accuracy {report.pairwise_accuracy:.3f})"

    progress.run("preferences", preferences)
    reward_dir = progress.run("reward_model", reward_model) or reward_config.output_dir
    needs_reward_model = ("ppo", "grpo", "rloo", "dpo", "qlearning", "dqn")
    if not (Path(reward_dir) / "config.json").is_file() and any(s in config.stages for s in needs_reward_model):
        raise FileNotFoundError(f"no reward model at {reward_dir}: run the reward_model stage first")

    def ppo() -> tuple[str, str]:
        from rlhf.training.ppo import PPOConfig
        from rlhf.training.rounds import iterated_rlhf

        ppo_config = _stage_config(PPOConfig, config.ppo_config, policy=policy_dir, **runs)
        results = iterated_rlhf(ppo_config, reward_config, config.ppo_rounds, reward_dir)
        return results[-1].run_dir, "; ".join(_run_note(r.run_dir, r.skipped) for r in results)

    def ppo_oracle() -> tuple[str, str]:
        from rlhf.training.ppo import PPOConfig, train_ppo
        from rlhf.training.rounds import oracle_config

        result = train_ppo(oracle_config(_stage_config(PPOConfig, config.ppo_config, policy=policy_dir, **runs)))
        return result.run_dir, _run_note(result.run_dir, result.skipped)

    def online(algo: str) -> Callable[[], tuple[str, str]]:
        """The GRPO or RLOO stage: on the reward model, like PPO."""

        def stage() -> tuple[str, str]:
            if algo == "grpo":
                from rlhf.training.grpo import GRPOConfig as Config
                from rlhf.training.grpo import train_grpo as train
            else:
                from rlhf.training.rloo import RLOOConfig as Config
                from rlhf.training.rloo import train_rloo as train
            stage_config = _stage_config(Config, getattr(config, f"{algo}_config"), policy=policy_dir, **runs)
            stage_config.env_kwargs = {**stage_config.env_kwargs, "reward_model": reward_dir}
            result = train(stage_config)
            return result.run_dir, _run_note(result.run_dir, result.skipped)

        return stage

    def dpo() -> tuple[str, str]:
        from rlhf.training.dpo import DPOConfig, train_dpo

        # The reward model's own pairs: its config and the preference folder the preferences stage wrote.
        dpo_config = _stage_config(DPOConfig, config.dpo_config, policy=policy_dir,
                                   preference_config=config.reward_config,
                                   preferences_dir=reward_config.preferences_dir, **runs)  # fmt: skip
        dpo_config.env_kwargs = {**dpo_config.env_kwargs, "reward_model": reward_dir}
        result = train_dpo(dpo_config)
        return result.run_dir, _run_note(result.run_dir, result.skipped)

    def qlearning() -> tuple[str, str]:
        from rlhf.training.qlearning import QLearningConfig, train_q_learning

        result = train_q_learning(
            _stage_config(QLearningConfig, config.qlearning_config, reward_model=reward_dir, **runs)
        )
        return result.run_dir, _run_note(result.run_dir, result.skipped)

    def dqn() -> tuple[str, str]:
        from rlhf.training.dqn import DQNConfig, train_dqn

        result = train_dqn(_stage_config(DQNConfig, config.dqn_config, reward_model=reward_dir, **runs))
        return result.run_dir, _run_note(result.run_dir, result.skipped)

    def report() -> tuple[Path, str]:
        from rlhf.runs.report import build_report

        path = build_report(config.group, runs_dir=config.runs_dir, source=config.report_source, project=config.project)
        return path, str(path)

    last_round = progress.run("ppo", ppo)
    progress.run("ppo_oracle", ppo_oracle)
    progress.run("grpo", online("grpo"))
    progress.run("rloo", online("rloo"))
    progress.run("dpo", dpo)
    progress.run("qlearning", qlearning)
    progress.run("dqn", dqn)
    path = progress.run("report", report)
    progress.summary()
    if path is not None:
        progress.console.print(f"\n[bold]report:[/bold] {path}")
    if last_round is not None and policy_dir is not None:
        from rlhf.training.ppo import FINAL

        final = Path(last_round) / FINAL
        progress.console.print(f"[bold]talk to it:[/bold] rlhf-gym chat --policy {final} --against {policy_dir}")
    return path


def _check_one_split(config: PipelineConfig, policy_config: PolicyConfig, reward_config):
    """One train/held-out split of the contexts for every stage, or a :class:`ConfigError` naming the files.

    The policy pre-trains, the labeller labels and PPO, Q-learning and DQN train on the training side; all
    evaluate on the held-out side. A stage with another ``heldout_fraction``/``seed`` would train on
    another stage's evaluation contexts. Returns the reward config pointed at the env's prompt source.
    """
    import inspect

    from rlhf.envs.dialogue import DialogueEnv
    from rlhf.envs.registration import dialogue_env_kwargs
    from rlhf.training.baselines import dialogue_settings
    from rlhf.training.dqn import DQNConfig
    from rlhf.training.ppo import PPOConfig
    from rlhf.training.qlearning import QLearningConfig

    env_defaults = inspect.signature(DialogueEnv).parameters

    def env_split(settings: dict[str, Any]) -> tuple[float, int]:
        return tuple(settings.get(k, env_defaults[k].default) for k in ("heldout_fraction", "seed"))

    ppo_config = _stage_config(PPOConfig, config.ppo_config)
    ppo = {**dialogue_env_kwargs(ppo_config.env_id), **ppo_config.env_kwargs}
    splits = {
        f"{config.policy_config} (heldout_fraction, seed)": (policy_config.heldout_fraction, policy_config.seed),
        f"{config.reward_config} (context_heldout_fraction, context_seed)": (
            reward_config.context_heldout_fraction,
            reward_config.context_seed,
        ),
        f"{config.ppo_config} (the env's heldout_fraction, seed)": env_split(ppo),
    }
    for path, cls in ((config.qlearning_config, QLearningConfig), (config.dqn_config, DQNConfig)):
        splits[f"{path} (heldout_fraction, seed)"] = env_split(dialogue_settings(_stage_config(cls, path)))
    if len(set(splits.values())) > 1:
        shown = "; ".join(f"{where}: {split}" for where, split in splits.items())
        raise ConfigError(
            f"the stages split the contexts differently, so one would train on another's evaluation contexts: "
            f"{shown}. Set the same heldout_fraction and seed in each"
        )
    return dataclasses.replace(reward_config, prompts=ppo.get("prompts"))


def _run_note(run_dir: str, skipped: bool) -> str:
    from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD
    from rlhf.runs.report import local_run

    run = local_run(run_dir)
    env, gold = run.final(ENV_REWARD), run.final(GOLD_REWARD)
    numbers = f"held-out env reward {env:.3f}, gold {gold:.3f}" if env is not None and gold is not None else ""
    return f"{'reused' if skipped else 'trained'} {run_dir} {numbers}".strip()


def main(argv: Sequence[str] | None = None) -> int:
    """The whole chain: ``rlhf-gym [--config FILE] [--field value ...]`` (see :mod:`rlhf.cli`); the exit status."""
    from rlhf.cli import main as cli_main

    return cli_main(list(argv) if argv is not None else None)


if __name__ == "__main__":
    import sys

    sys.exit(main())
