"""DPO on the preference pairs the reward model learns from, with TRL's ``DPOTrainer`` doing the optimisation.

The offline baseline: no reward model and no sampling during training. DPO raises the policy's
log-likelihood ratio (against the frozen reference) of the chosen reply over the rejected one, scaled
by ``beta``. The pairs are the reward model's training split (:func:`rlhf.training.reward_model.
load_preference_split` with the reward config named by ``preference_config``), so DPO and
reward model + PPO learn from the very same data; the reward model's held-out pairs stay unseen.

Each pair is rendered the way the policy reads and writes dialogue: the prompt in the chat format
(``"User: …\\nBot:"``), each reply as ``" reply\\n"`` (TRL appends eos). The policy is evaluated like
every trainer's (:mod:`rlhf.training.policy_eval`): sampled replies to the held-out contexts, scored by
the env's reward and gold scorer, ``eval/kl`` to the reference. ``samples`` counts preference pairs seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rlhf.config import load_config
from rlhf.data.chat import render_prompt
from rlhf.envs.registration import resolve_env_id
from rlhf.models.policy import context_window, policy_path
from rlhf.runs.records import RunRecord, RunSettings, marks_failure
from rlhf.training.checkpoints import trim_record
from rlhf.training.online import policy_config_of
from rlhf.training.policy_eval import (
    EvalCallback,
    PolicyEvaluator,
    PolicyRunResult,
    checkpoint_step,
    evaluation_contexts,
    finished_policy_run,
    first_eval,
    last_checkpoint,
    start_policy_run,
    trainer_io_args,
)

ALGO = "dpo"


@dataclass
class DPOConfig(RunSettings):
    """One DPO run (``configs/dpo/*.yaml``): the preference pairs, the policy, TRL's DPO settings, evaluation."""

    # The pairs: those of the reward config's preferences (synthetic labels or a file/dataset), train split.
    preference_config: str = "configs/reward/default.yaml"
    preferences_dir: str | None = None  # overrides the reward config's (where synthetic labels are cached)
    max_pairs: int | None = None  # train on at most this many pairs (the first of the shuffled split)
    # The env whose reward and gold scorer grade the held-out replies (DPO itself never calls it).
    env_id: str = "rlhf/Dialogue-v0"
    env_kwargs: dict = field(default_factory=dict)
    policy: str = "default"
    policy_kwargs: dict = field(default_factory=dict)
    device: str = "auto"
    threads: int = 0
    # DPO (TRL's DPOConfig)
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 5e-5
    lr_scheduler_type: str = "linear"
    beta: float = 0.1
    loss_type: str = "sigmoid"
    seed: int = 0
    # Evaluation (replies sampled like the online trainers'), checkpoints, resume.
    temperature: float = 1.0
    response_length: int = 24
    eval_steps: int = 20
    eval_contexts: int = 64
    eval_samples: int = 2
    num_sample_rows: int = 8
    save_steps: int = 20
    save_total_limit: int = 2
    resume: bool = False
    tags: list[str] = field(default_factory=list)


def dpo_rows(records: Sequence[dict[str, Any]], source: str = "preferences") -> dict[str, list[str]]:
    """TRL's ``prompt``/``chosen``/``rejected`` columns from preference records, in the policy's chat format.

    Raises ``ValueError`` naming the first row whose prompt is not the chat-format rendering of its
    context (``"User: …\\nBot:"``), or whose reply is empty or spans lines.
    """
    rows: dict[str, list[str]] = {"prompt": [], "chosen": [], "rejected": []}
    for i, record in enumerate(records):
        context = record.get("context")
        try:
            expected = render_prompt(context) if isinstance(context, list) and context else None
        except ValueError:
            expected = None
        if expected is None or record.get("prompt") != expected:
            raise ValueError(
                f"{source} row {i}: prompt {str(record.get('prompt'))[:60]!r} is not in the policy's chat format "
                f"(turns rendered 'User: …\\nBot: …' ending in 'Bot:', matching the row's context); read preference "
                "files through rlhf.data.preferences.read_preferences, which renders them"
            )
        for side in ("chosen", "rejected"):
            reply = record.get(side)
            if not isinstance(reply, str) or not reply.strip() or "\n" in reply:
                raise ValueError(f"{source} row {i}: {side} must be one non-empty line of text, got {reply!r:.60}")
        rows["prompt"].append(expected)
        rows["chosen"].append(f" {record['chosen']}\n")  # how the policy writes a reply after "Bot:"
        rows["rejected"].append(f" {record['rejected']}\n")
    if not rows["prompt"]:
        raise ValueError(f"{source}: no preference pairs to train on")
    return rows


def preference_pairs(config: DPOConfig, policy: str) -> tuple[list[dict[str, Any]], str]:
    """The reward model's training pairs for ``config.preference_config`` (labelled now when synthetic and
    not cached), at most ``max_pairs``, and where they came from."""
    import dataclasses

    from rlhf.training.reward_model import RewardModelConfig, load_preference_split

    reward_config = load_config(RewardModelConfig, config.preference_config)
    if config.preferences_dir is not None:
        reward_config = dataclasses.replace(reward_config, preferences_dir=config.preferences_dir)
    train, _, stats, source = load_preference_split(reward_config, policy)
    print(f"[dpo] {stats}; training on the reward model's train split: {len(train)} pairs")
    return train[: config.max_pairs] if config.max_pairs else train, source


@marks_failure
def train_dpo(config: DPOConfig) -> PolicyRunResult:
    """Train the policy with TRL's DPO on the preference pairs; evaluate on the held-out contexts and checkpoint.

    A finished run record of the same group and name is not trained again (``skipped=True``).
    """
    import datasets
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    started = time.time()
    resolve_env_id(config.env_id)  # an unknown env is named before the policy is built (minutes for the default)
    for name in ("batch_size", "eval_steps", "save_steps", "eval_contexts", "response_length"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    source = policy_path(policy_config_of(config))
    run_dir, fingerprint, finished = finished_policy_run(config, ALGO, source)
    if finished is not None:
        return finished
    records, pairs_source = preference_pairs(config, source)
    dataset = datasets.Dataset.from_dict(dpo_rows(records, pairs_source))
    checkpoint = last_checkpoint(run_dir / "checkpoints") if config.resume else None
    total_updates = math.ceil(config.epochs * math.ceil(len(dataset) / config.batch_size))

    env, device, policy, ref, tokenizer = start_policy_run(config, source)
    on_cuda = device.type == "cuda"
    if config.resume:
        trim_record(run_dir, checkpoint_step(checkpoint) if checkpoint else -1)
    record = RunRecord.for_config(
        config, algo=ALGO, env_id=config.env_id, tags=config.tags, resume=config.resume, fingerprint=fingerprint
    )
    evaluator = PolicyEvaluator(
        policy, ref, tokenizer, env, evaluation_contexts(env, config.eval_contexts, ALGO), record,
        samples_per_context=config.eval_samples, temperature=config.temperature,
        max_new_tokens=config.response_length, seed=config.seed, num_sample_rows=config.num_sample_rows, label=ALGO,
    )  # fmt: skip
    pairs_seen = math.ceil(config.epochs * len(dataset))
    callback = EvalCallback(
        evaluator, config.eval_steps, total_updates, lambda step: min(step * config.batch_size, pairs_seen)
    )
    print(f"[dpo] policy {source} on {device}; {len(dataset)} pairs from {pairs_source}; {total_updates} updates")
    args = TRLDPOConfig(
        output_dir=str(run_dir / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=1,
        max_steps=total_updates,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=0,
        beta=config.beta,
        loss_type=[config.loss_type],
        max_length=context_window(policy),
        truncation_mode="keep_end",  # a long dialogue keeps its last turns, next to the replies
        **trainer_io_args(config, on_cuda),
        dataset_num_proc=None,
    )
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[callback])  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    try:  # an exception marks the record failed or interrupted (marks_failure)
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        env.close()
    steps = trainer.state.global_step
    before = callback.before or first_eval(run_dir)
    summary = {"before": before, "after": callback.after, "steps": steps, "samples": callback.samples_of(steps),
               "pairs": len(dataset), "seconds": round(time.time() - started, 1)}  # fmt: skip
    record.finish(summary)
    return PolicyRunResult(str(run_dir), before, callback.after, summary["seconds"], steps, summary["samples"], True)
