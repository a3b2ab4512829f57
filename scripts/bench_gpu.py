"""PPO on a GPU, side by side in one process: TRL's PPOTrainer used the plain way against rlhf-gym's train_ppo.

    python scripts/bench_gpu.py                       # GPT-2-124M-sized models, batch 256, replies of 48, 4 epochs
    python scripts/bench_gpu.py --size tiny --device cpu --batch_size 8 --response_length 8 --updates 2   # smoke run

One config for both: a policy, its reference, a value model and a reward model of the same size (random
weights: throughput does not depend on them, and no model hub is needed), ``batch_size`` prompts from the
corpus per update, replies of up to ``response_length`` tokens, ``num_ppo_epochs`` PPO epochs, bf16 on CUDA.

* ``trl``: ``trl.experimental.ppo.PPOTrainer`` with the reward model handed to it raw and TRL's defaults
  (stop at EOS, rollout micro-batches of 64, one mini-batch), the way TRL's examples use it.
* ``ours``: :func:`rlhf.training.ppo.train_ppo` on ``rlhf/Dialogue-v0`` with that reward model as the env's reward.
  Since the one-reward-path change, TRL gets the env adapter whatever the reward is (decode, cut the reply
  where the loss ends it, ``env.score_replies``): the issue's (b) "reward model handed directly" and (c)
  "through the env's adapter" are one path now, so one row stands for both.

Each row: samples/s and generated tokens/s over the updates after the first (warm-up excluded), peak GPU
memory (``torch.cuda.max_memory_allocated``), and seconds per update in each phase: generation
(``batch_generation``), reward (the reward model's forward, or the adapter's), the reference's forward, and
the rest (policy and value forwards, backward passes, optimizer steps). Phases are timed by wrapping TRL's
own module-level functions with CUDA synchronisation, so the timing adds a sync per call and nothing else.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from rlhf.config import parse_script_args

SIZES = {  # GPT-2 124M, and a tiny one for a smoke run on a CPU
    "124m": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024),
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, n_positions=128),
}


@dataclass
class BenchGPUConfig:
    """What to time: model size, batch, reply length, PPO epochs, number of updates, device."""

    size: str = "124m"  # "124m" (GPT-2 small) or "tiny"
    vocab_size: int = 50257  # GPT-2's: the LM head's width is part of the cost
    batch_size: int = 256
    response_length: int = 48
    num_ppo_epochs: int = 4
    updates: int = 4  # the first is warm-up and is not counted
    device: str = "cuda"
    rows: str = "trl,ours"  # which rows to run, in order


class PhaseTimer:
    """Seconds spent in named phases, per update; wraps functions of TRL's PPO module while active."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.updates: list[dict[str, float]] = []
        self.current: dict[str, float] = defaultdict(float)
        self.tokens: list[int] = []
        self._tokens = 0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def wrap(self, fn, phase: str, count_tokens: bool = False, only_for=None):
        def timed(*args, **kwargs):
            if only_for is not None and not only_for(args):
                return fn(*args, **kwargs)
            self._sync()
            started = time.perf_counter()
            out = fn(*args, **kwargs)
            self._sync()
            self.current[phase] += time.perf_counter() - started
            if count_tokens:  # (query_responses, logits): the logits' second axis is the tokens generated
                self._tokens += out[1].shape[0] * out[1].shape[1]
            return out

        return timed

    def end_update(self, seconds: float) -> None:
        self.current["total"] = seconds
        self.updates.append(dict(self.current))
        self.tokens.append(self._tokens)
        self.current, self._tokens = defaultdict(float), 0

    @contextlib.contextmanager
    def patch_trl(self, reward_models: list[torch.nn.Module]):
        """Time TRL's generation, reward and reference forwards, and each update from the end of the last
        one (or of ``on_train_begin``) to its ``on_step_end``, callbacks' own work (evaluation, checkpoints)
        excluded, for the duration of the block."""
        from transformers.trainer_callback import CallbackHandler
        from trl.experimental.ppo import ppo_trainer as module

        saved = module.batch_generation, module.get_reward, module.forward
        handler = CallbackHandler.on_train_begin, CallbackHandler.on_step_end
        is_reward = lambda args: any(args[0] is m for m in reward_models)  # noqa: E731  (the value model is not)
        module.batch_generation = self.wrap(saved[0], "generation", count_tokens=True)
        module.get_reward = self.wrap(saved[1], "reward", only_for=is_reward)
        module.forward = self.wrap(saved[2], "reference")
        started = [0.0]

        def on_train_begin(handler_self, *args, **kwargs):
            control = handler[0](handler_self, *args, **kwargs)
            self._sync()
            started[0] = time.perf_counter()
            return control

        def on_step_end(handler_self, *args, **kwargs):
            self._sync()
            self.end_update(time.perf_counter() - started[0])
            control = handler[1](handler_self, *args, **kwargs)
            started[0] = time.perf_counter()
            return control

        CallbackHandler.on_train_begin, CallbackHandler.on_step_end = on_train_begin, on_step_end
        try:
            yield
        finally:
            module.batch_generation, module.get_reward, module.forward = saved
            CallbackHandler.on_train_begin, CallbackHandler.on_step_end = handler


def build_models(config: BenchGPUConfig, folder: Path) -> tuple[Path, Path]:
    """A random-weight policy and reward model of ``config.size`` with a corpus BPE tokenizer, saved to ``folder``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel, PreTrainedTokenizerFast

    from rlhf.data.chat import render_dialogue
    from rlhf.data.corpus import load_dialogues

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([render_dialogue(d) for d in load_dialogues()], vocab_size=4096,
                            special_tokens=["<|endoftext|>", "<pad>"])  # fmt: skip
    eos = "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=eos, eos_token=eos, pad_token="<pad>")
    tokenizer.padding_side = "left"
    gpt = GPT2Config(vocab_size=max(config.vocab_size, len(tokenizer)), **SIZES[config.size],
                     eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    policy, reward = folder / "policy", folder / "reward_model"
    GPT2LMHeadModel(gpt).save_pretrained(policy)
    tokenizer.save_pretrained(policy)
    GPT2ForSequenceClassification(GPT2Config(**{**gpt.to_dict(), "num_labels": 1})).save_pretrained(reward)
    tokenizer.save_pretrained(reward)
    return policy, reward


def run_trl(config: BenchGPUConfig, policy_dir: Path, reward_dir: Path, timer: PhaseTimer, out: Path) -> None:
    """TRL's PPOTrainer the plain way: four models from folders, a dataset of prompt ids, TRL's defaults."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    from rlhf.data.chat import render_prompt
    from rlhf.data.prompts import load_prompts
    from rlhf.training.ppo import _accelerate_settings

    device = torch.device(config.device)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir, padding_side="left")
    prompts = [render_prompt(c.turns) for c in load_prompts(None, "train")]
    ids = [row for row in tokenizer(prompts, add_special_tokens=False)["input_ids"] if len(row) <= 64]
    policy = AutoModelForCausalLM.from_pretrained(policy_dir)
    ref = AutoModelForCausalLM.from_pretrained(policy_dir)
    value = AutoModelForSequenceClassification.from_pretrained(reward_dir, num_labels=1)
    reward = AutoModelForSequenceClassification.from_pretrained(reward_dir, num_labels=1)
    args = PPOConfig(
        output_dir=str(out / "trl"), per_device_train_batch_size=config.batch_size,
        total_episodes=config.updates * config.batch_size, num_ppo_epochs=config.num_ppo_epochs,
        response_length=config.response_length, stop_token="eos", bf16=device.type == "cuda",
        use_cpu=device.type == "cpu", report_to="none", save_strategy="no", num_sample_generations=0,
        disable_tqdm=True, logging_steps=10**6,
    )  # fmt: skip

    with _accelerate_settings(device.type == "cuda"):  # TRL's own Accelerator() ignores PPOConfig.bf16 otherwise
        trainer = PPOTrainer(
            args=args, processing_class=tokenizer, model=policy, ref_model=ref, reward_model=reward,
            value_model=value, train_dataset=datasets.Dataset.from_dict({"input_ids": ids}),
        )  # fmt: skip
    with timer.patch_trl([reward]):
        trainer.train()


def run_ours(config: BenchGPUConfig, policy_dir: Path, reward_dir: Path, timer: PhaseTimer, out: Path) -> None:
    """rlhf-gym's train_ppo on the dialogue env whose reward is the same reward model, through the env adapter."""
    from rlhf.rewards.trl_adapter import EnvRewardModel
    from rlhf.training.ppo import PPOConfig, train_ppo

    ppo = PPOConfig(
        env_kwargs={"reward_model": str(reward_dir), "gold": None}, policy=str(policy_dir), device=config.device,
        batch_size=config.batch_size, num_mini_batches=1, num_ppo_epochs=config.num_ppo_epochs,
        response_length=config.response_length, total_episodes=config.updates * config.batch_size,
        eval_steps=10**9, eval_contexts=8, save_steps=10**9, runs_dir=str(out / "runs"), wandb_mode="disabled",
    )  # fmt: skip
    adapters: list[torch.nn.Module] = []
    original_init = EnvRewardModel.__init__

    def remember(self, *args, **kwargs):  # the adapter is built inside train_ppo: time calls on it
        original_init(self, *args, **kwargs)
        adapters.append(self)

    EnvRewardModel.__init__ = remember
    try:
        with timer.patch_trl(adapters):
            train_ppo(ppo)
    finally:
        EnvRewardModel.__init__ = original_init


def summarise(name: str, config: BenchGPUConfig, timer: PhaseTimer, peak: float | None) -> dict[str, float]:
    """One table row from the updates after the first."""
    timed = timer.updates[1:] or timer.updates
    seconds = sum(u["total"] for u in timed)
    row = {
        "samples/s": config.batch_size * len(timed) / seconds,
        "tokens/s": sum(timer.tokens[1:] or timer.tokens) / seconds,
        "s/update": seconds / len(timed),
    }
    for phase in ("generation", "reward", "reference"):
        row[phase] = sum(u.get(phase, 0.0) for u in timed) / len(timed)
    row["rest"] = row["s/update"] - row["generation"] - row["reward"] - row["reference"]
    row["peak GiB"] = peak if peak is not None else float("nan")
    return row


def main() -> None:
    """Run each row in this process, one after the other, and print the table docs/BENCHMARKS.md records."""
    config = parse_script_args(BenchGPUConfig)
    if config.size not in SIZES:
        raise SystemExit(f"--size must be one of {sorted(SIZES)}, got {config.size!r}")
    device = torch.device(config.device)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        policy_dir, reward_dir = build_models(config, out)
        for name in config.rows.split(","):
            timer = PhaseTimer(device)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            {"trl": run_trl, "ours": run_ours}[name](config, policy_dir, reward_dir, timer, out)
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
            results[name] = summarise(name, config, timer, peak)
    print(f"\nPPO, {config.size} models, batch {config.batch_size}, replies <= {config.response_length} tokens, "
          f"{config.num_ppo_epochs} epochs, {config.updates - 1} timed updates on {device}")  # fmt: skip
    columns = list(next(iter(results.values())))
    print("| row | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.3g}" for c in columns) + " |")
    if {"trl", "ours"} <= set(results):
        ratio = results["ours"]["samples/s"] / results["trl"]["samples/s"]
        print(f"ours / trl samples/s: {ratio:.2f}")


if __name__ == "__main__":
    main()
