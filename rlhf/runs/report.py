"""The comparison report: the runs of one group (PPO and the baselines) side by side, as Markdown and PNGs.

Runs come from the wandb API when it is reachable (a key, online mode) or from the local run records
(:mod:`rlhf.runs.records`), which every run writes. ``report.md`` holds one table row per run (algo, final
learned and gold reward, KL where defined, wall time, samples) and links three plots: the eval rewards
against ``samples`` (env interactions), gold against learned reward over training, where reward
over-optimisation shows as a learned reward that rises while the gold one stalls or falls, and gold
against KL to the reference policy (the price each method paid in drift for its gold gain; runs with
no reference policy, the Q-learning baselines, have no KL and are not in it).

Bad input is reported, not fatal: a half-written run (status "running", no summary, a truncated last
line) is marked incomplete and what it logged is used; runs with different metric names list what
each lacks. Only an empty group (or no readable run at all) is an error.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.runs.evaluation import ENV_REWARD, EVAL_METRICS, GOLD_REWARD, KL, SAMPLES
from rlhf.runs.records import FAILED, INTERRUPTED, group_folder, read_run

SOURCES = ("local", "wandb", "auto")
TRAIN_ENV_REWARD = "eval_train/env_reward"  # tabular Q-learning's score on its own training contexts
REWARD_PLOT = "reward_vs_samples.png"
OVEROPTIMISATION_PLOT = "gold_vs_learned.png"
GOLD_KL_PLOT = "gold_vs_kl.png"
ROUNDS_PLOT = "rounds.png"
ORACLE_TAG = "oracle"  # the tags rlhf.training.rounds gives its runs
ROUND_TAG = re.compile(r"^round-(\d+)$")


def round_tag(k: int) -> str:
    """The tag of iterated-RLHF round ``k``'s run (:func:`round_of` reads it back)."""
    return f"round-{k}"


# Table order: the policy-gradient methods (online, then DPO offline), then the value-based baselines.
ALGO_ORDER = ("ppo", "grpo", "rloo", "dpo", "dqn", "qlearning")  # other algos follow by name


class EmptyGroupError(ValueError):
    """No run to report on: the group folder is missing or empty, or no given run could be read."""


@dataclass
class RunData:
    """One run as the report sees it, from a local record or from wandb."""

    name: str
    algo: str
    status: str  # "finished", "running", "crashed", "missing", …
    metrics: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the folder or wandb path it was read from
    reason: str = ""  # why a failed or interrupted run stopped, as its record says
    problems: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # "round-2", "oracle": what the pipeline made the run as
    samples: list[dict[str, Any]] = field(default_factory=list)  # sample replies (local records only)

    @property
    def complete(self) -> bool:
        """Finished, with a summary and no problem reading it."""
        return self.status == "finished" and bool(self.summary) and not self.problems

    def series(self, metric: str) -> tuple[list[float], list[float]]:
        """(x, y) of ``metric`` over training, x = ``samples`` where logged, else the step."""
        xs, ys = [], []
        for row in self.metrics:
            value = row.get(metric)
            if _is_number(value):
                xs.append(float(row.get(SAMPLES, row.get("step", len(xs)))))
                ys.append(float(value))
        return xs, ys

    def final(self, metric: str) -> float | None:
        """The summary's value of ``metric`` (PPO nests its final evaluation under ``after``), else the last
        logged one, else ``None``."""
        for summary in (self.summary, self.summary.get("after") or {}):
            if isinstance(summary, dict) and _is_number(summary.get(metric)):
                return float(summary[metric])
        _, ys = self.series(metric)
        return ys[-1] if ys else None

    def logged(self) -> set[str]:
        """Every metric name this run logged or summarised."""
        names = {k for row in self.metrics for k, v in row.items() if _is_number(v)}
        return names | {k for k, v in self.summary.items() if _is_number(v)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- reading runs ---------------------------------------------------------------------------------


def local_run(folder: str | os.PathLike) -> RunData:
    """A local run record as :class:`RunData`; a missing or unreadable one comes back with its problem."""
    folder = Path(folder)
    if not folder.is_dir():
        return RunData(folder.name, "?", "missing", source=str(folder), problems=[f"no such folder {folder}"])
    try:
        run = read_run(folder)
    except (FileNotFoundError, ValueError) as exc:
        return RunData(folder.name, "?", "unreadable", source=str(folder), problems=[str(exc)])
    info = run["info"]
    data = RunData(
        name=str(info.get("name", folder.name)),
        algo=str(info.get("algo", "?")),
        status=str(info.get("status", "?")),
        reason=str(info.get("status_reason", "")),
        metrics=run["metrics"],
        summary=run["summary"],
        source=str(folder),
        tags=[str(t) for t in info.get("tags", [])],
        samples=run["samples"],
    )
    if data.status != "finished":
        data.problems.append(f"status {data.status!r}: the run did not finish")
    if not run["summary"]:
        data.problems.append("no summary.json")
    if _has_partial_line(folder / "metrics.jsonl"):
        data.problems.append("metrics.jsonl ends in a truncated line (skipped)")
    if not data.metrics:
        data.problems.append("no metrics logged")
    return data


def _has_partial_line(path: Path) -> bool:
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    return bool(text) and not text.endswith("\n")


def local_group(group: str, runs_dir: str | os.PathLike) -> list[RunData]:
    """Every run record under ``<runs_dir>/<group>/``; :class:`EmptyGroupError` when there is none."""
    folder = group_folder(runs_dir, group)
    # A run folder holds run.json (written first) or at least metrics; the report's own folder and wandb's do not.
    is_run = lambda p: p.is_dir() and ((p / "run.json").is_file() or (p / "metrics.jsonl").is_file())  # noqa: E731
    runs = sorted(p for p in folder.iterdir() if is_run(p)) if folder.is_dir() else []
    if not runs:
        where = "does not exist" if not folder.is_dir() else "holds no run folders"
        raise EmptyGroupError(f"no runs in group {group!r}: {folder} {where} (runs_dir {runs_dir})")
    return [local_run(p) for p in runs]


def wandb_group(group: str, project: str = "rlhf-gym", entity: str | None = None) -> list[RunData]:
    """The runs of ``group`` in the wandb project, read through ``wandb.Api()`` (needs a key and the network)."""
    import wandb

    api = wandb.Api(timeout=20)
    path = f"{entity or api.default_entity}/{project}"
    runs = []
    for run in api.runs(path, filters={"group": group}):
        rows = [
            {**row, "step": row.get("_step", i)} for i, row in enumerate(run.scan_history()) if isinstance(row, dict)
        ]
        data = RunData(
            name=run.name,
            algo=str(run.config.get("algo") or run.job_type or (run.tags[0] if run.tags else "?")),
            status=run.state,
            metrics=rows,
            summary={k: v for k, v in dict(run.summary).items() if not k.startswith("_")},
            source=f"wandb:{path}/{run.id}",
            tags=list(run.tags),
        )
        if data.status != "finished":
            data.problems.append(f"wandb state {data.status!r}")
        runs.append(data)
    if not runs:
        raise EmptyGroupError(f"no runs in group {group!r} of wandb project {path}")
    return runs


def load_runs(
    runs_or_group: str | Sequence[str | os.PathLike | RunData],
    runs_dir: str | os.PathLike = "artifacts/runs",
    source: str = "auto",
    project: str = "rlhf-gym",
) -> list[RunData]:
    """The runs to compare: a group name (from ``source``) or a list of run folders / :class:`RunData`.

    ``auto`` asks wandb only when ``WANDB_API_KEY`` is set and ``WANDB_MODE`` is not offline/disabled,
    and falls back to the local records, saying why, when wandb fails.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if not isinstance(runs_or_group, str):
        runs = [r if isinstance(r, RunData) else local_run(r) for r in runs_or_group]
        if not runs:
            raise EmptyGroupError("no runs given")
        return runs
    group = runs_or_group
    use_wandb = source == "wandb" or (
        source == "auto"
        and bool(os.environ.get("WANDB_API_KEY"))
        and os.environ.get("WANDB_MODE", "online") not in ("offline", "disabled", "dryrun")
    )
    if use_wandb:
        try:
            return wandb_group(group, project)
        except EmptyGroupError:
            if source == "wandb":
                raise
            print(f"wandb has no runs in group {group!r}: reading local run records")
        except Exception as exc:  # network, auth, missing project: the local records are the fallback
            if source == "wandb":
                raise RuntimeError(f"cannot read group {group!r} from wandb project {project!r}: {exc}") from exc
            print(f"wandb unreachable ({type(exc).__name__}: {exc}): reading local run records")
    elif source == "auto":
        print("reading local run records (wandb needs WANDB_API_KEY and an online WANDB_MODE)")
    return local_group(group, runs_dir)


# -- the report -----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _wall_time(run: RunData) -> float | None:
    """Seconds of training: the summary's ``wall_time`` (baselines) or ``seconds`` (PPO), wandb's ``_runtime``,
    else the last logged row's ``wall_time`` (seconds since the record was opened)."""
    for key in ("wall_time", "seconds", "_runtime"):
        if _is_number(run.summary.get(key)):
            return float(run.summary[key])
    return run.final("wall_time")


def _samples(run: RunData) -> float | None:
    value = run.final(SAMPLES)
    if value is None and run.metrics:
        steps = [row.get("step") for row in run.metrics if _is_number(row.get("step"))]
        value = float(max(steps)) if steps else None
    return value


def _algo_order(run: RunData) -> tuple[int, str]:
    return (ALGO_ORDER.index(run.algo) if run.algo in ALGO_ORDER else len(ALGO_ORDER), run.name)


def _is_policy_run(run: RunData) -> bool:
    """A run the comparison is about: it logged the shared eval metrics, or it did not finish (it may yet)."""
    return bool(run.logged() & set(EVAL_METRICS)) or not run.complete


def build_report(
    runs_or_group: str | Sequence[str | os.PathLike | RunData],
    out_dir: str | os.PathLike | None = None,
    *,
    runs_dir: str | os.PathLike = "artifacts/runs",
    source: str = "auto",
    project: str = "rlhf-gym",
    title: str | None = None,
) -> Path:
    """Write ``report.md`` and its PNG plots to ``out_dir`` (default ``<runs_dir>/<group>/report``); return its path."""
    runs = load_runs(runs_or_group, runs_dir, source, project)
    group = runs_or_group if isinstance(runs_or_group, str) else None
    out = Path(out_dir) if out_dir else group_folder(runs_dir, group or "runs") / "report"
    out.mkdir(parents=True, exist_ok=True)

    # A run that failed or was interrupted is listed apart: its numbers are not a result to compare.
    stopped = [r for r in runs if r.status in (FAILED, INTERRUPTED)]
    compared = sorted((r for r in runs if _is_policy_run(r) and r not in stopped), key=_algo_order)
    others = [r for r in runs if not _is_policy_run(r) and r not in stopped]
    if not compared:
        names = ", ".join(f"{r.name} ({r.algo})" for r in runs)
        raise EmptyGroupError(
            f"no run in {group or 'the given runs'} logged {ENV_REWARD} or the other eval metrics: {names}"
        )
    # Comparable: the eval metrics every compared run logged. KL exists only where there is a reference policy.
    shared = [m for m in EVAL_METRICS if all(m in r.logged() for r in compared)]
    eval_names = sorted({m for r in compared for m in r.logged() if m.startswith("eval/")})

    lines = [f"# {title or f'Run comparison: {group}' if group else title or 'Run comparison'}", ""]
    lines += [f"{len(compared)} runs compared (read from {_source_text(compared)}).", ""]
    lines += [
        "| run | algo | status | final env reward | final gold reward | KL | wall time (s) | samples |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in compared:
        status = r.status if r.complete else f"**incomplete** ({r.status})"
        samples = _samples(r)
        lines.append(
            f"| {r.name} | {r.algo} | {status} | {_fmt(r.final(ENV_REWARD))} | {_fmt(r.final(GOLD_REWARD))} "
            f"| {_fmt(r.final(KL))} | {_fmt(_wall_time(r), 1)} | {'—' if samples is None else int(samples)} |"
        )
    lines += ["", "Final values are each run's summary, or its last logged value when it has no summary.", ""]
    lines += [f"Metrics every run logged (comparable): {', '.join(f'`{m}`' for m in shared) or 'none'}.", ""]
    gaps = [(r, [m for m in eval_names if m not in r.logged() and m != KL]) for r in compared]
    if any(missing for _, missing in gaps):
        lines += ["Missing metrics (logged by another run here, not by this one; `eval/kl` needs a reference):"]
        lines += [f"- {r.name} ({r.algo}): {', '.join(f'`{m}`' for m in missing)}" for r, missing in gaps if missing]
        lines.append("")
    incomplete = [r for r in compared if not r.complete]
    if incomplete:
        lines.append("Incomplete runs (their numbers are what they logged before stopping):")
        lines += [f"- {r.name} ({r.source}): {'; '.join(r.problems) or r.status}" for r in incomplete]
        lines.append("")
    if stopped:
        lines.append("Failed or interrupted runs (not compared; an interrupted PPO run resumes with `--resume true`):")
        lines += [f"- {r.name} ({r.algo}, {r.status}): {r.reason or 'no reason recorded'}" for r in stopped]
        lines.append("")
    if any(r.final(TRAIN_ENV_REWARD) is not None for r in compared):
        lines += [
            f"Tabular Q-learning has no row for a context it never saw, so on held-out contexts it picks at random; "
            f"`{TRAIN_ENV_REWARD}` is its greedy score on its own training contexts (dashed in the plot):",
            "",
        ]
        lines += [f"- {r.name}: {_fmt(r.final(TRAIN_ENV_REWARD))}" for r in compared if r.final(TRAIN_ENV_REWARD)]
        lines.append("")

    lines += _rounds_section(compared, out / ROUNDS_PLOT)
    lines += _replies_section(compared)
    _plot_rewards(compared, out / REWARD_PLOT)
    _plot_overoptimisation(compared, out / OVEROPTIMISATION_PLOT)
    lines += ["## Reward against env interactions", "", f"![eval rewards against samples]({REWARD_PLOT})", ""]
    lines += [
        "## Gold against learned reward over training",
        "",
        "Each point is one evaluation; the line follows training. A learned reward that rises while the gold "
        "reward stays flat or falls is reward over-optimisation.",
        "",
        f"![gold reward against learned reward]({OVEROPTIMISATION_PLOT})",
        "",
    ]
    if _plot_gold_vs_kl(compared, out / GOLD_KL_PLOT):
        lines += [
            "## Gold reward against KL to the reference",
            "",
            "Each point is one evaluation of a run that has a reference policy (the fine-tuned policies); a method "
            "that gains more gold for the same KL is the better trade. DQN and Q-learning have no reference, "
            "so no KL.",
            "",
            f"![gold reward against KL]({GOLD_KL_PLOT})",
            "",
        ]
    if others:
        lines += ["## Other runs in the group", ""]
        for r in others:
            numbers = ", ".join(
                f"{k} {_fmt(v)}" for k, v in r.summary.items() if _is_number(v) and k.startswith("eval")
            )
            lines.append(f"- {r.name} ({r.algo}): {numbers or 'no eval numbers'}")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def round_of(run: RunData) -> int | None:
    """The iterated-RLHF round a run was (its ``round-<k>`` tag), or ``None``."""
    found = [int(m.group(1)) for t in run.tags if (m := ROUND_TAG.match(t))]
    return found[0] if found else None


def _first_eval(run: RunData, metric: str) -> float | None:
    _, ys = run.series(metric)
    return ys[0] if ys else None


def _rounds_section(runs: Sequence[RunData], plot: Path) -> list[str]:
    """Iterated RLHF: gold and learned reward per round, against the oracle's gold; the recovered share."""
    rounds = sorted((r for r in runs if round_of(r) is not None), key=round_of)
    oracle = next((r for r in runs if ORACLE_TAG in r.tags), None)
    if not rounds and oracle is None:
        return []
    first = rounds[0] if rounds else oracle
    initial = _first_eval(first, GOLD_REWARD)
    lines = ["## Iterated RLHF: rounds and the oracle", ""]
    if rounds:
        lines += [
            "Round k labels round k-1's replies, retrains the reward model on all pairs so far and continues PPO "
            "from round k-1's policy (KL always to the initial policy); each round's learned reward is its own "
            "reward model's score, so learned rewards compare within a round, gold across all of them.",
            "",
            "| round | run | gold start → end | learned start → end | KL to the initial policy | samples |",
            "|---|---|---|---|---|---|",
        ]
        for r in rounds:
            samples = _samples(r)
            lines.append(
                f"| {round_of(r)} | {r.name} | {_fmt(_first_eval(r, GOLD_REWARD))} → {_fmt(r.final(GOLD_REWARD))} "
                f"| {_fmt(_first_eval(r, ENV_REWARD))} → {_fmt(r.final(ENV_REWARD))} | {_fmt(r.final(KL), 2)} "
                f"| {'—' if samples is None else int(samples)} |"
            )
        lines.append("")
    if oracle is not None:
        lines.append(
            f"Oracle ({oracle.name}: PPO on the gold reward itself, the same PPO budget): gold "
            f"{_fmt(_first_eval(oracle, GOLD_REWARD))} → {_fmt(oracle.final(GOLD_REWARD))}, "
            f"KL {_fmt(oracle.final(KL), 2)}."
        )
        last = rounds[-1].final(GOLD_REWARD) if rounds else None
        oracle_gold = oracle.final(GOLD_REWARD)
        if None not in (initial, last, oracle_gold):
            gain, oracle_gain = last - initial, oracle_gold - initial
            share = f"{gain / oracle_gain:.0%}" if oracle_gain > 0 else "— (the oracle gained nothing)"
            lines.append(
                f"The learned reward's last round gains {gain:+.3f} gold over the initial policy, the oracle "
                f"{oracle_gain:+.3f}: it recovers **{share}** of the oracle's gain."
            )
        lines.append("")
    if rounds:
        _plot_rounds(rounds, oracle, initial, plot)
        lines += [f"![gold and learned reward per round]({plot.name})", ""]
    return lines


def _plot_rounds(rounds: Sequence[RunData], oracle: RunData | None, initial: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers = [0, *(round_of(r) for r in rounds)]
    fig, (gold_ax, learned_ax) = plt.subplots(1, 2, figsize=(11, 4))
    gold = [initial, *(r.final(GOLD_REWARD) for r in rounds)]
    gold_ax.plot(numbers, [float("nan") if g is None else g for g in gold], marker="o", label="learned-reward PPO")
    if oracle is not None and oracle.final(GOLD_REWARD) is not None:
        gold_ax.axhline(oracle.final(GOLD_REWARD), ls="--", color="black", label=f"{oracle.name} (gold reward)")
    gold_ax.set_title("held-out gold after each round (0 = initial)", fontsize=10)
    for r in rounds:
        start, end = _first_eval(r, ENV_REWARD), r.final(ENV_REWARD)
        if start is not None and end is not None:
            learned_ax.plot([round_of(r) - 1, round_of(r)], [start, end], marker="o", label=f"round {round_of(r)}")
    learned_ax.set_title("held-out learned reward in each round (its reward model)", fontsize=10)
    for ax, label in ((gold_ax, GOLD_REWARD), (learned_ax, ENV_REWARD)):
        ax.set_xlabel("round")
        ax.set_ylabel(label)
        ax.set_xticks(numbers)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _replies_section(runs: Sequence[RunData], contexts: int = 8) -> list[str]:
    """The same held-out contexts answered by the initial policy, each PPO run (rounds, then the oracle and
    others) and DQN's pick, from the sample replies each run logged at its last evaluation."""
    ppo = sorted((r for r in runs if r.algo == "ppo" and r.samples), key=lambda r: (round_of(r) or 10**6, r.name))
    shown = ppo + [r for r in runs if r.algo == "dqn" and r.samples]
    if not ppo:
        return []
    columns = [("initial policy", _replies_at(ppo[0], first=True))] + [(r.name, _replies_at(r)) for r in shown]
    # Contexts every column answered, in the initial policy's order (runs may log different held-out contexts).
    shared = [c for c in columns[0][1] if all(c in replies for _, replies in columns)]
    order = (shared or list(columns[0][1]))[:contexts]
    lines = [
        "## Replies side by side",
        "",
        f"{len(order)} held-out contexts (the first that every run answered), one sampled reply each (DQN: its "
        "pick among candidates), at the start (initial policy) and at the end of each run; gold reward in brackets.",
        "",
        "| context | " + " | ".join(name for name, _ in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for context in order:
        cells = []
        for _, replies in columns:
            row = replies.get(context)
            gold = row.get("gold_reward") if row else None
            cells.append("—" if row is None else f"{_cell(row['reply'])} ({_fmt(gold, 2)})")
        lines.append(f"| {_cell(context)} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _replies_at(run: RunData, first: bool = False) -> dict[str, dict[str, Any]]:
    """``{context: sample row}`` of the run's first or last evaluation that logged sample replies."""
    steps = [row["step"] for row in run.samples if "reply" in row]
    if not steps:
        return {}
    step = min(steps) if first else max(steps)
    found: dict[str, dict[str, Any]] = {}
    for row in run.samples:
        if row["step"] == step and "reply" in row:
            found.setdefault(str(row["context"]), row)
    return found


def _cell(text: Any, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|") or "(empty)"


def _source_text(runs: Sequence[RunData]) -> str:
    kinds = {"wandb" if r.source.startswith("wandb:") else "local run records" for r in runs}
    return " and ".join(sorted(kinds))


def _colours(runs: Sequence[RunData]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {r.name: cycle[i % len(cycle)] for i, r in enumerate(runs)}


def _plot_rewards(runs: Sequence[RunData], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = _colours(runs)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, metric, label in ((axes[0], ENV_REWARD, "learned (env) reward"), (axes[1], GOLD_REWARD, "gold reward")):
        for r in runs:
            xs, ys = r.series(metric)
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, color=colours[r.name], label=f"{r.name} ({r.algo})")
            if metric == ENV_REWARD:
                xs, ys = r.series(TRAIN_ENV_REWARD)
                if xs:
                    ax.plot(xs, ys, ls="--", color=colours[r.name], label=f"{r.name}: training contexts")
        ax.set_title(f"held-out {label}")
        ax.set_xlabel("samples (env interactions)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _metric_pairs(run: RunData, x: str, y: str) -> list[tuple[float, float]]:
    """(``x``, ``y``) of every logged row of ``run`` that holds both, in training order."""
    return [(float(row[x]), float(row[y])) for row in run.metrics if _is_number(row.get(x)) and _is_number(row.get(y))]


def _plot_trajectories(
    runs: Sequence[RunData], x: str, y: str, path: Path, xlabel: str, title: str, empty: bool = False
) -> bool:
    """``y`` against ``x`` over each run's evaluations, a star at the last; ``False`` (no file) when no run logged
    both, unless ``empty`` (then an empty plot is written)."""
    series = [(r, pairs) for r in runs if (pairs := _metric_pairs(r, x, y))]
    if not series and not empty:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = _colours(runs)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for r, pairs in series:
        xs, ys = zip(*pairs, strict=True)
        ax.plot(xs, ys, marker="o", ms=3, alpha=0.8, color=colours[r.name], label=f"{r.name} ({r.algo})")
        ax.scatter(xs[-1:], ys[-1:], s=60, marker="*", color=colours[r.name])  # where training ended
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"gold reward ({y})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _plot_overoptimisation(runs: Sequence[RunData], path: Path) -> None:
    """Gold against learned reward over each run's evaluations (reward over-optimisation shows here); always
    written, empty when no run logged both."""
    _plot_trajectories(runs, ENV_REWARD, GOLD_REWARD, path, f"learned reward ({ENV_REWARD})",
                       "gold vs learned reward over training (★ = last eval)", empty=True)  # fmt: skip


def _plot_gold_vs_kl(runs: Sequence[RunData], path: Path) -> bool:
    """Gold reward against ``eval/kl`` over each run's evaluations; ``False`` (no file) when no run logged both."""
    return _plot_trajectories(runs, KL, GOLD_REWARD, path, f"KL to the reference policy ({KL})",
                              "gold reward vs KL over training (★ = last eval)")  # fmt: skip
