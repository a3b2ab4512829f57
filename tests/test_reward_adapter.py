"""The env-reward adapter alone: TRL's ``get_reward`` on it returns exactly the environment's scores."""

import gymnasium
import numpy as np
import pytest
import torch
from trl.experimental.utils import get_reward

from rlhf.data.chat import parse_reply, render_dialogue
from rlhf.data.corpus import load_dialogues
from rlhf.models.policy import train_tokenizer
from rlhf.rewards.base import CallableReward
from rlhf.rewards.trl_adapter import EnvRewardModel, batched_reward_of, encode_prompts

PROMPTS = [["Hello there"], ["Do you like music?"], ["Hi", "Hello! How are you?", "Fine, and you?"], ["Hi"]]


@pytest.fixture(scope="module")
def tokenizer():
    """A small byte-level BPE tokenizer trained on the corpus in a second (no policy build needed)."""
    tok = train_tokenizer([render_dialogue(d) for d in load_dialogues()[:400]], vocab_size=400)
    tok.padding_side = "left"
    return tok


def _batch(tokenizer, rows: list[tuple[list[str], str]]) -> tuple[torch.Tensor, int]:
    """Left-padded prompts followed by right-padded responses, as TRL builds ``query_responses``."""
    prompts = encode_prompts(tokenizer, [turns for turns, _ in rows])
    responses = [tokenizer(text, add_special_tokens=False)["input_ids"] for _, text in rows]
    pad = tokenizer.pad_token_id
    width, reply_width = max(map(len, prompts)), max(map(len, responses))
    pairs = zip(prompts, responses, strict=True)
    ids = [[pad] * (width - len(p)) + p + r + [pad] * (reply_width - len(r)) for p, r in pairs]
    return torch.tensor(ids), width


def test_get_reward_returns_the_envs_scores_of_decoded_pairs(tokenizer):
    env = gymnasium.make("rlhf/Dialogue-v0", reward="default", gold=None, prompts=PROMPTS, split="all")
    adapter = EnvRewardModel(env, tokenizer, [list(c.turns) for c in env.unwrapped.contexts])
    rows = [
        (PROMPTS[0], " I am happy to see you!\nUser: and then"),  # the reply ends at its line break
        (PROMPTS[1], " Yes, I love music very much."),  # no line break: the whole response
        (PROMPTS[2], " Great, thanks\n"),  # multi-turn prompt whose first turn is also a known prompt ("Hi")
        (PROMPTS[3], " terrible awful day\nBot: more"),
    ]
    ids, context_length = _batch(tokenizer, rows)
    _, scores, _ = get_reward(adapter, ids, tokenizer.pad_token_id, context_length)
    expected = env.unwrapped.score_replies([turns for turns, _ in rows], [parse_reply(text) for _, text in rows])
    assert scores.shape == (4,) and scores.dtype == torch.float32
    assert torch.equal(scores, torch.tensor(expected, dtype=torch.float32))
    assert len(set(expected.round(6))) > 1  # the pairs score differently, so the check is not vacuous


def test_adapter_splits_each_row_into_its_context_and_one_line_reply(tokenizer):
    env = gymnasium.make("rlhf/Dialogue-v0", prompts=PROMPTS, split="all", gold=None)
    adapter = EnvRewardModel(env, tokenizer, PROMPTS)
    rows = [(PROMPTS[2], " Great\nUser: x"), (PROMPTS[3], " Hello")]
    ids, _ = _batch(tokenizer, rows)
    contexts, replies = adapter.backbone.split(ids, ids != tokenizer.pad_token_id)
    assert contexts == [tuple(PROMPTS[2]), tuple(PROMPTS[3])]
    assert replies == ["Great", "Hello"]


def test_unknown_prompt_is_named(tokenizer):
    env = gymnasium.make("rlhf/Dialogue-v0", prompts=PROMPTS, split="all", gold=None)
    adapter = EnvRewardModel(env, tokenizer, PROMPTS[:2])
    ids, context_length = _batch(tokenizer, [(PROMPTS[0], " ok"), (["What is the weather?"], " sunny")])
    with pytest.raises(ValueError, match=r"row 1 .* 2 prompts .*weather"):
        get_reward(adapter, ids, tokenizer.pad_token_id, context_length)


def test_nan_reward_raises_a_clear_error(tokenizer):
    nan = CallableReward(lambda contexts, replies: np.full(len(replies), np.nan), name="broken")
    env = gymnasium.make("rlhf/Dialogue-v0", reward=nan, prompts=PROMPTS, split="all", gold=None)
    adapter = EnvRewardModel(env, tokenizer, PROMPTS)
    ids, context_length = _batch(tokenizer, [(PROMPTS[0], " ok")])
    with pytest.raises(ValueError, match="reward 'broken' returned nan for pair 0"):
        get_reward(adapter, ids, tokenizer.pad_token_id, context_length)


def test_env_without_batched_reward_is_refused(tokenizer):
    env = gymnasium.make("CartPole-v1")
    with pytest.raises(TypeError, match="'CartPole-v1' has no batched reward"):
        batched_reward_of(env)
    with pytest.raises(TypeError, match="score_replies"):
        EnvRewardModel(env, tokenizer, PROMPTS)


@pytest.fixture(scope="module")
def reward_model_dir(tiny_policy, tmp_path_factory):
    """A reward model on the tiny policy's backbone with a random score head: varied scores, no training."""
    from rlhf.training.reward_model import load_reward_base

    model, tok = load_reward_base(tiny_policy.path, seed=3)
    folder = tmp_path_factory.mktemp("rm")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("reward", ["learned", "gold"])
def test_ppo_reward_equals_the_envs_on_tricky_replies(tiny_policy, reward_model_dir, reward):
    """What TRL's rollout computes from our reward model equals env.score_replies on the replies the loss covers.

    One batch as the policy samples it (PPO stops generation at every stop token and pads after it): an EOS
    mid-response, a reply cut at response_length, a speaker cue and a two-line-break token.
    """
    from trl.experimental.ppo.ppo_trainer import truncate_response
    from trl.experimental.utils import first_true_indices

    from rlhf.models.policy import load_policy
    from rlhf.training.ppo import reward_model_for

    _, tok = load_policy(tiny_policy.path, device="cpu")
    tok.add_tokens(["\n\n"])  # the tiny BPE has none; GPT-2's has one, and it ends a reply as "\n" does
    (double_newline,) = tok("\n\n", add_special_tokens=False)["input_ids"]
    (newline,) = tok("\n", add_special_tokens=False)["input_ids"]
    kwargs = {"reward_model": reward_model_dir} if reward == "learned" else {"reward": "default"}
    env = gymnasium.make("rlhf/Dialogue-v0", gold=None, prompts=PROMPTS, split="all", **kwargs)
    stop_ids = [tok.eos_token_id, newline, double_newline]
    adapter, _ = reward_model_for(env, tok, PROMPTS, stop_ids, missing_eos_penalty=0.5)

    def enc(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    width = 12
    long = enc(" yes I really do like music a lot and also dancing with friends")[:width]
    responses = [
        enc(" I am fine") + [tok.eos_token_id],  # EOS mid-response: the reply ends there
        long,  # no stop token within response_length: cut, and penalised
        enc(" Fine.User: and you?") + [newline],  # a speaker cue ends the reply inside the line
        enc(" Good day") + [double_newline],  # a token holding two line breaks ends it too
    ]
    expected = ["I am fine", tok.decode(long).strip(), "Fine.", "Good day"]
    prompts = encode_prompts(tok, PROMPTS)
    context_length, pad = max(map(len, prompts)), tok.pad_token_id
    query = torch.tensor([[pad] * (context_length - len(p)) + p for p in prompts])
    response = torch.tensor([r + [pad] * (width - len(r)) for r in responses])

    # TRL's rollout, step by step (ppo_trainer.train): truncate at the stop token, score, find the loss's end.
    postprocessed = truncate_response(newline, pad, response)
    _, scores, _ = get_reward(adapter, torch.cat((query, postprocessed), 1), pad, context_length)
    sequence_length = first_true_indices(postprocessed == pad) - 1

    env_scores = env.unwrapped.score_replies(PROMPTS, expected)
    penalty = np.array([0.0, 0.5, 0.0, 0.0])
    assert np.allclose(scores.numpy(), env_scores - penalty, atol=1e-5)
    assert len(set(env_scores.round(5))) == 4  # the replies score apart, so equality is not vacuous
    for row, end, reply in zip(postprocessed.tolist(), sequence_length.tolist(), expected, strict=True):
        assert parse_reply(tok.decode(row[: end + 1], skip_special_tokens=True)) == reply  # the loss's reply
