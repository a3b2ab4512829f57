"""One held-out evaluation for every trainer that fine-tunes the policy (GRPO, RLOO, DPO; PPO at the merge).

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
from pathlib import Path

import torch
from transformers import TrainerCallback

from rlhf.data.corpus import turns_of
from rlhf.models.policy import generate_replies
from rlhf.rewards.trl_adapter import encode_prompts
from rlhf.runs.evaluation import KL, SAMPLES, evaluate_replies, held_out_contexts
from rlhf.runs.records import RunRecord, read_run


def eval_contexts_of(env, n: int, label: str = "eval") -> list[tuple[str, ...]]:
    """The first ``n`` held-out contexts of the env's own prompt source, split as the env splits it: the
    contexts PPO and the baselines are evaluated on. An env that trains on them too (``split="all"``) or whose
    source is too small to split is evaluated anyway, with a printed warning."""
    unwrapped = env.unwrapped
    try:
        contexts = held_out_contexts(unwrapped.prompt_source, n, unwrapped.heldout_fraction, unwrapped.seed)
    except ValueError as exc:
        print(
            f"[{label}] warning: evaluating on the training prompts: the env's prompts have no held-out split ({exc})"
        )
        return [tuple(turns_of(c)) for c in unwrapped.contexts[:n]]
    if unwrapped.split != "train":
        print(f"[{label}] warning: the env trains on split {unwrapped.split!r}, which holds the held-out prompts")
    return [tuple(turns_of(c)) for c in contexts]


def _token_logprobs(model, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """log p(token_t | tokens_<t) of every token after the first, shape ``(B, T-1)``."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)


@torch.no_grad()
def sequence_kl(policy, ref, tokenizer, contexts: Sequence[Sequence[str]], replies: Sequence[str]) -> float:
    """Mean over pairs of the sum over reply tokens of ``log π − log π_ref`` (``ref=None``: a PEFT policy
    with its adapter disabled). A reply is read as the policy writes it: ``" reply\\n"`` after the prompt."""
    device = next(policy.parameters()).device
    prompts = encode_prompts(tokenizer, contexts)
    answers = tokenizer([f" {r}\n" for r in replies], add_special_tokens=False)["input_ids"]
    sums = []
    for i in range(0, len(prompts), 32):
        pairs = list(zip(prompts[i : i + 32], answers[i : i + 32], strict=True))
        width = max(len(p) + len(a) for p, a in pairs)
        ids = torch.full((len(pairs), width), tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        reply = torch.zeros_like(ids, dtype=torch.bool)
        for j, (p, a) in enumerate(pairs):  # right-padded: positions need no shifting
            ids[j, : len(p) + len(a)] = torch.tensor(p + a)
            attention[j, : len(p) + len(a)] = 1
            reply[j, len(p) : len(p) + len(a)] = True
        ids, attention, reply = ids.to(device), attention.to(device), reply.to(device)
        own = _token_logprobs(policy, ids, attention)
        if ref is None:
            with policy.disable_adapter():
                base = _token_logprobs(policy, ids, attention)
        else:
            base = _token_logprobs(ref, ids, attention)
        sums.append(((own - base) * reply[:, 1:]).sum(-1).cpu())
    return float(torch.cat(sums).mean()) if sums else 0.0


class PolicyEvaluator:
    """Samples, scores and logs the policy's replies to the held-out contexts.

    Args:
        policy, ref, tokenizer: the policy being trained, its frozen reference (``None``: a PEFT policy with
            the adapter disabled) and their tokenizer.
        env: the environment whose ``reward_fn`` and ``gold_fn`` score the replies.
        contexts: the held-out contexts (turn sequences), see :func:`eval_contexts_of`.
        record: the run record the metrics and sample rows go to.
        samples_per_context, temperature, max_new_tokens, seed: how replies are sampled.
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
            sampled = generate_replies(
                policy, self.tokenizer, self.contexts, num_samples=n, temperature=self.temperature,
                max_new_tokens=self.max_new_tokens, seed=self.seed,
            )  # fmt: skip
        replies = [r for rs in sampled for r in rs]
        env = self.env.unwrapped
        metrics, rows = evaluate_replies(contexts, replies, env.reward_fn, getattr(env, "gold_fn", None))
        metrics[KL] = sequence_kl(policy, self.ref, self.tokenizer, contexts, replies)
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
