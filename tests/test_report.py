"""The comparison report from synthetic run records: table, plots, half-written runs, missing metrics, errors."""

import json

import pytest
from matplotlib.image import imread

from rlhf.runs.records import RunRecord
from rlhf.runs.report import EmptyGroupError, build_report, load_runs

EVALS = {"ppo": (0.2, 0.1), "qlearning": (0.3, 0.3), "dqn": (0.4, 0.35)}  # final (env, gold) reward


def _record(tmp_path, algo, steps=(0, 100, 200), finish=True, kl=False, gold=True, extra=None):
    record = RunRecord.start(algo=algo, env_id="rlhf/DialogueSelect-v0", config={}, group="exp", runs_dir=tmp_path,
                             wandb_mode="disabled")  # fmt: skip
    env, gold_final = EVALS.get(algo, (0.5, 0.5))
    for i, step in enumerate(steps):
        scale = (i + 1) / len(steps)
        metrics = {"eval/env_reward": env * scale, "eval/reply_length": 7.0, "samples": step}
        if gold:
            metrics["eval/gold_reward"] = gold_final * scale
        if kl:
            metrics["eval/kl"] = 0.05 * i
        metrics.update(extra or {})
        record.log(metrics, step=step)
    if finish:
        summary = {"eval/env_reward": env, "wall_time": 12.5, "samples": steps[-1]}
        record.finish({**summary, "eval/gold_reward": gold_final} if gold else summary)
    return record.folder


@pytest.fixture
def group(tmp_path):
    _record(tmp_path, "ppo", kl=True)
    _record(tmp_path, "qlearning", extra={"eval_train/env_reward": 0.6})
    half = _record(tmp_path, "dqn", finish=False)
    with (half / "metrics.jsonl").open("a") as f:
        f.write('{"step": 300, "eval/env_re')  # killed mid-write
    _record(tmp_path, "custom", gold=False)
    rm = RunRecord.start(algo="reward_model", env_id="preferences", config={}, group="exp", runs_dir=tmp_path,
                         wandb_mode="disabled")  # fmt: skip
    rm.log({"eval/pairwise_accuracy": 0.8}, step=10)
    rm.finish({"eval/pairwise_accuracy": 0.8})
    return tmp_path


def _row(text, name):
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_report_table_plots_and_problems(group, tmp_path):
    path = build_report("exp", tmp_path / "out", runs_dir=group, source="local")
    text = path.read_text()
    ppo, qlearning, dqn, custom = (_row(text, n) for n in ("ppo", "qlearning", "dqn", "custom"))
    assert ppo[1:] == ["ppo", "finished", "0.200", "0.100", "0.100", "12.5", "200"]
    assert qlearning[1:4] == ["qlearning", "finished", "0.300"] and qlearning[5] == "—"  # no KL
    # Half-written: no summary, so the last complete line's values; the truncated line is skipped and reported.
    assert dqn[2].startswith("**incomplete**") and dqn[3] == "0.400" and dqn[7] == "200"
    assert "metrics.jsonl ends in a truncated line" in text and "no summary.json" in text
    assert custom[4] == "—" and "- custom (custom): `eval/gold_reward`" in text
    assert "Metrics every run logged (comparable): `eval/env_reward`, `eval/reply_length`." in text
    assert "- qlearning: 0.600" in text  # its score on its training contexts
    assert "reward_model (reward_model): eval/pairwise_accuracy 0.800" in text and "| reward_model |" not in text
    for png in ("reward_vs_samples.png", "gold_vs_learned.png"):
        assert f"]({png})" in text
        image = imread(tmp_path / "out" / png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_runs_listed_by_folder_include_a_missing_one(group, tmp_path):
    runs = load_runs([group / "exp" / "ppo", tmp_path / "nowhere"], source="local")
    assert runs[0].complete and runs[1].status == "missing" and "no such folder" in runs[1].problems[0]
    text = build_report([group / "exp" / "ppo", tmp_path / "nowhere"], tmp_path / "out2").read_text()
    assert "| nowhere | ? | **incomplete** (missing) | — |" in text


def test_empty_group_is_a_clear_error(tmp_path):
    with pytest.raises(EmptyGroupError, match=r"no runs in group 'void': .*void does not exist"):
        build_report("void", tmp_path / "out", runs_dir=tmp_path, source="local")
    (tmp_path / "void").mkdir()
    with pytest.raises(EmptyGroupError, match="holds no run folders"):
        build_report("void", tmp_path / "out", runs_dir=tmp_path, source="local")


def test_report_command_exits_2_on_an_empty_group_and_writes_a_report(group, tmp_path, capsys, monkeypatch):
    from rlhf.cli import main

    module = type("cli", (), {"main": staticmethod(lambda args: main(["report", *args]))})
    assert module.main(["--group", "void", "--runs_dir", str(tmp_path)]) == 2
    assert "no runs in group 'void'" in capsys.readouterr().err
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert module.main(["--group", "exp", "--runs_dir", str(group), "--source", "auto"]) == 0
    out = capsys.readouterr().out
    assert "reading local run records" in out and (group / "exp" / "report" / "report.md").is_file()
    assert json.loads((group / "exp" / "ppo" / "run.json").read_text())["status"] == "finished"


def test_all_methods_in_one_table_in_method_order_and_gold_against_kl(tmp_path):
    """PPO, GRPO, RLOO, DPO (with a reference: KL) and DQN, Q-learning (without) on one held-out set."""
    for algo in ("qlearning", "dpo", "dqn", "rloo", "ppo", "grpo"):  # written in another order on purpose
        _record(tmp_path, algo, kl=algo not in ("dqn", "qlearning"))
    text = build_report("exp", tmp_path / "out", runs_dir=tmp_path, source="local").read_text()
    table = [line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert table[1:] == ["ppo", "grpo", "rloo", "dpo", "dqn", "qlearning"]
    assert _row(text, "grpo")[5] == "0.100" and _row(text, "dqn")[5] == "—"  # final KL; none without a reference
    assert "](gold_vs_kl.png)" in text
    image = imread(tmp_path / "out" / "gold_vs_kl.png")
    assert image.ndim == 3 and image.shape[0] > 100


def test_no_gold_against_kl_plot_when_no_run_has_a_reference(tmp_path):
    _record(tmp_path, "dqn")
    text = build_report("exp", tmp_path / "out", runs_dir=tmp_path, source="local").read_text()
    assert "gold_vs_kl.png" not in text and not (tmp_path / "out" / "gold_vs_kl.png").exists()


def test_failed_and_interrupted_runs_are_kept_apart(tmp_path):
    from rlhf.runs.records import FAILED, INTERRUPTED

    _record(tmp_path, "ppo", kl=True)
    for algo, status in (("dqn", FAILED), ("qlearning", INTERRUPTED)):
        folder = _record(tmp_path, algo, finish=False)
        record = RunRecord(folder, json.loads((folder / "run.json").read_text()))
        record.mark(status, f"{algo} stopped")
    text = build_report("exp", tmp_path / "out", runs_dir=tmp_path, source="local").read_text()
    assert _row(text, "ppo")[2] == "finished"
    assert "| dqn |" not in text and "| qlearning |" not in text  # not in the table of results
    assert "- dqn (dqn, failed): dqn stopped" in text
    assert "- qlearning (qlearning, interrupted): qlearning stopped" in text


def _policy_run(tmp_path, name, algo, tags, golds, replies):
    """A run of ``name`` whose evaluations at steps 0, 1, … score ``golds``, and whose last logs ``replies``."""
    record = RunRecord.start(algo=algo, env_id="rlhf/Dialogue-v0", config={}, group="it", name=name,
                             runs_dir=tmp_path, wandb_mode="disabled", tags=tags)  # fmt: skip
    for step, gold in enumerate(golds):
        record.log({"eval/env_reward": gold * 2, "eval/gold_reward": gold, "eval/kl": step, "samples": step}, step=step)
        said = replies if step == len(golds) - 1 else [f"first {name}" for _ in replies]
        rows = [{"context": f"question {i}", "reply": reply, "gold_reward": gold} for i, reply in enumerate(said)]
        record.log_samples(rows, step=step)
    record.finish({"eval/gold_reward": golds[-1], "samples": len(golds) - 1})


def test_rounds_oracle_and_replies_side_by_side(tmp_path):
    _policy_run(tmp_path, "ppo-round1", "ppo", ["round-1"], [0.2, 0.3], ["one a", "one b"])
    _policy_run(tmp_path, "ppo-round2", "ppo", ["round-2"], [0.3, 0.35], ["two a", "two | b"])
    _policy_run(tmp_path, "ppo-oracle", "ppo", ["oracle"], [0.2, 0.4], ["gold a", "gold b"])
    _policy_run(tmp_path, "dqn", "dqn", [], [0.2, 0.25], ["pick a", "pick b"])
    report = build_report("it", runs_dir=tmp_path, source="local")
    text = report.read_text()
    assert "| 2 | ppo-round2 | 0.300 → 0.350 |" in text
    # The last round gains 0.15 gold over the initial 0.2, the oracle 0.2: three quarters of it.
    assert "recovers **75%** of the oracle's gain" in text
    assert imread(report.parent / "rounds.png").shape[0] > 100
    header = next(line for line in text.splitlines() if line.startswith("| context |"))
    assert header == "| context | initial policy | ppo-round1 | ppo-round2 | ppo-oracle | dqn |"
    # The initial column is round 1's first evaluation; the others each run's last; a "|" is escaped.
    row = "| question 1 | first ppo-round1 (0.20) | one b (0.30) | two \\| b (0.35) | gold b (0.40) | pick b (0.25) |"
    assert row in text
