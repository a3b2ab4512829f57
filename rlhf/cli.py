"""``rlhf-gym``: one command for every stage, from any directory.

    rlhf-gym [--config FILE] [--field value ...]            the whole chain (rlhf.pipeline)
    rlhf-gym policy|label|reward-model|ppo|grpo|rloo|dpo|qlearning|dqn|report|chat [--config FILE] [--field value ...]
    rlhf-gym <command> --help                                every field, its default and meaning

A command reads the YAML named by ``--config`` or, without one, its default config shipped inside the
package (``rlhf.configs``), so it runs with the same settings inside the repository and outside it;
outputs go under the working directory. A user error (a config, data file, path or environment id that
is wrong) prints one line and exits with status 2; ``--debug`` shows its traceback. Ctrl-C exits with 130.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlhf.config import ConfigError, config_file, describe_fields, load_config
from rlhf.errors import UserError

USAGE_ERROR = 2
INTERRUPTED = 130


@dataclass
class Command:
    """One subcommand: its config dataclass (imported late: torch is slow to import), default config, runner."""

    name: str
    summary: str
    config_class: Callable[[], type]
    default_config: str | None
    run: Callable[[Any, list[str]], None]
    extra_options: dict[str, str] = field(default_factory=dict)  # --flag: meaning, read by ``run`` itself


# -- the runners: parse is done, each calls the library function that owns the stage ----------------------


def _run_pipeline(config, _extra: list[str]) -> None:
    from rlhf.pipeline import run_pipeline

    run_pipeline(config)


def _run_policy(config, _extra: list[str]) -> None:
    from rlhf.pipeline import policy_stage

    policy_stage(config)


def _run_label(config, extra: list[str]) -> None:
    from pathlib import Path

    from rlhf.data.preferences import read_preferences
    from rlhf.rewards.labeller import human_session
    from rlhf.training.reward_model import label_preferences, resolve_policy

    human = "--human" in extra
    count = parse_count(extra)
    policy = resolve_policy(config)
    if human:
        output = Path(config.preferences_dir) / "human.jsonl"
        human_session(policy, output, count, config.seed, config.max_new_tokens, config.device)
        return
    records, stats = read_preferences(label_preferences(config, policy))
    print(stats)
    for record in records[:3]:
        print(f"\n{record['prompt']}\n  chosen:   {record['chosen']}\n  rejected: {record['rejected']}")


def parse_count(extra: Sequence[str], default: int = 20) -> int:
    """``--count N`` of the labelling tool: a positive whole number, else a :class:`ConfigError`."""
    if "--count" not in extra:
        return default
    i = list(extra).index("--count")
    text = extra[i + 1] if i + 1 < len(extra) else ""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"--count: expected a positive whole number of pairs to label, got {text!r}")
    return count


def _run_reward_model(config, _extra: list[str]) -> None:
    from rlhf.training.reward_model import train_reward_model

    report = train_reward_model(config)
    state = "reused" if report.reused else f"trained in {report.seconds:.0f}s"
    print(f"\nreward model {state}: {report.path}")
    print(f"preferences: {report.preferences} ({report.train_pairs} train / {report.heldout_pairs} held-out pairs)")
    print(f"held-out pairwise accuracy: {report.pairwise_accuracy:.3f}")
    print(f"Spearman vs gold {config.gold!r} on {report.heldout_replies} held-out replies: {report.spearman:.3f}")


def _run_ppo(config, _extra: list[str]) -> None:
    from rlhf.training.ppo import train_ppo

    result = train_ppo(config)
    print(f"run record: {result.run_dir} ({result.steps} updates, {result.samples} samples, {result.seconds:.0f}s)")
    for key in sorted(set(result.before) | set(result.after)):
        print(f"  {key:22s} {result.before.get(key, float('nan')):8.3f} -> {result.after.get(key, float('nan')):8.3f}")


def _trainer(algo: str) -> tuple[Callable[[], type], Callable[[Any, list[str]], None]]:
    """(config class, runner) of the GRPO, RLOO or DPO command: trained like PPO, printed like PPO."""
    import importlib

    def config_class() -> type:
        return getattr(importlib.import_module(f"rlhf.training.{algo}"), f"{algo.upper()}Config")

    def run(config, _extra: list[str]) -> None:
        result = getattr(importlib.import_module(f"rlhf.training.{algo}"), f"train_{algo}")(config)
        print(f"run record: {result.run_dir} ({result.steps} updates, {result.samples} samples, {result.seconds:.0f}s)")
        for key in sorted(set(result.before) | set(result.after)):
            before, after = result.before.get(key, float("nan")), result.after.get(key, float("nan"))
            print(f"  {key:22s} {before:8.3f} -> {after:8.3f}")

    return config_class, run


def _run_qlearning(config, _extra: list[str]) -> None:
    from rlhf.training.qlearning import train_q_learning

    train_q_learning(config)


def _run_dqn(config, _extra: list[str]) -> None:
    from rlhf.training.dqn import train_dqn

    train_dqn(config)


@dataclass
class ReportConfig:
    """Which runs the comparison report compares and where it goes."""

    group: str = "default"  # the run group to compare (wandb group and <runs_dir>/<group>)
    runs_dir: str = "artifacts/runs"  # where the local run records are
    runs: list[str] = field(default_factory=list)  # run record folders to compare instead of a group
    out: str | None = None  # output folder; None: <runs_dir>/<group>/report
    source: str = "auto"  # local run records, wandb, or auto (wandb when a key is set and online)
    project: str = "rlhf-gym"  # the wandb project


def _run_report(config: ReportConfig, _extra: list[str]) -> None:
    from rlhf.runs.report import build_report

    path = build_report(
        config.runs or config.group,
        config.out,
        runs_dir=config.runs_dir,
        source=config.source,
        project=config.project,
        title=None if config.runs else f"Run comparison: {config.group}",
    )
    print(f"report: {path}")


def _run_chat(config, _extra: list[str]) -> None:
    from rlhf.chatbot import chat

    chat(config)


def _pipeline_config() -> type:
    from rlhf.pipeline import PipelineConfig

    return PipelineConfig


def _policy_config() -> type:
    from rlhf.models.policy import PolicyConfig

    return PolicyConfig


def _reward_config() -> type:
    from rlhf.training.reward_model import RewardModelConfig

    return RewardModelConfig


def _ppo_config() -> type:
    from rlhf.training.ppo import PPOConfig

    return PPOConfig


def _qlearning_config() -> type:
    from rlhf.training.qlearning import QLearningConfig

    return QLearningConfig


def _dqn_config() -> type:
    from rlhf.training.dqn import DQNConfig

    return DQNConfig


def _chat_config() -> type:
    from rlhf.chatbot import ChatConfig

    return ChatConfig


PIPELINE = Command(
    "rlhf-gym",
    "the whole chain: policy, preferences, reward model, PPO rounds (iterated RLHF), PPO on the gold reward (oracle), "
    "GRPO (RLOO and DPO on request), Q-learning, DQN, report",
    _pipeline_config,
    "configs/pipeline/default.yaml",
    _run_pipeline,
)
COMMANDS = {
    c.name: c
    for c in (
        Command(
            "policy",
            "build (or reuse) the offline policy and print sample dialogues",
            _policy_config,
            "configs/policy/default.yaml",
            _run_policy,
        ),
        Command(
            "label",
            "label preference pairs: synthetically with the gold scorer, or yourself with --human",
            _reward_config,
            "configs/reward/default.yaml",
            _run_label,
            {
                "--human": "label by hand in the terminal: a, b, s (skip) or q (quit); answers kept at once",
                "--count N": "how many held-out contexts to show with --human (a positive whole number; 20)",
            },
        ),
        Command(
            "reward-model",
            "label or read preferences and train a Bradley-Terry reward model with TRL's RewardTrainer",
            _reward_config,
            "configs/reward/default.yaml",
            _run_reward_model,
        ),
        Command(
            "ppo",
            "train the policy with TRL's PPO on an environment's reward; the policy lands in <run>/final/",
            _ppo_config,
            "configs/ppo/default.yaml",
            _run_ppo,
        ),
        Command(
            "grpo",
            "train the policy with TRL's GRPO on an environment's reward (groups of sampled replies)",
            *_trainer("grpo")[:1],
            "configs/grpo/default.yaml",
            _trainer("grpo")[1],
        ),  # fmt: skip
        Command(
            "rloo",
            "train the policy with TRL's RLOO on an environment's reward (leave-one-out baseline)",
            *_trainer("rloo")[:1],
            "configs/rloo/default.yaml",
            _trainer("rloo")[1],
        ),  # fmt: skip
        Command(
            "dpo",
            "train the policy with TRL's DPO on the reward model's preference pairs (no reward model)",
            *_trainer("dpo")[:1],
            "configs/dpo/default.yaml",
            _trainer("dpo")[1],
        ),  # fmt: skip
        Command(
            "qlearning",
            "the tabular Q-learning baseline on the select env",
            _qlearning_config,
            "configs/qlearning/default.yaml",
            _run_qlearning,
        ),
        Command("dqn", "the DQN baseline (stable-baselines3)", _dqn_config, "configs/dqn/default.yaml", _run_dqn),
        Command(
            "report",
            "the comparison report of a group of runs: report.md and PNG plots",
            lambda: ReportConfig,
            None,
            _run_report,
        ),
        Command(
            "chat",
            "talk to a policy in the terminal; with --against, two policies answer each turn side by side",
            _chat_config,
            None,
            _run_chat,
        ),
    )
}


# -- parsing, help, errors ------------------------------------------------------------------------------


def _user_errors() -> tuple[type[BaseException], ...]:
    """What counts as the user's mistake: our own errors, a bad path, and the ValueErrors our checks raise."""
    errors: list[type[BaseException]] = [UserError, ValueError, FileNotFoundError, FileExistsError, PermissionError]
    errors += [IsADirectoryError, NotADirectoryError]
    try:
        import gymnasium.error

        errors.append(gymnasium.error.Error)  # an unknown or malformed environment id
    except ImportError:
        pass
    return tuple(errors)


def _split_extra(command: Command, args: list[str]) -> tuple[list[str], list[str]]:
    """(the config's --field value args, the command's own extra options)."""
    extra, rest = [], []
    i = 0
    while i < len(args):
        flag = args[i]
        takes = next((o for o in command.extra_options if o.split()[0] == flag), None)
        if takes is None:
            rest.append(flag)
            i += 1
            continue
        width = 2 if " " in takes else 1
        extra += args[i : i + width]
        i += width
    return rest, extra


def parse_command(command: Command, args: Sequence[str]) -> tuple[Any, list[str]]:
    """(the config for ``command`` from ``--config FILE`` or its shipped default and the overrides, extra options)."""
    rest, extra = _split_extra(command, list(args))
    path = command.default_config
    if "--config" in rest:
        i = rest.index("--config")
        if i + 1 >= len(rest):
            raise ConfigError("--config needs a file path")
        path = rest[i + 1]
        del rest[i : i + 2]
    return load_config(command.config_class(), path, rest), extra


def help_text(command: Command) -> str:
    """Usage, the command's purpose, its default config and every field with its default and meaning."""
    name = command.name if command is PIPELINE else f"rlhf-gym {command.name}"
    lines = [f"usage: {name} [--config FILE] [--field value ...] [--debug]", "", f"{command.summary}.", ""]
    cls = command.config_class()
    effective: dict[str, Any] = {}
    if command.default_config:
        shipped = config_file(command.default_config)
        lines += [f"default config: {command.default_config} (found at {shipped})", ""]
        try:
            loaded = load_config(cls, command.default_config)
            effective = {f: repr(getattr(loaded, f)) for f, *_ in describe_fields(cls)}
        except UserError:
            pass
    if command is PIPELINE:
        lines += ["commands (rlhf-gym <command> --help for each):"]
        lines += [f"  {c.name:<13} {c.summary}" for c in COMMANDS.values()]
        lines.append("")
    if command.extra_options:
        lines += ["options:"] + [f"  {flag:<13} {meaning}" for flag, meaning in command.extra_options.items()]
        lines.append("")
    lines += ["fields (--field value, or field: value in the config file):"]
    for field_name, kind, default, meaning in describe_fields(cls):
        shown = effective.get(field_name, default)
        if shown != default:
            shown = f"{shown} (dataclass default {default})"
        lines.append(f"  --{field_name} ({kind}) = {shown}")
        if meaning:
            lines += textwrap.wrap(meaning, 100, initial_indent="      ", subsequent_indent="      ")
    lines += ["", "  --debug      show the traceback of an error", "  -h, --help   this text"]
    return "\n".join(lines)


def print_to_stdout(text: str) -> int:
    """Print ``text`` and return 0; a reader that closes the pipe early (``rlhf-gym --help | head``) is no error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python's advice (signal docs, "Note on SIGPIPE"): stdout to devnull, so the final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rlhf-gym``; returns the exit status (0, 2 for a user error, 130 for Ctrl-C)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # As for ``python -m``: modules in the working directory import, so --env_id my_envs:my/Polite-v0 works.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    command = PIPELINE
    if args and not args[0].startswith("-"):
        name = args.pop(0).replace("_", "-")
        if name not in COMMANDS:
            print(f"rlhf-gym: unknown command {name!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
            return USAGE_ERROR
        command = COMMANDS[name]
    if "-h" in args or "--help" in args:
        return print_to_stdout(help_text(command))
    try:
        config, extra = parse_command(command, args)
        command.run(config, extra)
    except KeyboardInterrupt:
        if debug:
            raise
        print("\nrlhf-gym: interrupted (Ctrl-C); what was saved is kept", file=sys.stderr)
        return INTERRUPTED
    except _user_errors() as exc:
        if debug:
            raise
        where = "rlhf-gym" if command is PIPELINE else f"rlhf-gym {command.name}"
        print(f"{where}: error: {exc} (--debug shows the traceback)", file=sys.stderr)
        return USAGE_ERROR
    return 0


def script_main(name: str) -> None:
    """What a ``scripts/`` wrapper runs: ``rlhf-gym <name>`` with the script's arguments, exiting with its status."""
    sys.exit(main([name, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
