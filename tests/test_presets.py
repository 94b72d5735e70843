from pathlib import Path

import pytest

from playground.engine.models.presets import PresetRegistry, load_preset_file
from playground.errors import PlaygroundError
from tests.conftest import PRESETS

GOOD = """
display_name: Test
model: {id: org/model, loader: transformers}
template: {user: "U: {content}\\n", assistant: "A: {content}\\n", generation_prefix: "A:"}
params: {temperature: 0.5}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_preset_loads():
    registry = PresetRegistry.from_folders(PRESETS)
    names = set(registry.names())
    assert {
        "smollm2-135m-instruct",
        "decilm-7b-instruct",
        "dclm-1b-it",
        "llama-65b-instruct",
        "tulu-7b-gptq",
        "falcon-7b-chat-oasst1",
    } <= names
    for preset in registry:
        assert len(preset.file_hash) == 64
        assert preset.summary()["name"] == preset.name


def test_good_file_gets_name_from_file_and_hash(tmp_path):
    preset = load_preset_file(write(tmp_path, "my-model.yaml", GOOD))
    assert preset.name == "my-model"
    assert preset.params.temperature == 0.5
    assert preset.source.endswith("my-model.yaml")


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (GOOD.replace('user: "U: {content}\\n"', 'user: "U: \\n"'), "template.user", "{content}"),
        (GOOD.replace("temperature: 0.5", "temperature: -1"), "params.temperature", "greater than"),
        (GOOD.replace("display_name: Test\n", ""), "display_name", "field missing"),
        (GOOD.replace("loader: transformers", "loader: magic"), "model.loader", "magic"),
        (GOOD + "colour: blue\n", "colour", "unknown field"),
        (GOOD.replace("params: {temperature: 0.5}", "stop: ['']"), "stop", "empty"),
    ],
)
def test_broken_file_names_file_field_and_problem(tmp_path, text, field, problem):
    path = write(tmp_path, "broken.yaml", text)
    with pytest.raises(PlaygroundError) as err:
        load_preset_file(path)
    message = str(err.value)
    assert str(path) in message
    assert field in message
    assert problem in message


def test_invalid_yaml_and_duplicate_names(tmp_path):
    with pytest.raises(PlaygroundError, match="not valid YAML"):
        load_preset_file(write(tmp_path, "bad.yaml", "display_name: [unclosed"))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write(a, "same.yaml", GOOD)
    write(b, "same.yaml", GOOD)
    with pytest.raises(PlaygroundError, match="used by both"):
        PresetRegistry.from_folders(a, b)


def test_unknown_preset_lists_known_ones():
    registry = PresetRegistry.from_folders(PRESETS)
    with pytest.raises(PlaygroundError, match="known presets: .*smollm2-135m-instruct"):
        registry.get("nope")
