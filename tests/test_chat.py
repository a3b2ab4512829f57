import pytest

from rlhf.data.chat import (
    parse_dialogue,
    parse_reply,
    render_dialogue,
    render_exchange,
    render_prompt,
    split_hh_transcript,
)


def test_render_and_parse_round_trip():
    turns = ["Hi there", "Hello!\nHow are you?", "Fine,   thanks"]
    text = render_dialogue(turns)
    assert text == "User: Hi there\nBot: Hello! How are you?\nUser: Fine, thanks\n"
    assert parse_dialogue(text) == ["Hi there", "Hello! How are you?", "Fine, thanks"]


def test_prompt_ends_with_bot_cue_and_needs_a_user_turn_last():
    assert render_prompt(["Hi"]) == "User: Hi\nBot:"
    assert render_exchange(["Hi"], "Hello  there") == "User: Hi\nBot: Hello there\n"
    with pytest.raises(ValueError, match="odd number"):
        render_prompt(["Hi", "Hello"])


def test_parse_reply_stops_at_the_next_line_or_speaker_cue():
    assert parse_reply(" I am fine.\nUser: good") == "I am fine."
    assert parse_reply("Ensure it's aBot: Ensure it's aBot: Ensure") == "Ensure it's a"
    assert parse_reply("Sure. User: and you?") == "Sure."


def test_parse_dialogue_names_the_bad_line():
    with pytest.raises(ValueError, match="line 2"):
        parse_dialogue("User: hi\nUser: again\n")


def test_hh_transcript_splits_into_context_and_reply():
    context, reply = split_hh_transcript("\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Help me\n\nAssistant: Sure.")
    assert context == ["Hi", "Hello", "Help me"]
    assert reply == "Sure."
    with pytest.raises(ValueError):
        split_hh_transcript("\n\nAssistant: only me")
