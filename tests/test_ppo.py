"""PPO from TRL on the dialogue environments, at the tiny sizes (seconds per update on a CPU)."""

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rlhf.envs import register_reward_env

from rlhf.config import load_config
from rlhf.data.chat import words
from rlhf.rewards.base import CallableReward
from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD, KL, SAMPLES
from rlhf.runs.records import read_run
from rlhf.training.checkpoints import checkpoint_dirs
from rlhf.training.ppo import AdaptiveKLCallback, PPOConfig, PPORunCallback, fit_prompts, make_env, train_ppo

VERBOSE_ENV = "rlhf-test/Verbose-v0"


def verbosity(contexts, replies):
    """min(words, 8) / 8: a dense reward the tiny policy can climb in a few updates (see the test below)."""
    return [min(len(words(r)), 8) / 8 for r in replies]


register_reward_env(VERBOSE_ENV, CallableReward(verbosity, name="verbosity"))
LOUD_ENV = "rlhf-test/VerboseTimes100-v0"
register_reward_env(LOUD_ENV, CallableReward(lambda c, r: [100 * v for v in verbosity(c, r)], name="verbosity100"))


def tiny_config(tmp_path, tiny_policy_config, **overrides) -> PPOConfig:
    """configs/ppo/tiny.yaml on the session's tiny policy, with runs under ``tmp_path``."""
    config = load_config(PPOConfig, "configs/ppo/tiny.yaml")
    policy_kwargs = {**config.policy_kwargs, "cache_dir": tiny_policy_config.cache_dir}
    defaults = dict(policy_kwargs=policy_kwargs, runs_dir=str(tmp_path / "runs"), wandb_mode="disabled")
    return dataclasses.replace(config, **{**defaults, **overrides})


def _train_rows(run_dir):
    return [row for row in read_run(run_dir)["metrics"] if "objective/scores" in row]


# -- errors, before any model is loaded -----------------------------------------------------------------


def test_a_batch_that_does_not_split_over_the_processes_is_named(tmp_path, monkeypatch):
    # accelerate launch --num_processes 3 with batch_size 8: each process would sample 8 / 3 replies.
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    config = PPOConfig(batch_size=8, runs_dir=str(tmp_path / "runs"), wandb_mode="disabled")
    with pytest.raises(ValueError, match=r"batch_size 8 is not a multiple of num_mini_batches x processes \(1 x 3\)"):
        train_ppo(config)
    assert not (tmp_path / "runs").exists()


def test_a_kl_target_that_is_not_positive_is_named_before_any_run(tmp_path):
    config = PPOConfig(kl_target=0.0, runs_dir=str(tmp_path / "runs"), wandb_mode="disabled")
    with pytest.raises(ValueError, match="kl_target must be > 0"):
        train_ppo(config)
    assert not (tmp_path / "runs").exists()


def test_unknown_env_id_is_named_with_the_rlhf_ids():
    with pytest.raises(ValueError, match=r"'rlhf/Nope-v0' is not a registered environment.*rlhf/Dialogue-v0"):
        make_env("rlhf/Nope-v0")


def test_env_without_batched_reward_is_refused():
    with pytest.raises(TypeError, match="'CartPole-v1' has no batched reward"):
        make_env("CartPole-v1")


def test_long_prompts_are_dropped_with_a_count_and_none_left_is_an_error(tiny_policy, capsys):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy.path)
    contexts = [("Hi",), ("word " * 200,), ("How are you?",), ("again " * 300,)]
    kept, ids = fit_prompts(tokenizer, contexts, max_tokens=40)
    assert kept == [("Hi",), ("How are you?",)] and all(len(row) <= 40 for row in ids)
    assert "dropped 2 of 4 prompts longer than 40 tokens" in capsys.readouterr().out
    with pytest.raises(ValueError, match="none of the 2 prompts fits in 40 tokens"):
        fit_prompts(tokenizer, contexts[1::2], max_tokens=40)


def test_nan_loss_stops_with_an_error_naming_the_step(tmp_path):
    record = SimpleNamespace(folder=tmp_path, log=lambda metrics, step: None)
    callback = PPORunCallback(SimpleNamespace(run_dir=tmp_path, record=record), step_offset=5, samples_offset=40)
    state = SimpleNamespace(global_step=2, episode=16)
    callback.on_log(None, state, None, logs={"loss/policy_avg": 0.1, "loss/value_avg": 0.2})
    with pytest.raises(FloatingPointError, match=r"loss/policy_avg is nan at step 7 \(56 samples\)"):
        callback.on_log(None, state, None, logs={"loss/policy_avg": math.nan, "loss/value_avg": 0.2})
    # A process other than the main one (no record) stops too, instead of training on alone.
    other = PPORunCallback(SimpleNamespace(run_dir=tmp_path, record=None), step_offset=5, samples_offset=40)
    with pytest.raises(FloatingPointError, match=r"loss/value_avg is inf at step 7"):
        other.on_log(None, state, None, logs={"loss/policy_avg": 0.1, "loss/value_avg": math.inf})


# -- training -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ppo_raises_an_easy_reward(tmp_path, tiny_policy_config, tiny_policy):
    """The tiny policy never says "thanks" (0 of 256 sampled replies), so gold "thanks" gives PPO nothing to
    reinforce. Its greedy replies are short (~2.5 words) while samples vary in length, so a dense reward for
    longer replies (up to 8 words) is one it can discover within 10 updates."""
    config = tiny_config(
        tmp_path, tiny_policy_config, env_id=VERBOSE_ENV, env_kwargs={"gold": "default"},
        total_episodes=80, batch_size=8, num_ppo_epochs=4, response_length=10,
    )  # fmt: skip
    result = train_ppo(config)
    assert result.finished and result.steps == 10 and result.samples == 80
    # ~0.44 -> ~0.68 here; the mean of 64 sampled replies has a standard error of ~0.04, so +0.1 is a rise, not noise.
    assert result.after[ENV_REWARD] > result.before[ENV_REWARD] + 0.1
    assert result.before[KL] == pytest.approx(0.0, abs=1e-5) and result.after[KL] > 0
    assert GOLD_REWARD in result.after  # the env's gold scorer is reported beside its reward


@pytest.mark.slow
def test_a_normalised_reward_trains_the_same_whatever_its_scale(tmp_path, tiny_policy_config, tiny_policy):
    """With normalize_reward, a reward 100 times larger is the same optimisation problem: TRL sees the same scores,
    so the same update. Without it, the KL penalty weighs 100 times less against the larger one."""

    def first_update(env_id, name, normalize):
        config = tiny_config(tmp_path, tiny_policy_config, env_id=env_id, run_name=name, normalize_reward=normalize,
                             total_episodes=8, batch_size=8)  # fmt: skip
        train_ppo(config)
        (row,) = _train_rows(Path(config.runs_dir) / "tiny" / name)
        return row

    plain, loud = first_update(VERBOSE_ENV, "plain", True), first_update(LOUD_ENV, "loud", True)
    assert loud["objective/scores"] == pytest.approx(plain["objective/scores"], abs=1e-4)
    assert loud["loss/policy_avg"] == pytest.approx(plain["loss/policy_avg"], abs=1e-4)
    stats = json.loads((tmp_path / "runs" / "tiny" / "loud" / "reward_normalisation.json").read_text())
    assert stats["scale"] > 1  # the std of a reward in [0, 100] over the tiny policy's replies
    raw = first_update(LOUD_ENV, "raw", False)
    assert raw["objective/scores"] > 10 * abs(loud["objective/scores"]) + 1


@pytest.mark.slow
def test_interrupted_run_resumes_without_repeating_steps(tmp_path, tiny_policy_config, tiny_policy, capsys):
    config = tiny_config(tmp_path, tiny_policy_config, total_episodes=32, batch_size=8, save_steps=2)
    first = train_ppo(dataclasses.replace(config, stop_after_steps=2))
    assert not first.finished and first.steps == 2
    assert read_run(first.run_dir)["info"]["status"] == "interrupted"
    assert [p.name for p in checkpoint_dirs(first.run_dir)] == ["step-000002"]
    with pytest.raises(FileExistsError, match="--resume true"):
        train_ppo(config)

    second = train_ppo(dataclasses.replace(config, resume=True))
    assert second.finished and second.steps == 4 and second.samples == 32
    run = read_run(second.run_dir)
    assert run["info"]["status"] == "finished"
    rows = _train_rows(second.run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r[SAMPLES] for r in rows] == [8, 16, 24, 32]
    evals = [r["step"] for r in run["metrics"] if ENV_REWARD in r]
    assert evals == [0, 4]  # before and after, once each
    assert second.before == first.before and second.after
    state = json.loads((checkpoint_dirs(second.run_dir)[-1] / "state.json").read_text())
    assert state == {"step": 4, "samples": 32, "kl_coef": config.kl_coef}
    optimizer = torch.load(checkpoint_dirs(second.run_dir)[-1] / "optimizer.pt", weights_only=True)
    assert optimizer["scheduler"]["last_epoch"] == 4
    bar = capsys.readouterr().err  # the progress bar: updates done of all, TRL's rollout reward and KL
    assert "4/4" in bar and "reward=" in bar and "kl=" in bar
    # The finished run's policy, at a stable path, loads as a plain causal LM: the last checkpoint's weights.
    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(f"{second.run_dir}/final")
    last = AutoModelForCausalLM.from_pretrained(checkpoint_dirs(second.run_dir)[-1] / "policy")
    assert all(torch.equal(a, b) for a, b in zip(final.parameters(), last.parameters(), strict=True))
    card = (Path(second.run_dir) / "final" / "README.md").read_text()
    assert "| eval/env_reward |" in card and '"total_episodes": 32' in card
    assert not (Path(first.run_dir) / "final").exists() or second.run_dir == first.run_dir

    again = train_ppo(dataclasses.replace(config, resume=True))
    assert again.skipped and again.steps == 4
    assert "ppo: skipped, finished run record exists" in capsys.readouterr().out


def test_adaptive_kl_moves_the_coefficient_towards_the_target_but_never_below_the_floor():
    control = AdaptiveKLCallback(target=6.0, horizon=64, batch_size=32, floor=0.05)  # moves 32/64 of the error
    assert control.update(0.1, 6.6) == pytest.approx(0.1 * (1 + 0.1 / 2))  # KL 10 % over the target
    assert control.update(0.1, 12.0) == pytest.approx(0.1 * (1 + 0.2 / 2))  # 100 % over: clipped to 20 %
    assert control.update(0.1, 0.0) == pytest.approx(0.1 * (1 - 0.2 / 2))  # under the target: falls back
    assert control.update(0.052, 0.0) == 0.05  # but never below the configured kl_coef
    args, logs = SimpleNamespace(kl_coef=0.1), {"objective/kl": 12.0}
    control.on_log(args, None, None, logs=logs)
    assert logs["objective/kl_coef"] == 0.1 and args.kl_coef == pytest.approx(0.11)  # logged: the one used
    with pytest.raises(ValueError, match="kl_target"):
        AdaptiveKLCallback(target=0.0, horizon=64, batch_size=32, floor=0.05)


@pytest.mark.slow
def test_trl_uses_the_adapted_kl_coefficient_and_a_resumed_run_keeps_it(tmp_path, tiny_policy_config, tiny_policy,
                                                                         capsys):  # fmt: skip
    """A KL target far below the tiny policy's KL raises kl_coef by 20 % after every update but the first (whose
    rollout comes from the reference itself: KL 0, and the floor holds). TRL's penalty
    (objective/non_score_reward = -kl_coef x objective/kl) shows the coefficient it used, and a run resumed from
    a checkpoint goes on from the adapted coefficient, not from kl_coef again."""
    config = tiny_config(tmp_path, tiny_policy_config, total_episodes=32, batch_size=8, save_steps=1,
                         kl_coef=0.05, kl_target=1e-6, kl_horizon=8)  # fmt: skip
    train_ppo(dataclasses.replace(config, stop_after_steps=2))
    state = json.loads((checkpoint_dirs(Path(config.runs_dir) / "tiny" / "ppo")[-1] / "state.json").read_text())
    assert state["step"] == 2 and state["kl_coef"] == pytest.approx(0.06)  # the coefficient of the next update
    result = train_ppo(dataclasses.replace(config, resume=True))
    rows = _train_rows(result.run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r["objective/kl_coef"] for r in rows] == pytest.approx([0.05, 0.05, 0.06, 0.072])
    assert all(r["objective/kl"] > 0 for r in rows[1:])
    for row in rows:
        assert row["objective/non_score_reward"] == pytest.approx(-row["objective/kl_coef"] * row["objective/kl"])
    assert "kl_coef=0.072" in capsys.readouterr().err  # the progress bar shows the coefficient in use


@pytest.mark.slow
def test_a_run_does_not_depend_on_the_global_random_state_it_starts_in(tmp_path, tiny_policy_config, tiny_policy):
    """The main job trains the reward model (transformers seeds Python's, numpy's and torch's generators) before
    PPO in the same process, a re-run that reuses it does not: PPO must seed every generator itself. Unseeded,
    Python's generator changed TRL's KL at the third update (and the main job's round 1: held-out gold 0.456 at
    KL 4.27 after a reward model was trained in the process, 0.462 at KL 3.54 after one was reused)."""
    import random

    import numpy as np

    def kls(name, state):
        random.seed(state)
        np.random.seed(state)
        config = tiny_config(tmp_path, tiny_policy_config, run_name=name, total_episodes=24, batch_size=8)
        train_ppo(config)
        return [row["objective/kl"] for row in _train_rows(Path(config.runs_dir) / "tiny" / name)]

    assert kls("a", 0) == kls("b", 12345)


@pytest.mark.slow
def test_a_finished_run_is_redone_when_the_trainer_version_changes(tmp_path, tiny_policy_config, tiny_policy,
                                                                   monkeypatch):  # fmt: skip
    """The fingerprint holds configs and inputs, not code: a change that trains the same config differently (as
    seeding every generator did) raises ppo.VERSION, and a run finished before it is not reported again."""
    import rlhf.training.ppo as ppo

    config = tiny_config(tmp_path, tiny_policy_config, total_episodes=8, batch_size=8)
    assert not train_ppo(config).skipped
    assert train_ppo(config).skipped
    monkeypatch.setattr(ppo, "VERSION", ppo.VERSION + 1)
    again = train_ppo(config)
    assert again.finished and not again.skipped


@pytest.mark.slow
def test_two_runs_sit_side_by_side_in_one_wandb_group(tmp_path, tiny_policy_config, tiny_policy, monkeypatch):
    """Two tiny runs (one with a LoRA policy, its reference the adapter-disabled model) in group "sweep"."""
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    base = tiny_config(tmp_path, tiny_policy_config, group="sweep", wandb_mode="offline", total_episodes=8)
    full = train_ppo(dataclasses.replace(base, run_name="full"))
    lora = train_ppo(dataclasses.replace(base, run_name="lora", use_peft=True))
    assert sorted(p.name for p in (tmp_path / "runs" / "sweep").iterdir()) == ["full", "lora"]
    for result, name in ((full, "full"), (lora, "lora")):
        info = read_run(result.run_dir)["info"]
        assert info["group"] == "sweep" and info["name"] == name and info["tags"][:2] == ["ppo", "rlhf/Dialogue-v0"]
        (offline,) = (tmp_path / "wandb").glob(f"wandb/offline-run-*-{info['wandb_id']}")
        data = next(offline.glob("*.wandb")).read_bytes()
        assert b"sweep" in data and name.encode() in data
        assert result.after[KL] == pytest.approx(result.after[KL])  # finite
    assert (checkpoint_dirs(lora.run_dir)[-1] / "policy" / "adapter_config.json").is_file()
    from transformers import AutoModelForCausalLM

    merged = Path(lora.run_dir) / "final"  # the adapter merged in: loads without peft
    assert not (merged / "adapter_config.json").exists() and AutoModelForCausalLM.from_pretrained(merged)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_run_uses_cuda_with_bf16_autocast(tmp_path, tiny_policy_config, tiny_policy):
    torch.cuda.reset_peak_memory_stats()
    config = tiny_config(tmp_path, tiny_policy_config, device="cuda", total_episodes=16, batch_size=8)
    result = train_ppo(config)
    assert result.finished and result.steps == 2 and torch.cuda.max_memory_allocated() > 0
    policy = checkpoint_dirs(result.run_dir)[-1] / "policy"
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(policy).dtype == torch.float32  # fp32 master weights
