"""``eval/kl`` is TRL's own KL estimate, at the sampling temperature, on the tokens actually sampled."""

import copy

import pytest
import torch

from rlhf.models.policy import load_policy
from rlhf.rewards.trl_adapter import stop_token_ids
from rlhf.training.policy_eval import sample_replies, sequence_kl

CONTEXTS = [["Hello there"], ["Do you like music?"], ["What is your name?"], ["Hi", "Hello!", "How are you?"]]


def trl_kl(policy, ref, query_responses, context_length, pad, temperature):
    """TRL's rollout (ppo_trainer.train): tempered log-probs of the response tokens, masked after the
    first pad, ``k1`` summed per row and averaged: ``objective/kl``."""
    from trl.experimental.ppo.ppo_trainer import forward
    from trl.experimental.utils import first_true_indices
    from trl.trainer.utils import selective_log_softmax

    response = query_responses[:, context_length:]
    logprobs = []
    for model in (policy, ref):
        logits = forward(model, query_responses, pad).logits[:, context_length - 1 : -1] / (temperature + 1e-7)
        logprobs.append(selective_log_softmax(logits, response))
    sequence_length = first_true_indices(response == pad) - 1
    keep = torch.arange(response.shape[1])[None, :] <= sequence_length[:, None]
    return float(((logprobs[0] - logprobs[1]) * keep).sum(1).mean())


@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_eval_kl_is_trls_estimate_on_the_sampled_tokens(tiny_policy, temperature):
    policy, tok = load_policy(tiny_policy.path, device="cpu")
    ref = copy.deepcopy(policy)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    stop = stop_token_ids(tok)
    replies, query_responses, width = sample_replies(policy, tok, CONTEXTS, 4, temperature, 12, stop, seed=1)
    assert len(replies) == 16
    ours = sequence_kl(policy, ref, query_responses, width, tok.pad_token_id, temperature)
    with torch.no_grad():
        expected = trl_kl(policy, ref, query_responses, width, tok.pad_token_id, temperature)
        untempered = trl_kl(policy, ref, query_responses, width, tok.pad_token_id, 1.0)
    assert ours == pytest.approx(expected, rel=1e-4, abs=1e-5)
    if temperature != 1.0:
        assert abs(untempered - expected) > 1e-3  # the temperature changes the number: the old estimate was off
