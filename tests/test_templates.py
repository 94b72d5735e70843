"""Golden tests: each card's own example renders byte for byte, and two-turn conversations as specified."""

import pytest

from playground.engine.models.presets import PresetRegistry
from playground.engine.models.templates import Message, parse_messages
from playground.errors import PlaygroundError
from tests.conftest import PRESETS

REGISTRY = PresetRegistry.from_folders(PRESETS)


def render(name: str, turns: list[str], system: str | None = None) -> str:
    roles = ["user", "assistant"]
    messages = [Message(role=roles[i % 2], content=t) for i, t in enumerate(turns)]
    preset = REGISTRY.get(name)
    return preset.template.render(messages, preset.system_prompt if system is None else system)


DECI_SYSTEM = "You are an AI assistant that follows instruction extremely well. Help as much as you can."
PANCAKES = "How do I make the most delicious pancakes the world has ever tasted?"
DCLM_HEADER = "Below is an instruction that describes a task.\n\nWrite a response that appropriately completes the request."
THOMAS = "Thomas is healthy, but he has to go to the hospital. What could be the reasons?"
DANIEL = (
    "My name is Daniel. Write a short email to my closest friends inviting them to come to my home on Friday "
    "for a dinner party, I will make the food but tell them to BYOB."
)


CARD_EXAMPLES = [
    # DeciLM card: apply_chat_template([system, user], add_generation_prompt=True)
    (
        "decilm-7b-instruct",
        [PANCAKES],
        None,
        f"### System:\n{DECI_SYSTEM}\n### User:\n{PANCAKES}\n### Assistant:\n",
    ),
    # DCLM card: PROMPT.format(instruction=...)
    (
        "dclm-1b-it",
        ["Give me a poem about Sachin Tendulkar."],
        None,
        f"{DCLM_HEADER}\n\n### Instruction:\nGive me a poem about Sachin Tendulkar.\n\n### Response:",
    ),
    # upstage card: the example prompt has no system block
    ("llama-65b-instruct", [THOMAS], None, f"### User:\n{THOMAS}\n\n### Assistant:\n"),
    # tulu card: prompt_template with the trailing newline after <|assistant|>
    ("tulu-7b-gptq", ["Tell me about AI"], None, "<|user|>\nTell me about AI\n<|assistant|>\n"),
    # falcon card: both example dialogues
    ("falcon-7b-chat-oasst1", [DANIEL], None, f"<human>: {DANIEL}\n<bot>:"),
    (
        "falcon-7b-chat-oasst1",
        ["Create a list of four things to do in San Francisco."],
        None,
        "<human>: Create a list of four things to do in San Francisco.\n<bot>:",
    ),
]


@pytest.mark.parametrize(("name", "turns", "system", "expected"), CARD_EXAMPLES)
def test_card_example_renders_byte_for_byte(name, turns, system, expected):
    assert render(name, turns, system) == expected


def test_upstage_with_a_system_prompt_follows_the_card_template():
    assert render("llama-65b-instruct", ["Hi"], "Be brief.") == (
        "### System:\nBe brief.\n\n### User:\nHi\n\n### Assistant:\n"
    )


TWO_TURNS = ["What is 2+2?", "4", "And times 3?"]

TWO_TURN_EXPECTED = {
    "decilm-7b-instruct": (
        f"### System:\n{DECI_SYSTEM}\n### User:\nWhat is 2+2?\n### Assistant:\n4\n### User:\nAnd times 3?\n"
        "### Assistant:\n"
    ),
    "dclm-1b-it": (
        f"{DCLM_HEADER}\n\n### Instruction:\nWhat is 2+2?\n\n### Response:\n4\n\n"
        "### Instruction:\nAnd times 3?\n\n### Response:"
    ),
    "llama-65b-instruct": "### User:\nWhat is 2+2?\n\n### Assistant:\n4\n\n### User:\nAnd times 3?\n\n### Assistant:\n",
    "tulu-7b-gptq": "<|user|>\nWhat is 2+2?\n<|assistant|>\n4</s>\n<|user|>\nAnd times 3?\n<|assistant|>\n",
    "falcon-7b-chat-oasst1": "<human>: What is 2+2?\n<bot>: 4\n<human>: And times 3?\n<bot>:",
}


@pytest.mark.parametrize("name", sorted(TWO_TURN_EXPECTED))
def test_two_turn_conversation(name):
    assert render(name, TWO_TURNS) == TWO_TURN_EXPECTED[name]


@pytest.mark.parametrize("name", sorted(TWO_TURN_EXPECTED))
def test_stop_strings_catch_the_next_user_turn(name):
    """The model must not be able to write the next user turn: its header is a stop string."""
    preset = REGISTRY.get(name)
    next_user = preset.template.user.split("{content}")[0].strip()
    assert any(stop.strip() and stop.strip() in next_user for stop in preset.stop), (next_user, preset.stop)


def test_user_braces_are_not_interpreted():
    assert "{content} {0} {x}" in render("tulu-7b-gptq", ["{content} {0} {x}"])


def test_conversation_shape_is_checked():
    with pytest.raises(PlaygroundError, match="must end with a user message"):
        render("tulu-7b-gptq", ["a", "b"])
    with pytest.raises(PlaygroundError, match="messages\\[0\\].role"):
        parse_messages([{"role": "robot", "content": "x"}])
    with pytest.raises(PlaygroundError, match="JSON list"):
        parse_messages({"role": "user"})


@pytest.mark.slow
def test_tokenizer_template_of_the_embedded_model(smollm):
    preset = REGISTRY.get("smollm2-135m-instruct")
    messages = [
        Message(role="user", content="Hi"),
        Message(role="assistant", content="Hello!"),
        Message(role="user", content="Bye"),
    ]
    prompt = preset.template.render(messages, "Be nice.", tokenizer=smollm.tokenizer)
    assert prompt == (
        "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    )
