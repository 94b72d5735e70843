"""Bring tests in: a promptfoo test file and an OpenAI Evals JSONL file become rows and checks; what we
do not support is refused whole, naming the construct and its line."""

from __future__ import annotations

import json

import pytest

from playground.errors import PlaygroundError
from playground.services.notebook.document import NotebookDocument
from playground.services.notebook.imports import import_tests

PROMPTFOO = """\
description: capitals
prompts:
  - "Answer in one word. What is the capital of {{country}}?"
providers:
  - openai:gpt-4o-mini
defaultTest:
  assert:
    - type: latency
      threshold: 30000
tests:
  - vars:
      country: France
      expected: Paris
    assert:
      - type: icontains
        value: "{{expected}}"
        weight: 2
        metric: right city
      - type: not-contains
        value: "I don't know"
  - vars:
      country: Japan
      expected: Tokyo
    assert:
      - type: icontains
        value: "{{expected}}"
        weight: 2
        metric: right city
      - type: regex
        value: "^[A-Z]\\\\w+"
      - type: is-json
        value: {type: object}
      - type: finish-reason
        value: stop
"""


def test_a_promptfoo_file_becomes_rows_and_checks():
    imported = import_tests("capitals.yaml", PROMPTFOO.encode(), allow_python=False)
    assert imported.template == "Answer in one word. What is the capital of {country}?"
    assert imported.rows == [
        {"country": "France", "expected": "Paris"},
        {"country": "Japan", "expected": "Tokyo"},
    ]
    assert imported.checks == [
        {"type": "time-under", "value": 30.0},
        {
            "type": "contains",
            "value": "{expected}",
            "case_sensitive": False,
            "weight": 2,
            "name": "right city",
            "rows": None,
        },
        {"type": "contains", "value": "I don't know", "case_sensitive": True, "negate": True, "rows": [0]},
        {"type": "regex", "value": "^[A-Z]\\w+", "case_sensitive": True, "rows": [1]},
        {"type": "json-schema", "value": {"type": "object"}, "rows": [1]},
        {"type": "finish-reason", "value": ["eos", "stop_string"], "rows": [1]},
    ]
    assert imported.notes == [
        "capitals.yaml, line 4: providers are not imported; pick the models in the notebook"
    ]
    document = NotebookDocument.from_json(
        {"rows": imported.rows, "template": imported.template, "checks": imported.checks}, allow_python=False
    )
    assert [r.user for r in document.prompt_rows()] == [
        "Answer in one word. What is the capital of France?",
        "Answer in one word. What is the capital of Japan?",
    ]


def test_a_bare_list_of_tests_uses_its_one_variable():
    imported = import_tests(
        "t.yml", "- vars: {question: 'Hi {there}'}\n  assert: [{type: equals, value: x}]\n", False
    )
    assert imported.template == "{question}" and imported.rows == [{"question": "Hi {there}"}]
    assert imported.checks == [{"type": "equals", "value": "x", "case_sensitive": True, "rows": None}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            PROMPTFOO.replace("type: regex", "type: llm-rubric"),
            r"capitals.yaml, line 29: assertion type 'llm-rubric' is not supported",
        ),
        (
            PROMPTFOO.replace("      expected: Tokyo", "      expected: [Tokyo, Kyoto]"),
            r"line 23: var 'expected' is a list",
        ),
        (
            PROMPTFOO.replace(
                "      - type: finish-reason", "      - type: finish-reason\n        transform: output.trim()"
            ),
            r"line 34: 'transform' in an assertion is not supported",
        ),
        (
            PROMPTFOO.replace(
                "  - vars:\n      country: Japan", "  - threshold: 0.5\n    vars:\n      country: Japan"
            ),
            r"line 21: 'threshold' in a test is not supported",
        ),
        (PROMPTFOO.replace("tests:", "scenarios: []\ntests:"), r"line 10: 'scenarios' is not supported here"),
        (PROMPTFOO.replace('  - "Answer', '  - "{% if x %}Answer'), r"line 2: Nunjucks tags and filters"),
        (
            PROMPTFOO.replace("value: stop", "value: content_filter"),
            r"line 33: finish-reason 'content_filter' is not supported",
        ),
        ("tests: file://tests.yaml\n", r"line 1: tests from another file"),
        ("tests:\n  - vars: {a: 1\n", r"capitals.yaml, line 3: not valid YAML"),
        (
            "tests:\n  - vars: {a: x}\n    assert:\n      - type: python\n        value: output == 'x'\n",
            r"check 1 \(python\): python checks run code",
        ),
    ],
)
def test_a_promptfoo_file_with_what_we_do_not_support_is_refused_whole(text, message):
    with pytest.raises(PlaygroundError, match=message):
        import_tests("capitals.yaml", text, allow_python=False)


def test_an_openai_evals_file_becomes_rows_and_starts_with_checks():
    lines = [
        {
            "input": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"}],
            "ideal": "4",
        },
        {"input": "Capital of France?", "ideal": ["Paris", "paris"]},
        {
            "input": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Say {x}"},
            ],
            "ideal": "{x}",
        },
    ]
    imported = import_tests("arith.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n", allow_python=False)
    assert imported.template == "{prompt}"
    assert imported.rows[0] == {"system": "Be terse.", "prompt": "2+2?", "ideal": "4"}
    assert imported.rows[1] == {"prompt": "Capital of France?"}
    assert json.loads(imported.rows[2]["history"]) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert imported.checks == [
        {"type": "starts-with", "value": "{ideal}", "rows": [0, 2]},
        {"type": "starts-with", "value": ["Paris", "paris"], "rows": [1]},
    ]
    rows = NotebookDocument.from_json({"rows": imported.rows, "checks": imported.checks}, False).prompt_rows()
    assert rows[0].system == "Be terse." and [m.content for m in rows[2].messages()] == [
        "Hi",
        "Hello!",
        "Say {x}",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"input": "x", "ideal": "y", "metadata": {}}', r"line 2: \['metadata'\] not supported"),
        (
            '{"input": [{"role": "user", "content": "x", "name": "example_user"}], "ideal": "y"}',
            r"line 2: input\[0\]: \['name'\] not supported",
        ),
        (
            '{"input": [{"role": "assistant", "content": "x"}], "ideal": "y"}',
            r"line 2: input must end with a user message",
        ),
        ('{"input": "x", "ideal": 4}', r"line 2: ideal must be a text or a list of texts"),
        ('{"input": "x"', r"line 2: not valid JSON"),
        ('{"input": "x"}', r"line 2: a sample needs both input and ideal"),
    ],
)
def test_a_malformed_evals_file_is_refused_whole(line, message):
    with pytest.raises(PlaygroundError, match="samples.jsonl, " + message):
        import_tests("samples.jsonl", '{"input": "fine", "ideal": "ok"}\n' + line + "\n", allow_python=False)


def test_other_files_and_encodings_are_refused():
    with pytest.raises(PlaygroundError, match="tests.csv: import a promptfoo test file"):
        import_tests("tests.csv", b"a,b\n", False)
    with pytest.raises(PlaygroundError, match=r"t.yaml: not UTF-8 text \(invalid byte 0xff at offset 0\)"):
        import_tests("t.yaml", b"\xff\xfe", False)
