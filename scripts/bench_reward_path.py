"""What scoring PPO's rollouts through the env adapter costs, against handing TRL the raw reward model.

    python scripts/bench_reward_path.py POLICY_DIR REWARD_MODEL_DIR [--batches 20] [--batch_size 32]

Samples ``batch_size`` rollouts per batch from the policy as PPO does (``configs/ppo/default.yaml``'s
temperature and response length, stop tokens), then times TRL's ``get_reward`` on the same batches with
``EnvRewardModel`` (decode, ``parse_reply``, ``env.score_replies``: the path PPO uses) and with the raw
sequence classifier (the old direct path, scoring the policy's tokens as they are). Prints ms per batch
and how often the two rewards disagree by more than 1e-3 (they score different text: see docs/ppo.md).
"""

import argparse
import time

import gymnasium
import torch
from trl.experimental.ppo.ppo_trainer import truncate_response
from trl.experimental.utils import get_reward

from rlhf.config import load_config
from rlhf.data.prompts import load_prompts
from rlhf.models.policy import load_policy
from rlhf.rewards.trl_adapter import stop_token_ids
from rlhf.training.policy_eval import sample_replies
from rlhf.training.ppo import PPOConfig, reward_model_for

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("policy")
    parser.add_argument("reward_model")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(PPOConfig, "configs/ppo/default.yaml")
    policy, tokenizer = load_policy(args.policy, device="cpu")
    env = gymnasium.make("rlhf/Dialogue-v0", reward_model=args.reward_model, gold=None)
    contexts = [c.turns for c in load_prompts(None, "train")]
    stop = stop_token_ids(tokenizer)
    adapter, _ = reward_model_for(env, tokenizer, contexts, stop)
    raw = env.unwrapped.reward_fn.model
    batches = []
    for b in range(args.batches):
        chosen = contexts[b * args.batch_size % len(contexts) :][: args.batch_size]
        _, query_responses, width = sample_replies(
            policy, tokenizer, chosen, 1, config.temperature, config.response_length, stop, seed=b
        )
        newline = tokenizer("\n", add_special_tokens=False)["input_ids"][0]
        response = truncate_response(newline, tokenizer.pad_token_id, query_responses[:, width:])
        batches.append((torch.cat((query_responses[:, :width], response), 1), width))
    results = {}
    for name, model in (("EnvRewardModel (env.score_replies)", adapter), ("raw reward model", raw)):
        scores, started = [], time.perf_counter()
        with torch.no_grad():
            for ids, width in batches:
                scores.append(get_reward(model, ids, tokenizer.pad_token_id, width)[1].float())
        seconds = time.perf_counter() - started
        results[name] = torch.cat(scores)
        print(f"{name}: {1000 * seconds / len(batches):.1f} ms per batch of {args.batch_size}")
    a, b = results.values()
    print(f"rewards differ by > 1e-3 on {int(((a - b).abs() > 1e-3).sum())} of {len(a)} rollouts")
