"""PPO on a dialogue environment, with TRL's ``PPOTrainer`` doing the optimisation.

The rollout, GAE and the clipped PPO update are TRL's (``trl.experimental.ppo``); this module wires
the toolkit's pieces into it:

* policy and frozen reference from the policy checkpoint (:func:`rlhf.models.policy.policy_path`), or the
  reference from ``ref_policy`` (an earlier policy, for iterated rounds); with ``use_peft`` the policy gets a
  LoRA adapter and the reference is the same model with it disabled;
* a value model from the reward-model folder when the env's reward is one that reads the policy's
  tokens, else from the policy (a fresh one-output head);
* prompts and reward from the registered environment ``env_id`` (``gymnasium.make(env_id, **env_kwargs)``;
  ``"module:id"`` imports ``module`` first): the env keeps the reward, prompts and gold it was registered
  with unless ``env_kwargs`` names one; its ``contexts`` are the prompts (drawn with replacement when fewer
  than a batch); its batched reward reaches TRL through
  :class:`rlhf.rewards.trl_adapter.EnvRewardModel`, always, so PPO optimises exactly the reward the evaluation
  reports (``env.unwrapped.score_replies`` on the reply TRL's loss covers), learned reward model or not;
* every ``eval_steps`` updates, sampled replies to the env's own held-out contexts are scored by the shared
  evaluation (:mod:`rlhf.runs.evaluation`) plus ``eval/kl``; TRL's own ``objective/*`` metrics are forwarded,
  all into the run record (:mod:`rlhf.runs.records`) with ``samples`` (replies scored so far) beside the step;
* a checkpoint (:mod:`rlhf.training.checkpoints`: policy, value, optimizer and scheduler state, step) every
  ``save_steps`` updates and at the end; ``resume`` trains only the updates left after the last one and
  appends to the record.

Under ``accelerate launch --num_processes N`` (TRL's trainer does the data parallelism) ``batch_size`` stays the
global batch: each process samples ``batch_size / N`` replies with its own environment, and the main process
alone evaluates, writes the run record and the wandb run, saves checkpoints and ``final/``. Its evaluation and
saves use the unwrapped models and no collective op, so the other processes wait for it at the next gradient
all-reduce instead of deadlocking.

A reply ends at its first line break: generation stops on every token holding one (``stop_at_newline``)
and at EOS, and pads the rest, so TRL masks everything after it out of the loss, and the reward reads the
reply up to it. ``missing_eos_penalty`` is taken off the reward of a reply that reached ``response_length``
unended (TRL's option; applied in the adapter, since TRL's own check looks for EOS, not a line break).

On CUDA the trainable models (policy, value) keep fp32 weights and train under bf16 autocast
(TRL's ``PPOConfig.bf16``; TRL's accelerator applies it to their forward passes), the reference matches the
policy's weights so the KL starts at zero, and a learned reward model runs in bf16. ``model_dtype:
bfloat16`` stores all weights in bf16 instead (half the memory; small updates round away). CPU: fp32.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import random
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback

from rlhf.data.corpus import turns_of
from rlhf.envs.registration import resolve_env_id
from rlhf.models.policy import (
    PolicyConfig,
    context_window,
    load_policy,
    mask_spelling,
    policy_path,
    resolve_device,
    save_pretrained_atomically,
)
from rlhf.rewards.reward_model import RewardModelScorer
from rlhf.rewards.trl_adapter import EnvRewardModel, batched_reward_of, encode_prompts, stop_token_ids
from rlhf.runs.evaluation import SAMPLES
from rlhf.runs.records import INTERRUPTED, RunRecord, RunSettings, marks_failure
from rlhf.training.checkpoints import (
    latest_checkpoint,
    load_optimizer_state,
    prune_checkpoints,
    save_checkpoint,
    trim_record,
)
from rlhf.training.online import process_layout
from rlhf.training.policy_eval import (
    PolicyEvaluator,
    PolicyRunResult,
    evaluation_contexts,
    finished_policy_run,
    first_eval,
    sample_replies,
)

ALGO = "ppo"
FINAL = "final"  # <run>/final/: the trained policy, loadable by AutoModelForCausalLM.from_pretrained
MODEL_DTYPES = ("auto", "float32", "bfloat16")
# Raised when the same config trains differently, so that finished runs made before are redone (the fingerprint
# holds configs and inputs, not code). 2: every random generator seeded (Python's and numpy's too), 0009fba.
VERSION = 2
# Shown on the progress bar after each update: TRL's mean rollout reward, KL to the reference, and the KL
# coefficient that update used.
PROGRESS_METRICS = {"reward": "objective/scores", "kl": "objective/kl", "kl_coef": "objective/kl_coef"}


@dataclass
class PPOConfig(RunSettings):
    """One PPO run: the environment (reward and prompts), the models, TRL's PPO settings, evaluation and logging.

    ``configs/ppo/*.yaml`` mirror these fields; ``env_kwargs`` and ``policy_kwargs`` are mappings, set in YAML or
    on the command line (``--env_kwargs.reward_model path`` or ``--env_kwargs '{"reward": "length"}'``).
    """

    # The environment: its reward is what PPO maximises, its contexts are the prompts. env_id may be "module:id";
    # env_kwargs replace only what they name of what the env was registered with.
    env_id: str = "rlhf/Dialogue-v0"
    env_kwargs: dict = field(default_factory=dict)
    # The policy: "default" (built offline from policy_kwargs, the fields of rlhf.models.policy.PolicyConfig), a hub
    # name such as "gpt2", or a folder.
    policy: str = "default"
    policy_kwargs: dict = field(default_factory=dict)
    # The frozen KL reference: None is the policy PPO starts from. Iterated RLHF continues round k from round
    # k-1's policy and keeps the initial one as the reference (InstructGPT), so KL is always to the same model.
    ref_policy: str | None = None
    value_init: str = "auto"  # "auto" (the reward model when it reads the policy's tokens, else the policy), "policy"
    device: str = "auto"
    threads: int = 0  # torch CPU threads for this process; 0 keeps torch's default (1 is far faster on a busy CPU)
    model_dtype: str = "auto"  # "auto": fp32 weights (+ bf16 autocast on CUDA); "bfloat16": bf16 weights on CUDA
    use_peft: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    # PPO (TRL's PPOConfig): one update = one rollout batch of batch_size prompts, then num_ppo_epochs epochs.
    total_episodes: int = 2048
    batch_size: int = 32
    num_mini_batches: int = 1
    num_ppo_epochs: int = 4
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "linear"  # "linear" (to zero over the run) or "constant"
    response_length: int = 24
    temperature: float = 0.7
    stop_at_newline: bool = True
    missing_eos_penalty: float | None = None  # taken off the reward of a reply cut at response_length (TRL's option)
    # Reward normalisation (InstructGPT): PPO optimises (reward - mean) / std, both measured on the starting policy's
    # replies to training prompts, so kl_coef weighs the same against any reward's scale (a gold scorer in [0, 1]
    # or a reward model's logits). Evaluation reports the reward itself.
    normalize_reward: bool = False
    kl_coef: float = 0.05
    # Adaptive KL control (Ziegler et al. 2019), one-sided: after each update kl_coef is multiplied by
    # 1 + clip(KL / kl_target - 1, -0.2, 0.2) * batch_size / kl_horizon, never below the kl_coef set here; KL is
    # TRL's objective/kl of that update. None keeps kl_coef fixed.
    kl_target: float | None = None
    kl_horizon: int = 32  # samples: the smaller, the faster kl_coef moves
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    whiten_rewards: bool = False
    seed: int = 0
    # Evaluation, checkpoints, resume.
    eval_steps: int = 10
    eval_contexts: int = 64
    eval_samples: int = 2  # sampled replies per held-out context
    num_sample_rows: int = 8
    save_steps: int = 10
    save_total_limit: int = 2
    resume: bool = False
    stop_after_steps: int | None = None  # end this call after that many updates, resumable (an interruption)
    tags: list[str] = field(default_factory=list)


# -- building blocks ------------------------------------------------------------------------------------


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None):
    """``gymnasium.make(env_id, **env_kwargs)`` for an env whose reward can be batched; errors name the id.

    ``env_id`` may be Gymnasium's ``"module:id"``: the module is imported first (it registers the id). The
    env keeps the reward, prompts and gold it was registered with; ``env_kwargs`` replace only what they name.
    """
    import gymnasium

    env = gymnasium.make(resolve_env_id(env_id), **(env_kwargs or {}))
    try:
        batched_reward_of(env)
    except TypeError:
        env.close()
        raise
    return env


def fit_prompts(tokenizer, contexts: Sequence[Any], max_tokens: int) -> tuple[list[Any], list[list[int]]]:
    """The contexts whose prompt fits in ``max_tokens`` tokens, and their ids; prints how many were dropped.

    Raises ``ValueError`` when none fits.
    """
    ids = encode_prompts(tokenizer, [turns_of(c) for c in contexts])
    kept = [i for i, row in enumerate(ids) if 0 < len(row) <= max_tokens]
    dropped = len(contexts) - len(kept)
    if not kept:
        longest = max((len(r) for r in ids), default=0)
        raise ValueError(
            f"none of the {len(contexts)} prompts fits in {max_tokens} tokens (the context window less "
            f"response_length); the shortest is {min((len(r) for r in ids), default=0)}, the longest {longest}"
        )
    if dropped:
        print(f"dropped {dropped} of {len(contexts)} prompts longer than {max_tokens} tokens")
    return [contexts[i] for i in kept], [ids[i] for i in kept]


def same_vocabulary(a, b) -> bool:
    """Whether two tokenizers map text to the same ids (same vocabulary and pad token)."""
    return a.get_vocab() == b.get_vocab() and a.pad_token_id == b.pad_token_id


def reward_model_for(
    env, tokenizer, contexts: Sequence[Sequence[str]], stop_ids: Sequence[int] = (), missing_eos_penalty=None,
    shift: float = 0.0, scale: float = 1.0,
) -> tuple[torch.nn.Module, str]:  # fmt: skip
    """What TRL scores rollouts with: always :class:`~rlhf.rewards.trl_adapter.EnvRewardModel`, which reads
    each reply where TRL's loss ends it and scores it through ``env.unwrapped.score_replies``, the path the
    evaluation uses. A reward model with the policy's tokenizer is not handed to TRL raw: TRL would score
    raw tokens, past a speaker cue and untruncated, which is not the reward the runs report."""
    reward_fn = getattr(env.unwrapped, "reward_fn", None)
    name = getattr(reward_fn, "name", type(env.unwrapped).__name__)
    adapter = EnvRewardModel(env, tokenizer, contexts, stop_ids, missing_eos_penalty, shift=shift, scale=scale)
    normalised = f", normalised as (r - {shift:.3f}) / {scale:.3f}" if (shift, scale) != (0.0, 1.0) else ""
    return adapter, f"env reward {name!r} through EnvRewardModel{normalised}"


NORMALISATION_FILE = "reward_normalisation.json"


def reward_normalisation(
    config: PPOConfig, run_dir: Path, env, models: PPOModels, contexts: Sequence[Any], stop_ids: Sequence[int]
) -> tuple[float, float]:
    """(shift, scale) of the reward PPO optimises: (0, 1) without ``normalize_reward``, else the mean and standard
    deviation of the env reward of the starting policy's replies to (up to) 128 training prompts, sampled as PPO
    samples them. Measured once per run and kept in ``<run>/reward_normalisation.json``, which a resume reads."""
    if not config.normalize_reward:
        return 0.0, 1.0
    stored = run_dir / NORMALISATION_FILE
    if config.resume and stored.is_file():
        saved = json.loads(stored.read_text())
        return float(saved["shift"]), float(saved["scale"])
    turns = [turns_of(c) for c in contexts[:128]]
    with torch.random.fork_rng(devices=[]):  # training's random stream stays as it would be without this
        replies, _, _ = sample_replies(models.policy, models.tokenizer, turns, num_samples=1,
                                       temperature=config.temperature, max_new_tokens=config.response_length,
                                       stop_ids=stop_ids, seed=config.seed)  # fmt: skip
    scores = np.asarray(batched_reward_of(env)(turns, replies), dtype=np.float64)
    shift, scale = float(scores.mean()), float(scores.std())
    scale = scale if scale > 1e-6 else 1.0  # a constant reward is only shifted
    run_dir.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps({"shift": shift, "scale": scale, "replies": len(replies)}, indent=2))
    return shift, scale


def _newline_id(tokenizer) -> int:
    ids = tokenizer("\n", add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(
            f"stop_at_newline: the tokenizer encodes a line break as {len(ids)} tokens {ids}, not one; "
            "set stop_at_newline false to stop at eos"
        )
    return ids[0]


class AdaptiveKLCallback(TrainerCallback):
    """Adaptive KL control (Ziegler et al. 2019, the controller TRL's PPO had before 0.12), one-sided: while the
    KL of an update is above ``target`` the coefficient grows, below it the coefficient falls back, never under
    ``floor`` (the configured ``kl_coef``). Symmetric control lowers the coefficient early in a run, when KL to the
    reference is still near 0, and so ends it further from the reference. TRL's PPO reads ``args.kl_coef`` at every
    update, so the next update uses the new value; each update logs the one it used as ``objective/kl_coef``."""

    def __init__(self, target: float, horizon: int, batch_size: int, floor: float) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError(f"kl_target ({target}) and kl_horizon ({horizon}) must be positive")
        self.target, self.horizon, self.batch_size, self.floor = target, horizon, batch_size, floor

    def update(self, kl_coef: float, kl: float) -> float:
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        return max(self.floor, kl_coef * (1.0 + error * self.batch_size / self.horizon))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "objective/kl" in logs:
            logs["objective/kl_coef"] = args.kl_coef  # the coefficient this update used
            args.kl_coef = self.update(args.kl_coef, float(logs["objective/kl"]))


# -- evaluation and logging, called by TRL every update -------------------------------------------------


class PPORunCallback(TrainerCallback):
    """Evaluates, logs, checkpoints and stops on a NaN loss while TRL's ``PPOTrainer.train`` runs.

    Steps and samples continue from ``step_offset``/``samples_offset`` on a resumed run.
    """

    def __init__(self, run: _Run, step_offset: int = 0, samples_offset: int = 0) -> None:
        self.run = run
        self.step_offset = step_offset
        self.samples_offset = samples_offset
        self.last_saved = step_offset

    def _position(self, state) -> tuple[int, int]:
        return self.step_offset + state.global_step, self.samples_offset + state.episode

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if self.run.record is None:  # not the main process: it evaluates, logs and saves nothing
            return
        if self.step_offset == 0:
            self.run.before = self.run.evaluate(step=0, samples=0)
        total = self.run.total_updates
        self.bar = tqdm(total=total, initial=self.step_offset, desc="ppo", unit="update", dynamic_ncols=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        step, samples = self._position(state)
        numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        for key in ("loss/policy_avg", "loss/value_avg"):
            if key in numbers and not math.isfinite(numbers[key]):
                raise FloatingPointError(
                    f"PPO {key} is {numbers[key]} at step {step} ({samples} samples) in {self.run.run_dir}: "
                    "lower learning_rate, check the reward for extreme values, or resume from the last checkpoint"
                )
        if self.run.record is None:
            return
        self.run.record.log({**numbers, SAMPLES: samples}, step=step)
        shown = {name: numbers[key] for name, key in PROGRESS_METRICS.items() if key in numbers}
        if getattr(self, "bar", None) is not None and shown:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()}, refresh=False)

    def on_step_end(self, args, state, control, **kwargs):
        step, samples = self._position(state)
        if self.run.record is None:
            return
        if getattr(self, "bar", None) is not None:
            self.bar.update(step - self.bar.n)
        if step % self.run.config.eval_steps == 0 and step < self.run.total_updates:
            self.run.evaluate(step, samples)
        if step % self.run.config.save_steps == 0:
            self._save(step, samples, args.kl_coef)

    def on_train_end(self, args, state, control, **kwargs):
        step, samples = self._position(state)
        if self.run.record is None:
            return
        if getattr(self, "bar", None) is not None:
            self.bar.close()
        if step > self.last_saved:
            self._save(step, samples, args.kl_coef)
        if step >= self.run.total_updates:
            self.run.after = self.run.evaluate(step, samples)

    def _save(self, step: int, samples: int, kl_coef: float) -> None:
        """A checkpoint after ``step`` updates; ``kl_coef`` is the next update's (adaptive KL control moves it)."""
        run = self.run
        save_checkpoint(run.run_dir, run.policy, run.value, run.tokenizer, run.optimizer, run.scheduler, step, samples,
                        kl_coef)  # fmt: skip
        self.last_saved = step
        prune_checkpoints(run.run_dir, run.config.save_total_limit)


@dataclass
class _Run:
    """What the callback needs of a run in progress; ``record`` and ``evaluator`` are ``None`` on a process other
    than the main one."""

    config: PPOConfig
    run_dir: Path
    record: RunRecord | None
    policy: Any
    value: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    evaluator: PolicyEvaluator | None
    total_updates: int
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)

    def evaluate(self, step: int, samples: int) -> dict[str, float]:
        """The shared held-out evaluation (:class:`~rlhf.training.policy_eval.PolicyEvaluator`) at ``step``."""
        return self.evaluator.evaluate(step, samples)


# -- checks and reuse -----------------------------------------------------------------------------------


def _check(config: PPOConfig, processes: int = 1) -> None:
    resolve_env_id(config.env_id)  # an unknown env is named before the policy is built (minutes for the default)
    if config.model_dtype not in MODEL_DTYPES:
        raise ValueError(f"model_dtype must be one of {MODEL_DTYPES}, got {config.model_dtype!r}")
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0 (it is {config.learning_rate}): PPO would not change the policy")
    if config.lr_scheduler_type not in ("linear", "constant"):
        raise ValueError(f"lr_scheduler_type must be 'linear' or 'constant', got {config.lr_scheduler_type!r}")
    for name in ("total_episodes", "batch_size", "num_mini_batches", "num_ppo_epochs", "response_length",
                 "eval_steps", "save_steps", "eval_contexts", "kl_horizon"):  # fmt: skip
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.kl_target is not None and not config.kl_target > 0:
        raise ValueError(f"kl_target must be > 0 nats, or null for a fixed kl_coef; got {config.kl_target}")
    if config.use_peft and config.ref_policy is not None:
        raise ValueError(
            "ref_policy: with use_peft the reference is the policy with its adapter disabled; leave ref_policy unset"
        )
    if config.batch_size % config.num_mini_batches:
        raise ValueError(
            f"batch_size {config.batch_size} is not a multiple of num_mini_batches {config.num_mini_batches}"
        )
    if config.batch_size % (processes * config.num_mini_batches):
        raise ValueError(
            f"batch_size {config.batch_size} is not a multiple of num_mini_batches x processes "
            f"({config.num_mini_batches} x {processes}): each process samples batch_size / processes replies"
        )


def reference_path(config: PPOConfig) -> str:
    """The frozen KL reference's folder or name: ``ref_policy``, else the policy PPO starts from."""
    return policy_path(_policy_config(config, config.ref_policy or config.policy))


def _policy_config(config: PPOConfig, policy: str | None = None) -> PolicyConfig:
    known = {f.name for f in dataclasses.fields(PolicyConfig)} - {"policy"}
    unknown = sorted(set(config.policy_kwargs) - known)
    if unknown:
        raise ValueError(f"policy_kwargs: unknown key(s) {unknown} for PolicyConfig; known: {sorted(known)}")
    return PolicyConfig(policy=policy or config.policy, **{"device": config.device, **config.policy_kwargs})


# -- building the run: models, prompts, optimizer, evaluation contexts, TRL's settings -----------------


@dataclass
class PPOModels:
    """The models of one run: the trained policy, its frozen reference (``None`` with LoRA: the policy with its
    adapter disabled), the critic and the tokenizer; ``source`` is the policy checkpoint a fresh run starts from."""

    policy: Any
    ref: Any
    value: Any
    tokenizer: Any
    source: str


def build_models(
    config: PPOConfig, env, checkpoint: Path | None, device: torch.device, dtype: torch.dtype
) -> PPOModels:
    """Policy, reference and value model: the reference from ``ref_policy`` or else the policy checkpoint, the
    policy and value from ``checkpoint`` when resuming."""
    source = policy_path(_policy_config(config))
    policy, tokenizer = load_policy(str(checkpoint / "policy") if checkpoint and not config.use_peft else source,
                                    device=str(device), dtype=dtype)  # fmt: skip
    mask_spelling(policy)  # sampling and TRL's log-probabilities see one distribution
    ref = None
    if config.use_peft:
        from peft import LoraConfig, PeftModel, get_peft_model

        if checkpoint:
            policy = PeftModel.from_pretrained(policy, checkpoint / "policy", is_trainable=True)
        else:
            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              task_type="CAUSAL_LM")  # fmt: skip
            policy = get_peft_model(policy, lora)
    else:
        ref, _ = load_policy(reference_path(config), device=str(device), dtype=dtype)
        mask_spelling(ref)
        ref.eval().requires_grad_(False)
    value = _value_model(config, env, tokenizer, source, checkpoint, dtype).to(device)
    return PPOModels(policy, ref, value, tokenizer, source)


def _value_model(config: PPOConfig, env, tokenizer, source: str, checkpoint: Path | None, dtype: torch.dtype):
    """The critic: from the checkpoint when resuming, else the reward model (``value_init: auto`` and it reads
    the policy's tokens), the policy, or a folder named by ``value_init``."""
    from transformers import AutoModelForSequenceClassification

    import rlhf.models.context_match  # noqa: F401  (a reward-model folder may hold the one that reads the context)

    folder = source
    reward_fn = getattr(env.unwrapped, "reward_fn", None)
    if checkpoint is not None:
        folder = str(checkpoint / "value")
    elif config.value_init == "auto":
        if isinstance(reward_fn, RewardModelScorer) and same_vocabulary(reward_fn.tokenizer, tokenizer):
            folder = str(reward_fn.path)
    elif config.value_init != "policy":
        folder = config.value_init
    try:
        value = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=dtype)
    except OSError as exc:
        raise ValueError(f"value_init: cannot load a value model from {folder!r} ({exc})") from exc
    value.config.pad_token_id = tokenizer.pad_token_id
    return value


def build_prompts(config: PPOConfig, env, models: PPOModels, total_updates: int) -> tuple[list[Any], list[list[int]]]:
    """The env's contexts that fit the policy's window, and the prompt ids TRL draws its batches from.

    TRL's dataloader drops an incomplete batch, so a prompt set smaller than ``batch_size`` would give no batch
    at all: it is drawn with replacement (seeded) into ``total_updates`` batches instead.
    """
    contexts, prompt_ids = fit_prompts(
        models.tokenizer, env.unwrapped.contexts, context_window(models.policy) - config.response_length
    )
    if len(contexts) < config.batch_size:
        draws = random.Random(config.seed).choices(range(len(contexts)), k=config.batch_size * total_updates)
        print(f"[ppo] {len(contexts)} prompts for batches of {config.batch_size}: drawn with replacement")
        prompt_ids = [prompt_ids[i] for i in draws]
    return contexts, prompt_ids


def build_optimizer(config: PPOConfig, models: PPOModels, total_updates: int):
    """AdamW over the trainable parameters of policy and value, and the learning-rate schedule over the run."""
    from transformers import get_scheduler

    params = [p for p in itertools.chain(models.policy.parameters(), models.value.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    scheduler = get_scheduler(config.lr_scheduler_type, optimizer, num_warmup_steps=0, num_training_steps=total_updates)
    return optimizer, scheduler


def _trl_args(config: PPOConfig, run_dir: Path, updates: int, seed: int, on_cuda: bool, newline: int | None,
              processes: int, kl_coef: float):  # fmt: skip
    """TRL's ``PPOConfig`` for ``updates`` updates: our batch (split over ``processes``), PPO and precision settings;
    logging, checkpoints and sample generations off (the run record and :mod:`rlhf.training.checkpoints` own them)."""
    from trl.experimental.ppo import PPOConfig as TRLPPOConfig

    return TRLPPOConfig(
        output_dir=str(run_dir / "trainer"),
        per_device_train_batch_size=config.batch_size // processes,  # TRL's global batch: this x processes
        local_rollout_forward_batch_size=config.batch_size // processes,
        gradient_accumulation_steps=1,
        num_mini_batches=config.num_mini_batches,
        num_ppo_epochs=config.num_ppo_epochs,
        total_episodes=updates * config.batch_size,
        learning_rate=config.learning_rate,
        response_length=config.response_length,
        temperature=config.temperature,
        stop_token=None if config.stop_at_newline else "eos",
        stop_token_id=newline,
        kl_coef=kl_coef,  # config.kl_coef, or a resumed run's adapted one
        cliprange=config.cliprange,
        cliprange_value=config.cliprange_value,
        vf_coef=config.vf_coef,
        gamma=config.gamma,
        lam=config.lam,
        whiten_rewards=config.whiten_rewards,
        seed=seed,
        bf16=on_cuda,
        fp16=False,
        use_cpu=not on_cuda,
        gradient_checkpointing=False,
        num_sample_generations=0,
        report_to="none",  # TRL's metrics reach wandb through the run record (PPORunCallback.on_log)
        save_strategy="no",  # checkpoints are ours: TRL's train() cannot resume
        logging_steps=1,
        disable_tqdm=True,
    )


# -- the training call ----------------------------------------------------------------------------------


@marks_failure
def train_ppo(config: PPOConfig) -> PolicyRunResult:
    """Train the policy with TRL's PPO on ``config.env_id``'s reward; log, evaluate and checkpoint the run.

    A finished run record of the same group and name made by the same config and inputs is not trained
    again (printed, and returned with ``skipped=True``); one made otherwise is moved aside and the run redone
    (:func:`rlhf.runs.records.finished_run`); an unfinished one needs ``resume=True``.
    """
    import datasets
    from trl.experimental.ppo import PPOTrainer

    started = time.time()
    processes, main = process_layout()
    _check(config, processes)
    device = resolve_device(config.device)
    on_cuda = device.type == "cuda"
    # The main process reads the run folder first (and moves a superseded record aside), then the others; none
    # goes on before all have read it, since the main process writes to it next.
    if not main:
        _wait_for_everyone(on_cuda)
    run_dir, fingerprint, finished = finished_policy_run(config, ALGO, policy_path(_policy_config(config)), VERSION)
    if processes > 1:
        if main:
            _wait_for_everyone(on_cuda)
        _wait_for_everyone(on_cuda)
    if finished is not None:
        return finished
    checkpoint, done = latest_checkpoint(run_dir) if config.resume else (None, {"step": 0, "samples": 0})
    total_updates = math.ceil(config.total_episodes / config.batch_size)
    updates = total_updates - done["step"]
    if config.stop_after_steps is not None:
        updates = min(updates, config.stop_after_steps)

    if config.threads:
        torch.set_num_threads(config.threads)
    # Python's, numpy's and torch's generators alike: a reward model trained earlier in this process (the main job)
    # leaves them elsewhere than a fresh process does, and unseeded they changed the run.
    set_seed(config.seed + done["step"])
    env = make_env(config.env_id, config.env_kwargs)
    dtype = torch.bfloat16 if on_cuda and config.model_dtype == "bfloat16" else torch.float32
    models = build_models(config, env, checkpoint, device, dtype)
    contexts, prompt_ids = build_prompts(config, env, models, total_updates)
    # A reply ends at EOS and, with stop_at_newline, at any token holding a line break ("\n", "\n\n", ".\n"):
    # generation stops there and pads the rest, so TRL's loss, the reward and the evaluation all end it there.
    stop_ids = stop_token_ids(models.tokenizer, at_newline=config.stop_at_newline)
    # One normalisation for all processes: the main one measures and stores it, the others read it.
    shift, scale = reward_normalisation(config, run_dir, env, models, contexts, stop_ids) if main else (0.0, 1.0)
    if processes > 1 and config.normalize_reward:
        _wait_for_everyone(on_cuda)
        if not main:
            saved = json.loads((run_dir / NORMALISATION_FILE).read_text())
            shift, scale = float(saved["shift"]), float(saved["scale"])
    reward_model, reward_note = reward_model_for(
        env, models.tokenizer, [turns_of(c) for c in contexts], stop_ids, config.missing_eos_penalty, shift, scale
    )
    print(f"[ppo] policy {models.source} on {device}; reward: {reward_note}; {len(contexts)} prompts")
    optimizer, scheduler = build_optimizer(config, models, total_updates)
    if checkpoint:
        load_optimizer_state(checkpoint, optimizer, scheduler, device)
        print(f"[ppo] resuming {run_dir} from {checkpoint.name}: {updates} of {total_updates} updates left")
    # The run record, its wandb run and the evaluation are the main process's alone. It writes nothing else before
    # TRL's trainer syncs the processes, so every process has read the checkpoint it resumes from by then.
    record, evaluator = None, None
    if main:
        if config.resume:
            trim_record(run_dir, done["step"] if checkpoint else -1)
        record = RunRecord.for_config(
            config, algo=ALGO, env_id=config.env_id, tags=config.tags, resume=config.resume, fingerprint=fingerprint
        )
        evaluator = PolicyEvaluator(
            models.policy, models.ref, models.tokenizer, env, evaluation_contexts(env, config.eval_contexts, ALGO),
            record, samples_per_context=config.eval_samples, temperature=config.temperature,
            max_new_tokens=config.response_length, stop_ids=stop_ids, seed=config.seed,
            num_sample_rows=config.num_sample_rows, label=ALGO,
        )  # fmt: skip
    run = _Run(config, run_dir, record, models.policy, models.value, models.tokenizer, optimizer, scheduler, evaluator,
               total_updates)  # fmt: skip
    newline = _newline_id(models.tokenizer) if config.stop_at_newline else None
    # A resumed run draws new prompt batches, not the first ones again: the seed moves with the step.
    # A resumed run goes on with the KL coefficient its checkpoint saved (adaptive KL control moves it).
    kl_coef = done.get("kl_coef", config.kl_coef)
    kl_control = []
    if config.kl_target is not None:
        kl_control = [AdaptiveKLCallback(config.kl_target, config.kl_horizon, config.batch_size, config.kl_coef)]
    args = _trl_args(config, run_dir, updates, config.seed + done["step"], on_cuda, newline, processes, kl_coef)
    with _accelerate_settings(on_cuda):
        trainer = PPOTrainer(
            args=args,
            processing_class=models.tokenizer,
            model=models.policy,
            ref_model=models.ref,
            reward_model=reward_model,
            train_dataset=datasets.Dataset.from_dict({"input_ids": prompt_ids}),
            value_model=models.value,
            optimizers=(optimizer, scheduler),
            callbacks=[*kl_control, PPORunCallback(run, done["step"], done["samples"])],
        )
    # TRL stops generation at one stop token; ours are all the tokens that end a reply (see stop_ids).
    trainer.policy_model.generation_config.eos_token_id = stop_ids
    trainer.remove_callback(PrinterCallback)  # every update's metrics go to the run record, not to stdout
    wanted = "bf16" if on_cuda else "no"
    if str(trainer.accelerator.mixed_precision) != wanted:
        print(f"[ppo] warning: accelerate was set up earlier in this process with mixed precision "
              f"{trainer.accelerator.mixed_precision!r}, not {wanted!r}; run PPO in a fresh process")  # fmt: skip
    try:
        trainer.train()  # an exception marks the record failed or interrupted (marks_failure)
    finally:
        env.close()
    steps, samples = done["step"] + updates, done["samples"] + updates * config.batch_size
    finished = steps >= total_updates
    if record is None:  # not the main process: the main one saves the policy and finishes the record
        return PolicyRunResult(str(run_dir), {}, {}, round(time.time() - started, 1), steps, samples, finished)
    before = run.before or first_eval(run_dir)
    if finished:
        summary = {"before": before, "after": run.after, "steps": steps, "samples": samples,
                   "processes": processes, "seconds": round(time.time() - started, 1)}  # fmt: skip
        save_final_policy(run_dir / FINAL, models.policy, models.tokenizer, config, summary)
        record.finish(summary)
    else:  # interrupted on purpose (stop_after_steps): resumable, kept apart from finished runs by the report
        record.mark(INTERRUPTED, f"stop_after_steps {config.stop_after_steps}")
    return PolicyRunResult(str(run_dir), before, run.after, round(time.time() - started, 1), steps, samples, finished)


def save_final_policy(target: Path, policy, tokenizer, config: PPOConfig, summary: dict[str, Any]) -> Path:
    """Save the trained policy (LoRA merged in), its tokenizer and a model card (config, metrics) to ``target``."""
    if hasattr(policy, "merge_and_unload"):  # a PEFT model: a plain causal LM that loads without peft
        policy = policy.merge_and_unload()
    metrics = "\n".join(
        f"| {key} | {summary['before'].get(key, float('nan')):.4f} | {summary['after'].get(key, float('nan')):.4f} |"
        for key in sorted(set(summary.get("before", {})) | set(summary.get("after", {})))
    )
    card = (
        f"# PPO policy: run {config.run_name or ALGO} (group {config.group})\n\n"
        f"Trained with TRL's PPO by rlhf-gym on `{config.env_id}` from `{config.policy}`: {summary['steps']} updates, "
        f"{summary['samples']} samples, {summary['seconds']} s. Talk to it: `rlhf-gym chat --policy {target}`.\n\n"
        f"## Held-out metrics\n\n| metric | before | after |\n|---|---|---|\n{metrics}\n\n"
        f"## Config\n\n```json\n{json.dumps(dataclasses.asdict(config), indent=2, default=str)}\n```\n"
    )
    save_pretrained_atomically(policy, tokenizer, target, {"README.md": card}, fingerprint_content=True)
    print(f"[ppo] final policy: {target}")
    return target


def _wait_for_everyone(on_cuda: bool) -> None:
    """A barrier across ``accelerate launch``'s processes, on the backend TRL's trainer will use."""
    from accelerate import PartialState

    with _accelerate_settings(on_cuda):
        PartialState(cpu=not on_cuda).wait_for_everyone()


@contextmanager
def _accelerate_settings(on_cuda: bool):
    """bf16 autocast on CUDA, the CPU otherwise, for the ``Accelerator`` that ``PPOTrainer`` creates.

    TRL's PPO builds ``Accelerator()`` without arguments, and transformers 5 no longer exports
    ``PPOConfig.bf16`` to the environment, so without this PPO trains in fp32 even with ``bf16=True``.
    """
    wanted = {
        "ACCELERATE_MIXED_PRECISION": "bf16" if on_cuda else "no",
        "ACCELERATE_USE_CPU": "false" if on_cuda else "true",
    }
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
