"""ALICE's AIML pairs as extra pretraining text: only plain pairs, and never a corpus context's text."""

from rlhf.data.alice import alice_dialogues, as_question, plain_pairs
from rlhf.data.chat import words
from rlhf.data.corpus import context_key, corpus_contexts, load_dialogues, pretraining_dialogues
from rlhf.models.policy import PolicyConfig, default_policy_dir

AIML = (
    """<?xml version="1.0" encoding="UTF-8"?>
<aiml version="1.0">
<category><pattern>DO YOU LIKE MOVIES</pattern><template>Yes, I love   movies.</template></category>
<category><pattern>I AM TIRED</pattern><template>Get some rest.<br/>Sleep helps.</template></category>
<category><pattern>WHAT IS *</pattern><template>I do not know.</template></category>
<category><pattern>MY NAME IS <bot name="name"/></pattern><template>Same as mine.</template></category>
<category><pattern>WHY</pattern><that>I LIKE IT</that><template>It is fun.</template></category>
<category><pattern>HELLO</pattern><template><srai>HI</srai></template></category>
<category><pattern>WHO ARE YOU</pattern><template>I am <bot name="name"/>.</template></category>
<category><pattern>TELL ME A LONG STORY</pattern><template>"""
    + "word " * 40
    + """</template></category>
</aiml>
"""
)


def test_only_plain_pairs_are_read_from_an_aiml_file(tmp_path):
    path = tmp_path / "test.aiml"
    path.write_text(AIML)
    assert plain_pairs(path) == [
        ("DO YOU LIKE MOVIES", "Yes, I love movies."),
        ("I AM TIRED", "Get some rest. Sleep helps."),
    ]


def test_a_pattern_reads_as_a_user_turn():
    assert as_question("DO YOU LIKE MOVIES") == "Do you like movies?"
    assert as_question("I  THINK I AM   TIRED") == "I think I am tired"
    assert as_question("WHERE IS   IT") == "Where is it?"


def test_the_installed_pairs_are_plain_dialogues_distinct_by_question():
    pairs = alice_dialogues()
    assert len(pairs) > 5000 and all(len(p) == 2 and all(p) for p in pairs)
    questions = [" ".join(words(q)) for q, _ in pairs]
    assert len(set(questions)) == len(questions)
    assert not any(c in q for q, _ in pairs for c in "*_<>")


def test_pretraining_text_holds_no_turn_of_a_held_out_context():
    held_out = {context_key(c.turns) for c in corpus_contexts("heldout")}
    corpus_train = pretraining_dialogues()
    with_alice = pretraining_dialogues(alice=True)
    assert with_alice[: len(corpus_train)] == corpus_train and len(with_alice) > len(corpus_train) + 5000
    # ALICE's own pairs include some of the corpus's questions ("What is AI?"): those are dropped.
    corpus_turns = {context_key([t]) for d in load_dialogues() for t in d}
    assert corpus_turns & {context_key([q]) for q, _ in alice_dialogues()}
    assert not corpus_turns & {context_key([q]) for q, _ in with_alice[len(corpus_train) :]}
    assert held_out.isdisjoint(context_key(d[:k]) for d in with_alice for k in range(1, len(d) + 1))


def test_the_policy_cache_key_covers_the_extra_text():
    with_alice, without = PolicyConfig(), PolicyConfig(pretrain_alice=False)
    assert default_policy_dir(with_alice) != default_policy_dir(without)
