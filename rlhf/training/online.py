"""What GRPO and RLOO share: TRL's online trainers on a dialogue environment's reward, with no reward model.

TRL's ``GRPOTrainer`` and ``RLOOTrainer`` sample ``num_generations`` replies per prompt, score them with
reward *functions* and update the policy on each reply's advantage over its group (GRPO: the group mean,
scaled by its spread; RLOO: the mean of the other replies). This module wires the toolkit into them:

* prompts are the env's ``contexts`` rendered in the chat format (``"User: …\\nBot:"``), each row carrying
  its turns in a ``context`` column, which TRL hands back to the reward function;
* the reward is the env's batched reward ``env.unwrapped.score_replies`` wrapped by :class:`EnvRewardFunc`
  (completion → reply with :func:`rlhf.data.chat.parse_reply`): the same code path the evaluation scores
  with, and no fake model backbone;
* a reply ends at its first line break: generation stops on the newline token and the rest is padded
  with eos, which TRL masks out of the loss;
* evaluation, run record and wandb group are :mod:`rlhf.training.policy_eval`'s, as for every trainer;
  checkpoints are ``transformers.Trainer``'s (``<run>/checkpoints/checkpoint-N``) and ``resume`` continues
  from the last one with TRL's ``resume_from_checkpoint``.

One optimizer step consumes ``batch_size`` replies (``batch_size / num_generations`` prompts) in all: under
``accelerate launch --num_processes N`` each process samples ``batch_size / N`` of them with its own
environment, and the main process alone evaluates and writes the run record and the wandb run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlhf.data.chat import parse_reply, render_prompt
from rlhf.data.corpus import turns_of
from rlhf.models.policy import PolicyConfig, context_window, mask_spelling, policy_path
from rlhf.rewards.trl_adapter import batched_reward_of
from rlhf.runs.records import RunRecord, RunSettings, marks_failure
from rlhf.training.checkpoints import trim_record
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


@dataclass
class OnlineConfig(RunSettings):
    """Fields GRPO and RLOO share: the environment, the policy, the sampling and the optimisation.

    ``configs/grpo/*.yaml`` and ``configs/rloo/*.yaml`` mirror the subclasses field for field.
    """

    env_id: str = "rlhf/Dialogue-v0"
    env_kwargs: dict = field(default_factory=dict)
    policy: str = "default"  # "default" (built offline from policy_kwargs), a hub name or a folder
    policy_kwargs: dict = field(default_factory=dict)
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    # One update: batch_size replies, num_generations to each of batch_size / num_generations prompts.
    total_episodes: int = 1024
    batch_size: int = 32
    num_generations: int = 4
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "linear"
    response_length: int = 24
    temperature: float = 1.0
    stop_at_newline: bool = True
    beta: float = 0.05  # KL coefficient against the frozen reference; 0 loads no reference in the trainer
    epsilon: float = 0.2  # clip range of the policy ratio
    seed: int = 0
    eval_steps: int = 10
    eval_contexts: int = 64
    eval_samples: int = 2
    num_sample_rows: int = 8
    save_steps: int = 10
    save_total_limit: int = 2
    resume: bool = False
    tags: list[str] = field(default_factory=list)


class EnvRewardFunc:
    """An environment's batched reward as a TRL reward function: ``(prompts, completions, context) -> scores``.

    TRL passes the dataset's ``context`` column back beside each completion, so no prompt is parsed back
    from text. Scores that are not one finite number per completion are an error naming the env and row.
    """

    def __init__(self, env: Any, name: str) -> None:
        self.score_replies = batched_reward_of(env)
        self.__name__ = name  # TRL logs rewards/<name>/mean

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], context: Sequence[Sequence[str]],
                 **_: Any) -> list[float]:  # fmt: skip
        replies = [parse_reply(c) for c in completions]
        contexts = [tuple(c) for c in context]
        scores = np.asarray(self.score_replies(contexts, replies), dtype=np.float64).reshape(-1)
        if len(scores) != len(completions):
            raise ValueError(
                f"reward {self.__name__!r} returned {len(scores)} scores for {len(completions)} replies; "
                "score_replies(contexts, replies) must return one score per reply"
            )
        bad = np.flatnonzero(~np.isfinite(scores))
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"reward {self.__name__!r} returned {scores[i]} for row {i} of the batch "
                f"(context {' | '.join(contexts[i])[-60:]!r}, reply {replies[i]!r}): rewards must be finite numbers"
            )
        return scores.tolist()


def policy_config_of(config: OnlineConfig | Any) -> PolicyConfig:
    """The :class:`PolicyConfig` a run's ``policy`` and ``policy_kwargs`` name; unknown keys are an error."""
    known = {f.name for f in dataclasses.fields(PolicyConfig)} - {"policy"}
    unknown = sorted(set(config.policy_kwargs) - known)
    if unknown:
        raise ValueError(f"policy_kwargs: unknown key(s) {unknown} for PolicyConfig; known: {sorted(known)}")
    return PolicyConfig(policy=config.policy, **{"device": config.device, **config.policy_kwargs})


def check_online(config: OnlineConfig) -> None:
    """Errors naming the config field, before any model is loaded."""
    from rlhf.envs.registration import resolve_env_id

    resolve_env_id(config.env_id)  # an unknown env is named before the policy is built (minutes for the default)
    if config.lr_scheduler_type not in ("linear", "constant"):
        raise ValueError(f"lr_scheduler_type must be 'linear' or 'constant', got {config.lr_scheduler_type!r}")
    for name in ("total_episodes", "batch_size", "response_length", "eval_steps", "save_steps", "eval_contexts"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.num_generations < 2:
        raise ValueError(f"num_generations must be >= 2 (a group needs two replies to compare), got "
                         f"{config.num_generations}")  # fmt: skip
    if config.batch_size % config.num_generations:
        raise ValueError(
            f"num_generations {config.num_generations} does not divide batch_size {config.batch_size}: each update "
            "samples whole groups of num_generations replies to batch_size / num_generations prompts"
        )


def process_layout() -> tuple[int, bool]:
    """(number of processes, whether this one is the main one), from ``accelerate launch``'s environment."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0


def newline_id(tokenizer) -> int:
    """The one token id of a line break; an error when the tokenizer splits it."""
    ids = tokenizer("\n", add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"stop_at_newline: the tokenizer encodes a line break as {len(ids)} tokens {ids}, not one; "
                         "set stop_at_newline false to stop at eos")  # fmt: skip
    return ids[0]


@marks_failure
def train_online(config: OnlineConfig, algo: str, trainer_cls: type, trl_args_cls: type, **trl_args: Any):
    """Train with TRL's ``trainer_cls`` (GRPO or RLOO) on ``config.env_id``'s reward; ``trl_args`` are the
    method's own TRL settings. Returns a :class:`PolicyRunResult`; a finished record is not trained again."""
    from rlhf.training.ppo import fit_prompts

    started = time.time()
    check_online(config)
    source = policy_path(policy_config_of(config))
    run_dir, fingerprint, finished = finished_policy_run(config, algo, source)
    if finished is not None:
        return finished
    checkpoint = last_checkpoint(run_dir / "checkpoints") if config.resume else None
    total_updates = math.ceil(config.total_episodes / config.batch_size)
    processes, main = process_layout()
    if config.batch_size % (processes * config.num_generations) and processes > 1:
        raise ValueError(f"batch_size {config.batch_size} is not a multiple of num_generations x processes "
                         f"({config.num_generations} x {processes}): each process samples whole groups")  # fmt: skip

    env, device, policy, ref, tokenizer = start_policy_run(config, source)
    for model in (policy, ref):  # sampling, training and KL see one distribution (mask_spelling, as for PPO)
        mask_spelling(model)
    on_cuda = device.type == "cuda"
    contexts, _ = fit_prompts(tokenizer, env.unwrapped.contexts, context_window(policy) - config.response_length)
    prompts_per_update = config.batch_size // config.num_generations
    if len(contexts) < prompts_per_update:
        raise ValueError(f"batch_size / num_generations = {prompts_per_update} prompts per update, but only "
                         f"{len(contexts)} usable prompts")  # fmt: skip
    turns = [list(turns_of(c)) for c in contexts]
    import datasets

    dataset = datasets.Dataset.from_dict({"prompt": [render_prompt(t) for t in turns], "context": turns})
    reward_fn = getattr(env.unwrapped, "reward_fn", None)
    reward = EnvRewardFunc(env, str(getattr(reward_fn, "name", None) or "env_reward"))
    print(f"[{algo}] policy {source} on {device}; reward {reward.__name__!r} from {config.env_id}; "
          f"{len(contexts)} prompts")  # fmt: skip

    if processes > 1:  # every process has read the record's state before the main one writes it
        from accelerate import PartialState

        PartialState().wait_for_everyone()
    record, evaluator = None, None
    if main:
        if config.resume:
            trim_record(run_dir, checkpoint_step(checkpoint) if checkpoint else -1)
            if checkpoint:
                print(f"[{algo}] resuming {run_dir} from {checkpoint.name}")
        record = RunRecord.for_config(
            config, algo=algo, env_id=config.env_id, tags=config.tags, resume=config.resume, fingerprint=fingerprint
        )
        evaluator = PolicyEvaluator(
            policy, ref, tokenizer, env, evaluation_contexts(env, config.eval_contexts, algo), record,
            samples_per_context=config.eval_samples, temperature=config.temperature,
            max_new_tokens=config.response_length, seed=config.seed, num_sample_rows=config.num_sample_rows,
            label=algo,
        )  # fmt: skip
    callback = EvalCallback(evaluator, config.eval_steps, total_updates, lambda step: step * config.batch_size)
    generation = {}
    if config.stop_at_newline:  # stop at the line break; pad with eos, after which TRL masks the loss
        generation = {"eos_token_id": [newline_id(tokenizer), tokenizer.eos_token_id],
                      "pad_token_id": tokenizer.eos_token_id}  # fmt: skip
    args = trl_args_cls(
        output_dir=str(run_dir / "checkpoints"),
        per_device_train_batch_size=config.batch_size // processes,  # the same global batch on any process count
        gradient_accumulation_steps=1,
        num_generations=config.num_generations,
        max_completion_length=config.response_length,
        max_steps=total_updates,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=0,
        temperature=config.temperature,
        top_k=0,
        generation_kwargs=generation or None,
        beta=config.beta,
        epsilon=config.epsilon,
        **trainer_io_args(config, on_cuda),
        log_completions=False,
        **trl_args,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer = trainer_cls(model=policy, reward_funcs=[reward], args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[callback])  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # every step's metrics go to the run record, not to stdout
    if getattr(trainer, "ref_model", None) is not None:  # TRL loads its own reference from the policy's path
        mask_spelling(trainer.accelerator.unwrap_model(trainer.ref_model))
    try:  # an exception marks the record failed or interrupted (marks_failure)
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        env.close()
    steps = trainer.state.global_step
    before = callback.before or (first_eval(run_dir) if main else {})
    summary = {"before": before, "after": callback.after, "steps": steps, "samples": steps * config.batch_size,
               "processes": processes, "seconds": round(time.time() - started, 1)}  # fmt: skip
    if record is not None:
        record.finish(summary)
    return PolicyRunResult(str(run_dir), before, callback.after, summary["seconds"], steps, summary["samples"], True)
