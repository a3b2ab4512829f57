"""One held-out evaluation for every trainer that fine-tunes the policy (PPO, GRPO, RLOO, DPO), and what they share.

:class:`PolicyEvaluator` samples replies to the held-out contexts at the training temperature with a fixed
seed, scores them with the shared evaluation (:func:`rlhf.runs.evaluation.evaluate_replies`: env reward,
gold, reply length, distinct-n), adds ``eval/kl`` against the frozen reference and logs the metrics and a
table of sample replies to the run record. :class:`EvalCallback` calls it from inside any TRL trainer
(``transformers.Trainer`` callbacks): before the first update, every ``eval_steps`` updates and after the
last, and forwards the trainer's own logs to the same record, with ``samples`` (replies scored so far).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from rlhf.data.corpus import turns_of
from rlhf.models.policy import context_window, load_policy, resolve_device
from rlhf.rewards.trl_adapter import encode_prompts, read_reply, stop_token_ids
from rlhf.runs.evaluation import KL, SAMPLES, evaluate_replies, held_out_contexts
from rlhf.runs.fingerprint import env_identity, stage_fingerprint
from rlhf.runs.records import RunRecord, finished_run, read_run, run_folder


def evaluation_contexts(env, n: int, label: str = "eval") -> list[tuple[str, ...]]:
    """The first ``n`` held-out contexts of the env's own prompt source, split as the env splits it.

    Every trainer of the policy (PPO, GRPO, RLOO, DPO) evaluates on them, and the baselines on the held-out
    split of the same source. An env registered with ``split="all"`` trains on them as well, which is printed;
    a source too small to split is evaluated on its training contexts, also printed.
    """
    unwrapped = env.unwrapped
    try:
        contexts = held_out_contexts(unwrapped.prompt_source, n, unwrapped.heldout_fraction, unwrapped.seed)
    except ValueError as exc:
        print(f"[{label}] warning: evaluating on the training prompts: the env's prompts have no held-out split "
              f"({exc})")  # fmt: skip
        return [turns_of(c) for c in unwrapped.contexts[:n]]
    if unwrapped.split != "train":
        print(
            f"[ppo] warning: the env trains on split {unwrapped.split!r}, which holds the held-out evaluation prompts"
        )
    return [turns_of(c) for c in contexts]


def token_logprobs(model, ids: torch.Tensor, attention: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(token_t | tokens_<t) at ``temperature`` of every token after the first, shape ``(B, T-1)``."""
    position_ids = (attention.cumsum(1) - attention).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=attention, position_ids=position_ids).logits[:, :-1].float()
    return torch.log_softmax(logits / (temperature + 1e-7), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)


@torch.no_grad()
def sequence_kl(policy, ref, query_responses: torch.Tensor, context_length: int, pad_token_id: int,
                temperature: float) -> float:  # fmt: skip
    """Mean over rows of the sum over sampled reply tokens of ``log π − log π_ref``, both at ``temperature``.

    ``query_responses`` are left-padded prompts (``context_length`` wide) followed by the sampled tokens; a
    reply's tokens run to its first pad, as in TRL's loss. This is TRL's own ``k1`` estimate (``objective/kl``)
    of KL(π_T ‖ π_ref,T) for samples drawn at ``temperature``; ``ref=None``: a PEFT policy, adapter disabled.
    """
    device = next(policy.parameters()).device
    sums = []
    for i in range(0, len(query_responses), 32):
        ids = query_responses[i : i + 32].to(device)
        attention = (ids != pad_token_id).long()
        responses = ids[:, context_length:]
        reply = torch.arange(responses.shape[1], device=device) < first_pad(responses, pad_token_id)[:, None]
        inputs = ids.masked_fill(~attention.bool(), 0)
        own = token_logprobs(policy, inputs, attention, temperature)[:, context_length - 1 :]
        if ref is None:
            with policy.disable_adapter():
                base = token_logprobs(policy, inputs, attention, temperature)[:, context_length - 1 :]
        else:
            base = token_logprobs(ref, inputs, attention, temperature)[:, context_length - 1 :]
        sums.append(((own - base) * reply).sum(-1).cpu())
    return float(torch.cat(sums).mean()) if sums else 0.0


def first_pad(responses: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """Index of each row's first pad token (the row's width when none): where TRL's loss ends a reply."""
    width = responses.shape[1]
    positions = torch.arange(width, device=responses.device).expand_as(responses)
    return torch.where(responses == pad_token_id, positions, width).min(-1).values


@torch.no_grad()
def sample_replies(
    policy, tokenizer, contexts: Sequence[Sequence[str]], num_samples: int, temperature: float,
    max_new_tokens: int, stop_ids: Sequence[int], seed: int,
) -> tuple[list[str], torch.Tensor, int]:  # fmt: skip
    """``num_samples`` replies to each context sampled as PPO samples them (same prompt encoding,
    temperature and stop tokens), read as the reward reads them; also the sampled ``query_responses`` and
    the prompt width, for :func:`sequence_kl` on the very tokens sampled."""
    torch.manual_seed(seed)
    device = next(policy.parameters()).device
    limit = (context_window(policy) or 1024) - max_new_tokens
    prompts = [p[-limit:] for p in encode_prompts(tokenizer, contexts) for _ in range(num_samples)]
    width, pad = max(map(len, prompts)), tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    was_training = policy.training
    policy.eval()
    rows = []
    for i in range(0, len(ids), 64):
        batch = ids[i : i + 64]
        out = policy.generate(
            input_ids=batch,
            attention_mask=(batch != pad).long(),
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=temperature + 1e-7,
            top_k=0,
            top_p=1.0,
            eos_token_id=list(stop_ids),
            pad_token_id=pad,
        )
        rows.append(torch.nn.functional.pad(out, (0, width + max_new_tokens - out.shape[1]), value=pad))
    policy.train(was_training)
    query_responses = torch.cat(rows)
    visible = query_responses != pad
    replies = [
        read_reply(tokenizer, row[width:].tolist(), mask[width:].tolist(), stop_ids)[0]
        for row, mask in zip(query_responses, visible, strict=True)
    ]
    return replies, query_responses, width


class PolicyEvaluator:
    """Samples, scores and logs the policy's replies to the held-out contexts.

    Args:
        policy, ref, tokenizer: the policy being trained, its frozen reference (``None``: a PEFT policy with
            the adapter disabled) and their tokenizer.
        env: the environment whose ``reward_fn`` and ``gold_fn`` score the replies.
        contexts: the held-out contexts (turn sequences), see :func:`evaluation_contexts`.
        record: the run record the metrics and sample rows go to.
        samples_per_context, temperature, max_new_tokens, seed, stop_ids: how replies are sampled (as in training).
        num_sample_rows: how many (context, reply) rows each evaluation logs.
        label: prefix of the printed line (the algo).
    """

    def __init__(
        self,
        policy,
        ref,
        tokenizer,
        env,
        contexts: Sequence[Sequence[str]],
        record: RunRecord,
        *,
        samples_per_context: int = 2,
        temperature: float = 1.0,
        max_new_tokens: int = 24,
        seed: int = 0,
        num_sample_rows: int = 8,
        label: str = "eval",
        stop_ids: Sequence[int] | None = None,
    ) -> None:
        self.policy, self.ref, self.tokenizer, self.env = policy, ref, tokenizer, env
        self.contexts = [tuple(c) for c in contexts]
        self.record = record
        self.samples_per_context = samples_per_context
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.num_sample_rows = num_sample_rows
        self.label = label
        # Replies end where training ends them: EOS and any token holding a line break (the chat format's turn end).
        self.stop_ids = list(stop_ids) if stop_ids is not None else stop_token_ids(tokenizer, at_newline=True)

    def evaluate(self, step: int, samples: int) -> dict[str, float]:
        """Score sampled replies to the held-out contexts; log metrics and sample rows at ``step``.

        Replies are sampled, not greedy: the online methods optimise the sampling policy, and a small
        policy's greedy reply is often one sentence for every context. The RNG is forked, so training's
        random stream is the same with or without evaluation.
        """
        policy = self.policy
        was_training = policy.training
        n = self.samples_per_context
        contexts = [c for c in self.contexts for _ in range(n)]
        with torch.random.fork_rng(devices=[policy.device] if policy.device.type == "cuda" else []):
            replies, query_responses, width = sample_replies(
                policy, self.tokenizer, self.contexts, num_samples=n, temperature=self.temperature,
                max_new_tokens=self.max_new_tokens, stop_ids=self.stop_ids, seed=self.seed,
            )  # fmt: skip
        env = self.env.unwrapped
        metrics, rows = evaluate_replies(contexts, replies, env.reward_fn, getattr(env, "gold_fn", None))
        pad = self.tokenizer.pad_token_id
        metrics[KL] = sequence_kl(policy, self.ref, query_responses, width, pad, self.temperature)
        policy.train(was_training)
        self.record.log({**metrics, SAMPLES: samples}, step=step)
        self.record.log_samples(rows[::n][: self.num_sample_rows], step=step, key="eval/samples")
        shown = ", ".join(f"{k.removeprefix('eval/')} {v:.3f}" for k, v in metrics.items())
        print(f"[{self.label}] step {step} ({samples} samples): {shown}")
        return metrics


class EvalCallback(TrainerCallback):
    """Runs a :class:`PolicyEvaluator` inside a TRL trainer and forwards the trainer's logs to the run record.

    Evaluates at step 0 (a fresh run only), every ``eval_steps`` optimizer steps and after the last one
    (``max_steps``); ``samples_of(step)`` says how many replies were scored by then. A non-finite training
    loss stops the run with an error naming the step, instead of training on. ``evaluator=None`` (a process
    other than the main one in a multi-process run) evaluates and logs nothing.
    """

    def __init__(
        self, evaluator: PolicyEvaluator | None, eval_steps: int, max_steps: int, samples_of: Callable[[int], int]
    ) -> None:
        self.evaluator = evaluator
        self.eval_steps = eval_steps
        self.max_steps = max_steps
        self.samples_of = samples_of
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0 and self.evaluator is not None:
            self.before = self.evaluator.evaluate(0, 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        step = state.global_step
        numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        if "loss" in numbers and not math.isfinite(numbers["loss"]):  # every process stops, not only the main one
            where = f" in {self.evaluator.record.folder}" if self.evaluator is not None else ""
            raise FloatingPointError(
                f"training loss is {numbers['loss']} at step {step}{where}: "
                "lower learning_rate, check the reward for extreme values, or resume from the last checkpoint"
            )
        if self.evaluator is None:
            return
        self.evaluator.record.log({**numbers, SAMPLES: self.samples_of(step)}, step=step)

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if step % self.eval_steps == 0 and step < self.max_steps and self.evaluator is not None:
            self.evaluator.evaluate(step, self.samples_of(step))

    def on_train_end(self, args, state, control, **kwargs):
        if state.global_step >= self.max_steps and self.evaluator is not None:
            self.after = self.evaluator.evaluate(state.global_step, self.samples_of(state.global_step))


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` folder ``transformers.Trainer`` wrote under ``output_dir``, or ``None``."""
    folder = Path(output_dir)
    found = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()] if folder.is_dir() else []
    return max(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def checkpoint_step(checkpoint: Path | None) -> int:
    """The optimizer step a Trainer checkpoint was saved at (0 for none)."""
    if checkpoint is None:
        return 0
    return int(json.loads((checkpoint / "trainer_state.json").read_text())["global_step"])


def first_eval(run_dir: Path) -> dict[str, float]:
    """The step-0 evaluation of a run record (what a resumed run reports as ``before``)."""
    for row in read_run(run_dir)["metrics"]:
        if row.get("step") == 0 and KL in row:
            return {k: v for k, v in row.items() if k.startswith("eval/")}
    return {}


@dataclass
class PolicyRunResult:
    """Where a policy trainer's run record lies, its held-out metrics before and after training, and its cost."""

    run_dir: str
    before: dict[str, float]
    after: dict[str, float]
    seconds: float
    steps: int
    samples: int
    finished: bool
    skipped: bool = False


def finished_policy_run(
    config: Any, algo: str, policy: str, version: int | None = None
) -> tuple[Path, dict[str, Any], PolicyRunResult | None]:
    """``config``'s run folder, the fingerprint of what makes the run (its config and the files it names, the
    policy it starts from, the env it is scored on, and the trainer's ``version``, raised when the same config
    trains differently) and, when a finished run made the same way is there, its result (``skipped=True``):
    every policy trainer calls this first (see :func:`rlhf.runs.records.finished_run`)."""
    run_dir = run_folder(config.runs_dir, config.group, config.run_name or algo)
    versioned = {} if version is None else {"version": version}
    fingerprint = stage_fingerprint(config, algo=algo, policy=policy, env=env_identity(config.env_id), **versioned)
    finished = finished_run(
        run_dir, resume=config.resume, resume_hint="pass --resume true to continue it", fingerprint=fingerprint
    )
    if finished is None:
        return run_dir, fingerprint, None
    summary = finished["summary"]
    result = PolicyRunResult(str(run_dir), summary.get("before", {}), summary.get("after", {}), 0.0,
                             int(summary.get("steps", 0)), int(summary.get("samples", 0)), True, True)  # fmt: skip
    return run_dir, fingerprint, result


def start_policy_run(config: Any, source: str) -> tuple[Any, torch.device, Any, Any, Any]:
    """(env, device, policy, frozen reference, tokenizer) for a TRL trainer of the policy (GRPO, RLOO, DPO):
    the config's thread count and seed applied, ``gymnasium.make(env_id, **env_kwargs)``, two copies of ``source``."""
    from rlhf.training.ppo import make_env  # ppo imports this module

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    env = make_env(config.env_id, config.env_kwargs)
    device = resolve_device(config.device)
    policy, tokenizer = load_policy(source, device=str(device))
    ref, _ = load_policy(source, device=str(device))
    ref.eval().requires_grad_(False)
    return env, device, policy, ref, tokenizer


def trainer_io_args(config: Any, on_cuda: bool) -> dict[str, Any]:
    """The ``transformers.TrainingArguments`` every TRL trainer of the policy shares: precision and device,
    checkpoints every ``save_steps`` (resumable), and logging that goes to the run record, not to TRL's own."""
    return dict(
        seed=config.seed,
        bf16=on_cuda,
        use_cpu=not on_cuda,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=1,
        report_to="none",  # TRL's metrics reach wandb through the run record (EvalCallback.on_log)
        disable_tqdm=True,
    )
