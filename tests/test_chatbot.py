"""``rlhf-gym chat``: piped turns, two policies answering side by side with their scores."""

import io

import torch

from rlhf.chatbot import ChatConfig, chat, side_by_side
from rlhf.cli import main


def _other_policy(tiny_policy, tmp_path):
    """The tiny policy with its weights nudged: a second policy that answers differently."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_policy.path)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p) * p.std())
    model.save_pretrained(tmp_path / "other")
    AutoTokenizer.from_pretrained(tiny_policy.path).save_pretrained(tmp_path / "other")
    return str(tmp_path / "other")


def test_two_policies_answer_each_turn_side_by_side(tiny_policy, tmp_path):
    other = _other_policy(tiny_policy, tmp_path)
    out = io.StringIO()
    config = ChatConfig(policy=tiny_policy.path, against=other, device="cpu", max_new_tokens=12, width=120)
    turns = chat(config, io.StringIO("Hello, how are you?\n\nWhat do you like?\n/reset\nBye\n"), out)
    text = out.getvalue()
    assert turns == 3  # the empty line is no turn, /reset starts over
    # Each turn: one row with both policies' names, then their replies and gold scores in two columns.
    heads = [line for line in text.splitlines() if line.startswith("[1] ")]
    assert len(heads) == 4 and all(
        "│ [2] " in line and line.endswith("/other") for line in heads[1:]
    )  # the first lists the paths
    replies = [line for line in text.splitlines() if line.startswith("Bot: ")]
    assert len(replies) >= 3 and all(line.count("Bot: ") == 2 for line in replies)
    assert text.count("gold ") == 6 and "(new dialogue)" in text


def test_chat_command_reads_piped_turns(tiny_policy, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("Hi there\n"))
    assert main(["chat", "--policy", tiny_policy.path, "--device", "cpu", "--gold", "sentiment"]) == 0
    out = capsys.readouterr().out
    assert "Bot: " in out and "gold " in out and "1 turns" in out
    assert main(["chat", "--policy", str(tiny_policy.path) + "-missing"]) == 2
    assert "cannot load policy" in capsys.readouterr().err


def test_columns_wrap_and_align():
    rows = side_by_side([["a " * 30], ["b"]], width=43)
    assert all(len(row.split(" │ ")[0]) == 20 for row in rows if " │ " in row)
    assert rows[0].endswith("│ b") and len(rows) == 3
