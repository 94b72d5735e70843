"""Checks on notebook cells: every type passes and fails, values use the row's variables, weights and
the threshold decide a cell, bad regexes and schemas are refused naming the check, python checks only
where the app is private; pass rates carry their 95% Wilson interval."""

from __future__ import annotations

import pytest

from playground.errors import PlaygroundError
from playground.services.notebook.checks import Answer, CheckSet, parse_check, parse_checks, run_check
from playground.services.notebook.document import NotebookDocument
from playground.services.notebook.scoring import score_cell, wilson

ANSWER = Answer('The capital of France is Paris. {"a": 1}', "eos", tokens=9, ttft_s=0.2, total_s=1.5)
JSON = Answer('{"name": "Ada", "age": 36}', "length", tokens=12, ttft_s=0.4, total_s=2.0)


def verdict(check: dict, answer: Answer = ANSWER, variables: dict | None = None, python: bool = True) -> bool:
    return run_check(parse_check(check, 1, python), answer, variables or {}, "check 1").passed


@pytest.mark.parametrize(
    ("check", "answer", "expected"),
    [
        ({"type": "contains", "value": "Paris"}, ANSWER, True),
        ({"type": "contains", "value": "paris"}, ANSWER, False),
        ({"type": "contains", "value": "paris", "case_sensitive": False}, ANSWER, True),
        ({"type": "icontains", "value": "PARIS"}, ANSWER, True),
        ({"type": "not-contains", "value": "Paris"}, ANSWER, False),
        ({"type": "not-contains", "value": "Lyon"}, ANSWER, True),
        ({"type": "contains", "value": ["Lyon", "Paris"]}, ANSWER, True),
        ({"type": "equals", "value": '{"name": "Ada", "age": 36}'}, JSON, True),
        ({"type": "equals", "value": "Ada"}, JSON, False),
        ({"type": "starts-with", "value": "The capital"}, ANSWER, True),
        ({"type": "starts-with", "value": "Paris"}, ANSWER, False),
        ({"type": "regex", "value": r"Par\w+"}, ANSWER, True),
        ({"type": "regex", "value": r"^\d{3}$"}, ANSWER, False),
        ({"type": "is-json"}, JSON, True),
        ({"type": "is-json"}, ANSWER, False),
        ({"type": "json-schema", "value": {"type": "object", "required": ["name"]}}, JSON, True),
        ({"type": "json-schema", "value": {"type": "object", "required": ["email"]}}, JSON, False),
        ({"type": "length", "max": 50}, ANSWER, True),
        ({"type": "length", "min": 50}, ANSWER, False),
        ({"type": "length", "min": 5, "max": 10, "unit": "tokens"}, ANSWER, True),
        ({"type": "length", "max": 10, "unit": "tokens"}, JSON, False),
        ({"type": "finish-reason", "value": "eos"}, ANSWER, True),
        ({"type": "finish-reason", "value": ["eos", "stop_string"]}, JSON, False),
        ({"type": "ttft-under", "value": 0.3}, ANSWER, True),
        ({"type": "ttft-under", "value": 0.3}, JSON, False),
        ({"type": "time-under", "value": 1.8}, ANSWER, True),
        ({"type": "time-under", "value": 1.8}, JSON, False),
        ({"type": "python", "value": "json.loads(output)['age'] > 30"}, JSON, True),
        ({"type": "python", "value": "len(output) < 10"}, JSON, False),
        ({"type": "python", "value": "json.loads(output)"}, ANSWER, False),  # raises: a failed check
    ],
)
def test_every_check_type_passes_and_fails(check, answer, expected):
    assert verdict(check, answer) is expected


def test_values_use_the_rows_variables():
    check = {"type": "contains", "value": "{answer}"}
    assert verdict(check, variables={"answer": "Paris"})
    assert not verdict(check, variables={"answer": "Rome"})
    assert verdict({"type": "regex", "value": "{city}\\.$|{city}\\. "}, variables={"city": "Paris"})
    with pytest.raises(
        PlaygroundError, match=r"check 1, row 2: the template uses \{answer\} but there is no column"
    ):
        run_check(parse_check(check, 1, False), ANSWER, {"expected": "x"}, "check 1, row 2")


def test_weights_and_threshold_decide_a_cell():
    checks = parse_checks(
        [
            {"type": "contains", "value": "Paris", "weight": 3},
            {"type": "contains", "value": "Rome", "weight": 1},
            {"type": "length", "max": 5, "rows": [1]},
        ],
        allow_python=False,
    )
    strict = score_cell(CheckSet(checks, 1.0), ANSWER, 0, {})
    assert strict.score == 0.75 and not strict.passed and strict.results[2] is None
    lenient = score_cell(CheckSet(checks, 0.75), ANSWER, 0, {})
    assert lenient.passed
    row_two = score_cell(CheckSet(checks, 0.75), ANSWER, 1, {})  # the length check applies there: 3 / 5
    assert row_two.score == 0.6 and not row_two.passed
    assert score_cell(CheckSet([], 1.0), ANSWER, 0, {}) is None


def test_bad_checks_are_refused_with_a_message_naming_the_check():
    with pytest.raises(
        PlaygroundError, match=r"check 2 \(regex\): '\(unclosed' is not a valid regular expression"
    ):
        parse_checks([{"type": "contains", "value": "x"}, {"type": "regex", "value": "(unclosed"}], False)
    with pytest.raises(
        PlaygroundError, match=r"check 1 \(json-schema\): not a valid JSON Schema at type: .*'objekt'"
    ):
        parse_checks([{"type": "json-schema", "value": {"type": "objekt"}}], False)
    with pytest.raises(PlaygroundError, match=r"check 1 \(json-schema\): the schema is not valid JSON"):
        parse_checks([{"type": "json-schema", "value": "{not json"}], False)
    with pytest.raises(PlaygroundError, match=r"check 1 \(wobble\): unknown check type 'wobble'"):
        parse_checks([{"type": "wobble"}], False)
    with pytest.raises(PlaygroundError, match=r"check 1 \(length\): give min, max or both"):
        parse_checks([{"type": "length"}], False)
    with pytest.raises(PlaygroundError, match=r"check 1 \(finish-reason\): value must be one or more of eos"):
        parse_checks([{"type": "finish-reason", "value": "stop"}], False)
    with pytest.raises(PlaygroundError, match=r"check 1 \(contains\): unknown field\(s\) \['vaule'\]"):
        parse_checks([{"type": "contains", "vaule": "x"}], False)
    with pytest.raises(PlaygroundError, match="the checks are not valid JSON"):
        parse_checks("[{", False)
    # a regex made from a row's variable is checked when the notebook is saved, naming check and row
    with pytest.raises(
        PlaygroundError, match=r"check 1 \(regex\), row 2: '\(' is not a valid regular expression"
    ):
        NotebookDocument.from_json(
            {
                "rows": [{"prompt": "a", "p": "x"}, {"prompt": "b", "p": "("}],
                "checks": [{"type": "regex", "value": "{p}"}],
            },
            allow_python=False,
        )


def test_python_checks_only_where_the_app_is_private():
    check = [{"type": "python", "value": "len(output) > 3"}]
    assert parse_checks(check, allow_python=True)[0].type == "python"
    with pytest.raises(
        PlaygroundError, match=r"check 1 \(python\): python checks run code in the server's process.*public"
    ):
        parse_checks(check, allow_python=False)
    with pytest.raises(PlaygroundError, match=r"check 1 \(python\): not a valid Python expression"):
        parse_checks([{"type": "python", "value": "len(output) >"}], allow_python=True)
    # no builtins beyond the harmless ones: open/__import__ are not there
    assert not verdict({"type": "python", "value": "open('/etc/passwd')"}, JSON)
    assert not verdict({"type": "python", "value": "__import__('os')"}, JSON)


def test_wilson_interval():
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(10, 10)
    assert high == pytest.approx(1.0) and round(low, 4) == 0.7225
