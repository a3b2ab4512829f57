"""The dialogue environments: Gymnasium API, seeding, rewards, multi-turn episodes, bad input, registration."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from rlhf.envs import DialogueEnv, DialogueSelectEnv, register_reward_env
from rlhf.envs.dialogue import DIALOGUE_CHARSET, to_charset
from rlhf.envs.registration import TOOLKIT_ENVS
from rlhf.envs.select import hashed_features

from rlhf.data.chat import render_prompt
from rlhf.data.corpus import corpus_contexts
from rlhf.data.prompts import load_prompts
from rlhf.data.simulator import retrieval_index
from rlhf.rewards.base import CallableReward
from rlhf.rewards.gold import gold_scorer

CHEAP = dict(reward="length", gold="thanks")  # rule-based, microseconds per reply
ROOT = Path(__file__).resolve().parents[1]


def index_of(env, dialogue_id: str) -> int:
    return next(i for i, c in enumerate(env.contexts) if c.dialogue_id == dialogue_id and len(c.turns) == 1)


@pytest.fixture(scope="module")
def env() -> DialogueEnv:
    return DialogueEnv(**CHEAP, split="all")


# -- Gymnasium API -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(TOOLKIT_ENVS))
def test_registered_envs_pass_check_env(env_id):
    env = gymnasium.make(env_id, **CHEAP, render_mode="ansi")
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


@pytest.mark.parametrize("max_turns", [1, 3])
def test_select_envs_pass_check_env_multi_turn(max_turns):
    check_env(DialogueSelectEnv(**CHEAP, max_turns=max_turns, num_contexts=20), skip_render_check=True)
    check_env(DialogueEnv(**CHEAP, max_turns=max_turns), skip_render_check=True)


@pytest.mark.parametrize("env_id", sorted(TOOLKIT_ENVS))
def test_envs_with_default_arguments_pass_check_env(env_id):
    check_env(gymnasium.make(env_id).unwrapped, skip_render_check=True)


def test_register_reward_env_with_its_defaults_passes_check_env():
    # Eight prompts that are not in the corpus: the corpus simulator would answer each reply (by retrieval),
    # so a one-reply env that asked it was "truncated after 1 step" for check_env.
    prompts = [f"Tell me about topic number {i}." for i in range(8)]
    env_id = register_reward_env("test/Defaults-v0", lambda c, r: np.ones(len(r)), prompts=prompts)
    check_env(gymnasium.make(env_id).unwrapped)


@pytest.mark.parametrize("kind", ["dialogue", "select"])
def test_a_one_reply_episode_ends_terminated_not_truncated(kind):
    env = (DialogueEnv if kind == "dialogue" else DialogueSelectEnv)(**CHEAP, split="all")
    # Contexts whose recorded dialogue goes on after the reply: a time limit would truncate them.
    going_on = [i for i in env.start_indices if env.contexts[i].rest][:20]
    assert len(going_on) == 20
    for index in going_on:
        env.reset(options={"context_index": index})
        _, _, terminated, truncated, info = env.step("Fine, thanks." if kind == "dialogue" else 0)
        assert (terminated, truncated, info["user_turn"]) == (True, False, None)


def test_action_space_samples_are_replies_step_accepts(env):
    space = env.action_space
    space.seed(0)
    blank = " " * 3
    assert not space.contains(blank) and space.contains(" a ")
    for _ in range(2000):
        reply = space.sample()
        assert space.contains(reply) and reply.strip()
    short = type(space)(max_length=1, charset=" x")
    short.seed(0)
    assert {short.sample() for _ in range(50)} == {"x"}  # ``spaces.Text`` draws " " half of the time here
    env.reset(seed=0)
    env.step(space.sample())


def test_every_corpus_observation_lies_in_the_space(env):
    for i in range(len(env.contexts)):
        obs, _ = env.reset(options={"context_index": i})
        assert obs.endswith("Bot:") and env.observation_space.contains(obs), obs


def test_to_charset_maps_typography_to_ascii():
    assert to_charset("“Hi” – it’s café…\t├──") == '"Hi" - it\'s cafe... |--'
    assert set(to_charset("naïve 日本")) <= set(DIALOGUE_CHARSET)


def test_a_long_context_keeps_its_end():
    turns = [f"turn number {i} " * 5 for i in range(41)]
    env = DialogueEnv(**CHEAP, prompts=[turns], split="all", max_context_chars=200)
    obs, _ = env.reset(seed=0)
    full = render_prompt(turns)
    assert len(obs) <= 200 and full.endswith("\n" + obs) and obs.startswith("Bot: turn number 39")


def test_render_ansi_returns_the_transcript():
    env = DialogueEnv(**CHEAP, prompts=["Hello there"], split="all", simulator=None, render_mode="ansi")
    env.reset(seed=0)
    assert env.step("Hi, thanks!")[2] is True
    assert env.render() == "User: Hello there\nBot: Hi, thanks!\n"


# -- seeding and rewards -------------------------------------------------------------------------------


def test_same_seed_same_contexts_and_candidates():
    a, b = DialogueSelectEnv(**CHEAP, seed=3), DialogueSelectEnv(**CHEAP, seed=3)
    firsts = []
    for env in (a, b):
        obs, info = env.reset(seed=11)
        firsts.append((info["context_index"], env.candidates, obs))
        assert [env.reset(seed=s)[1]["dialogue_id"] for s in range(5)] == [
            DialogueEnv(**CHEAP, seed=3).reset(seed=s)[1]["dialogue_id"] for s in range(5)
        ]
    assert firsts[0][:2] == firsts[1][:2]
    np.testing.assert_array_equal(firsts[0][2], firsts[1][2])
    context = a.contexts[0]
    assert DialogueSelectEnv(**CHEAP, seed=4).candidates_for(context) != a.candidates_for(context)


def test_step_reward_equals_the_reward_function(env):
    env = DialogueEnv(reward="default", gold="quality", split="all")
    _, info = env.reset(seed=5)
    turns, reply = env.contexts[info["context_index"]].turns, "Thank you, that sounds wonderful!"
    _, reward, *_, info = env.step(reply)
    assert reward == pytest.approx(gold_scorer("default").score([turns], [reply])[0])
    assert info["gold_reward"] == pytest.approx(gold_scorer("quality").score([turns], [reply])[0])
    assert set(info["reward_parts"]) == {"sentiment", "relevance", "length", "no_repetition"}
    assert env.score_replies([turns], [reply])[0] == pytest.approx(reward)
    contexts = [c.turns for c in env.contexts[:16]]
    replies = [f"reply {i} is great" for i in range(16)]
    np.testing.assert_allclose(env.score_replies(contexts, replies), gold_scorer("default").score(contexts, replies))
    assert env.score_gold(contexts, replies).shape == (16,)
    assert DialogueEnv(reward="length", gold=None).score_gold(contexts, replies) is None


def test_a_callable_reward_scores_the_reply_in_its_context():
    seen = []

    def echo(context, reply):
        seen.append((tuple(context), reply))
        return len(reply)

    env = DialogueEnv(reward=CallableReward(echo, batched=False), gold=None, prompts=["Hi"], split="all")
    env.reset(seed=0)
    _, reward, *_, info = env.step("  Hello   you ")
    assert seen == [(("Hi",), "Hello you")] and reward == 9.0 and "gold_reward" not in info


def test_select_reward_is_the_reward_of_the_chosen_candidate_and_cached():
    calls = []

    def count(contexts, replies):
        calls.append(len(replies))
        return np.array([len(r) for r in replies], float)

    env = DialogueSelectEnv(reward=count, gold=None, num_contexts=5)
    for _ in range(3):
        _, info = env.reset(options={"context_index": 0})
        _, reward, *_, info = env.step(2)
        assert info["reply"] == env.candidates_for(env.contexts[0])[2] and reward == len(info["reply"])
    assert calls == [1]


def test_select_candidates_hold_the_real_continuation():
    env = DialogueSelectEnv(**CHEAP, num_candidates=6, num_contexts=30)
    for i, context in enumerate(env.contexts):
        env.reset(options={"context_index": i})
        assert len(env.candidates) == 6 == len(set(env.candidates))
        assert not context.continuation or context.continuation in env.candidates


def test_select_features_show_the_context_and_each_candidate():
    env = DialogueSelectEnv(**CHEAP, feature_dim=16, num_candidates=4)
    obs, info = env.reset(seed=0)
    assert obs.shape == (5 * 16,) and obs.dtype == np.float32
    context = env.contexts[info["context_index"]]
    np.testing.assert_allclose(obs[:16], hashed_features(" ".join(context.turns), 16))
    for k, text in enumerate(env.candidates):
        np.testing.assert_allclose(obs[16 * (k + 1) : 16 * (k + 2)], hashed_features(text, 16))


def test_select_index_observation_is_the_context_index():
    env = DialogueSelectEnv(**CHEAP, observation="index", num_contexts=10)
    obs, info = env.reset(seed=2)
    assert obs == info["context_index"] and env.observation_space.n == len(env.contexts) >= 10


# -- multi-turn ----------------------------------------------------------------------------------------


def test_multi_turn_follows_the_real_dialogue_and_truncates(env):
    env = DialogueEnv(**CHEAP, split="all", max_turns=3)
    obs, _ = env.reset(options={"context_index": index_of(env, "conversations/20")})
    start = env.contexts[index_of(env, "conversations/20")]
    assert len(start.rest) >= 5
    for turn in range(3):
        obs, _, terminated, truncated, info = env.step(f"My reply number {turn}.")
        assert info["user_turn"] == start.rest[2 * turn] and obs.endswith(f"User: {start.rest[2 * turn]}\nBot:")
        assert (terminated, truncated) == (False, turn == 2)
    assert len(env.turns) == 7
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step("one more")


def test_multi_turn_terminates_at_the_dialogue_end():
    env = DialogueEnv(**CHEAP, split="all", max_turns=3)
    env.reset(options={"context_index": index_of(env, "conversations/2")})  # four turns: user, bot, user, bot
    assert env.step("Fine, and you?")[2:4] == (False, False)
    obs, _, terminated, truncated, info = env.step("Good to hear.")
    assert (terminated, truncated, info["user_turn"]) == (True, False, None)
    assert obs.endswith("Bot: Good to hear.\n") and env.observation_space.contains(obs)


def test_select_multi_turn_moves_along_the_dialogue():
    env = DialogueSelectEnv(**CHEAP, split="all", max_turns=3, observation="index")
    start = index_of(env, "conversations/20")
    obs, _ = env.reset(options={"context_index": start})
    for turn in range(3):
        chosen = env.candidates[0]
        obs, _, terminated, truncated, info = env.step(0)
        assert info["reply"] == chosen and info["context_index"] == start + turn
        assert obs == start + turn + 1 and env.turns[-2] == chosen
        assert env.turns[-1] == env.contexts[start].rest[2 * turn]
    assert (terminated, truncated) == (False, True)


def test_retrieval_simulator_answers_an_open_prompt():
    env = DialogueEnv(**CHEAP, prompts=["Do you like music?"], split="all", max_turns=2)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step("I love to listen to music and read novels.")
    users = {user for _, user in retrieval_index().pairs}
    assert info["user_turn"] in users and (terminated, truncated) == (False, False)
    again = DialogueEnv(**CHEAP, prompts=["Do you like music?"], split="all", max_turns=2)
    again.reset(seed=9)
    assert again.step("I love to listen to music and read novels.")[4]["user_turn"] == info["user_turn"]


# -- bad input -----------------------------------------------------------------------------------------


def test_bad_replies_raise(env):
    env.reset(seed=0)
    with pytest.raises(TypeError, match="got int"):
        env.step(3)
    for empty in ("", "   \n "):
        with pytest.raises(ValueError, match="empty or only whitespace"):
            env.step(empty)
    with pytest.raises(ValueError, match="281 characters long; max_reply_chars is 280"):
        env.step("a" * 281)
    env.step("fine")  # the episode is still usable after refused actions
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step("again")


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="before reset"):
        DialogueEnv(**CHEAP).step("hello")
    with pytest.raises(RuntimeError, match="before reset"):
        DialogueSelectEnv(**CHEAP, num_contexts=3).step(0)


def test_bad_rewards_raise(tmp_path):
    missing = tmp_path / "no_such_rm"
    with pytest.raises(FileNotFoundError, match="no_such_rm"):
        DialogueEnv(reward_model=missing)
    with pytest.raises(ValueError, match="unknown reward 'sentimental'"):
        DialogueEnv(reward="sentimental")
    env = DialogueEnv(reward=lambda c, r: np.zeros(2), gold=None)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\) for 1 pairs"):
        env.step("hi")
    env = DialogueEnv(reward=CallableReward(lambda c, r: float("nan"), name="nan", batched=False), gold=None)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="returned nan"):
        env.step("hi")
    env = DialogueEnv(reward=CallableReward(lambda c, r: {}[r], name="lookup", batched=False), gold=None)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"reward 'lookup' raised KeyError: 'hi' on pair 0 \(context .+, reply 'hi'\)"):
        env.step("hi")
    env = DialogueEnv(reward=lambda c, r: ["high"], gold=None)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"reward '<lambda>' returned 'high' \(str\), not a number, for pair 0"):
        env.step("hi")


def test_bad_select_actions_raise():
    env = DialogueSelectEnv(**CHEAP, num_candidates=4, num_contexts=3)
    env.reset(seed=0)
    for action in (4, -1):
        with pytest.raises(ValueError, match=r"out of range.*\[0, 4\)"):
            env.step(action)
    with pytest.raises(TypeError, match="got str"):
        env.step("1")
    assert env.step(np.int64(1))[4]["reply"] == env.candidates[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_turns=2, simulator=None), "needs a user simulator"),
        (dict(max_turns=0), "max_turns must be an integer >= 1"),
        (dict(split="test"), "split must be one of"),
        (dict(simulator="gpt"), "unknown simulator 'gpt'"),
        (dict(render_mode="human"), "render_mode must be None"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DialogueEnv(**CHEAP, **kwargs)


# -- prompt sources ------------------------------------------------------------------------------------


def test_prompt_sources(tmp_path):
    assert [c.turns for c in load_prompts(["Hi", ["A", "B", "C"]], split="all")] == [("Hi",), ("A", "B", "C")]
    (tmp_path / "p.txt").write_text("Hello\n\n  How are you?  \n")
    assert [c.turns for c in load_prompts(tmp_path / "p.txt", split="all")] == [("Hello",), ("How are you?",)]
    rows = [{"prompt": "Hi"}, {"turns": ["A", "B", "C"], "continuation": "D"}]
    (tmp_path / "p.jsonl").write_text("\n".join(map(json.dumps, rows)))
    jsonl = load_prompts(str(tmp_path / "p.jsonl"), split="all")
    assert jsonl[1].turns == ("A", "B", "C") and jsonl[1].continuation == "D"
    train, heldout = (load_prompts([f"p{i}" for i in range(20)], split=s) for s in ("train", "heldout"))
    assert len(train) == 18 and len(heldout) == 2 and not {c.turns for c in train} & {c.turns for c in heldout}
    assert len(load_prompts(None, split="heldout")) == len(corpus_contexts("heldout"))


def test_prompts_from_a_local_dataset(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"prompt": ["Hi", "Bye"], "x": [1, 2]}).save_to_disk(tmp_path / "ds")
    assert [c.turns for c in load_prompts(tmp_path / "ds", split="all")] == [("Hi",), ("Bye",)]
    datasets.Dataset.from_dict({"text": ["Hi"]}).save_to_disk(tmp_path / "bad")
    with pytest.raises(ValueError, match="no 'prompt' column; columns: \\['text'\\]"):
        load_prompts(tmp_path / "bad", split="all")


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("p.jsonl", '{"prompt": "ok"}\n{"prompt": "x"\n', r"p.jsonl:2: not valid JSON"),
        ("p.jsonl", '{"prompt": "ok"}\n\n{"text": "x"}\n', r'p.jsonl:3: expected an object with "prompt"'),
        ("p.jsonl", '{"turns": ["a", "b"]}\n', r"p.jsonl:1: turns must alternate .* got 2 turns"),
        ("p.jsonl", '{"prompt": 3}\n', r"p.jsonl:1: a prompt must be a string"),
    ],
)
def test_bad_prompt_files_name_the_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        load_prompts(tmp_path / name, split="all")


def test_bad_prompt_sources_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_prompts(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"prompts\[1\]: empty prompt"):
        load_prompts(["ok", "  "], split="all")
    with pytest.raises(ValueError, match="too few to split.*split='all'"):
        load_prompts(["only one"])


# -- registration --------------------------------------------------------------------------------------


def test_register_reward_env_in_process():
    env_id = register_reward_env("test/Thanks-v0", lambda c, r: np.ones(len(r)), prompts=["Hi", "Yo"], split="all")
    env = gymnasium.make(env_id, gold=None)
    env.reset(seed=0)
    assert env.step("hello")[1] == 1.0
    select = gymnasium.make(register_reward_env("test/ThanksSelect-v0", "thanks", kind="select", num_contexts=4))
    select.reset(seed=0)
    assert select.action_space == gymnasium.spaces.Discrete(8)


def test_register_reward_env_refuses_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        register_reward_env("test/Bad-v0", "thanks", kind="chat")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['max_tokens'\]"):
        register_reward_env("test/Bad-v0", "thanks", max_tokens=3)
    with pytest.raises(ValueError, match="unknown reward 'thanx'"):
        register_reward_env("test/Bad-v0", "thanx")


def _python(code: str, cwd: Path) -> str:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(cwd))
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_make_works_in_a_fresh_interpreter(tmp_path):
    code = """
import gymnasium, sys
assert "rlhf" not in sys.modules  # nothing of ours runs at interpreter start
assert "rlhf/Dialogue-v0" not in gymnasium.registry
env = gymnasium.make("rlhf:rlhf/Dialogue-v0", gold=None, reward="length")  # gymnasium imports rlhf first
obs, info = env.reset(seed=0)
print(obs.endswith("Bot:"), env.step("Hello there, friend")[1])
"""
    assert _python(code, tmp_path).split() == ["True", "1.0"]


def test_the_readme_custom_env_example_runs_in_a_fresh_interpreter(tmp_path, readme_custom_env):
    (tmp_path / "my_envs.py").write_text(readme_custom_env)
    code = """
import gymnasium
env = gymnasium.make("my_envs:my/Polite-v0")
obs, info = env.reset(seed=0)
obs, reward, terminated, truncated, info = env.step("Thank you, that is very kind of you!")
print(reward, sorted(info["reward_parts"]))
"""
    out = _python(code, tmp_path).split(maxsplit=1)
    assert float(out[0]) > 0.5 and "polite" in out[1]


def test_prefilled_scores_are_the_rewards_steps_return():
    env = DialogueSelectEnv(reward="length", gold="sentiment", observation="index", num_contexts=4)
    assert env.prefill_scores() == 4 * env.num_candidates
    assert env.prefill_scores() == 0  # all cached
    for action in range(env.num_candidates):
        env.reset(options={"context_index": env.start_indices[1]})
        turns, reply = env.turns, env.candidates[action]
        _, reward, _, _, info = env.step(action)
        assert reward == pytest.approx(gold_scorer("length")([turns], [reply])[0])
        assert info["gold_reward"] == pytest.approx(gold_scorer("sentiment")([turns], [reply])[0])
