import pytest

from playground.engine.generation.textstream import IncrementalDecoder, StopStringFilter


def feed(filter_: StopStringFilter, pieces) -> str:
    return "".join(filter_.push(p) for p in pieces) + filter_.flush()


def test_stop_string_split_across_tokens_is_cut_and_hidden():
    f = StopStringFilter(["### User:"])
    out = feed(f, ["Paris is", " the capital.\n", "##", "# Us", "er:", " next question"])
    assert out == "Paris is the capital.\n"
    assert f.stopped_on == "### User:"


def test_text_streams_without_delay_when_no_stop_prefix():
    f = StopStringFilter(["<human>:"])
    assert f.push("Hello") == "Hello"
    assert f.push(" world <") == " world "  # "<" could start the stop string: held back
    assert f.push("b>") == "<b>"  # not a stop string after all: released
    assert f.flush() == ""


def test_partial_stop_at_the_end_is_released():
    f = StopStringFilter(["### User:"])
    assert feed(f, ["Done.", "\n##"]) == "Done.\n##"
    assert f.stopped_on is None


def test_earliest_of_several_stop_strings_wins():
    f = StopStringFilter(["<|user|>", "<|system|>"])
    assert feed(f, ["a<|sys", "tem|>b<|user|>c"]) == "a"
    assert f.stopped_on == "<|system|>"


@pytest.mark.slow
def test_decoder_never_splits_multibyte_characters(smollm):
    tokenizer = smollm.tokenizer
    text = "Café 東京 🚀🎉 naïve — done"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # several characters need more than one token
    decoder = IncrementalDecoder(tokenizer)
    deltas = [decoder.push([i]) for i in ids] + [decoder.flush()]
    assert "".join(deltas) == tokenizer.decode(ids, skip_special_tokens=True)
    assert not any("\ufffd" in d for d in deltas)
