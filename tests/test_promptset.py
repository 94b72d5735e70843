"""Prompt sets: {variables}, CSV / JSONL / pasted / table rows, and every bad input's message."""

import json

import pytest

from playground.errors import PlaygroundError
from playground.services.notebook.prompts import (
    MAX_IMPORT_BYTES,
    MAX_ROWS,
    build_rows,
    fill,
    load_file,
    parse_csv,
    parse_jsonl,
    parse_pasted,
    records_table,
    table_records,
    template_variables,
)


def test_a_template_fills_variables_from_each_csv_row():
    records = parse_csv(b"lang,text\nFrench,Good morning\nGerman,Thank you\n", "set.csv")
    rows = build_rows(records, "Translate to {lang}: {text}", "set.csv")
    assert [r.user for r in rows] == ["Translate to French: Good morning", "Translate to German: Thank you"]
    assert rows[1].variables == {"lang": "German", "text": "Thank you"} and rows[1].index == 1
    assert [m.model_dump() for m in rows[0].messages()] == [
        {"role": "user", "content": "Translate to French: Good morning"}
    ]


def test_braces_in_values_stay_and_double_braces_are_literal():
    assert fill("JSON {{x}}: {v}", {"v": "{not a slot}"}, "r") == "JSON {x}: {not a slot}"
    assert fill("no slots {1} here", {}, "r") == "no slots {1} here"
    assert template_variables("{a} and {b} {{c}}") == ["a", "b"]


def test_default_template_uses_the_prompt_column_and_system_and_history_are_reserved():
    history = json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}])
    rows = build_rows([{"prompt": "And now?", "system": "Be brief.", "history": history}])
    assert rows[0].system == "Be brief." and "system" not in rows[0].variables
    assert [m.role for m in rows[0].messages()] == ["user", "assistant", "user"]


def test_semicolon_and_tab_separated_files_and_a_bom_are_read():
    assert parse_csv("\ufeffa;b\n1;2\n".encode(), "x.csv") == [{"a": "1", "b": "2"}]
    assert parse_csv(b"a\tb\n1\t2\n\n", "x.tsv") == [{"a": "1", "b": "2"}]


def test_jsonl_rows_and_numbers_become_text():
    records = parse_jsonl(b'{"prompt": "Add {n}", "n": 3}\n\n{"prompt": "Add {n}", "n": 4.5}\n', "p.jsonl")
    assert [r.user for r in build_rows(records, "{prompt}")] == ["Add {n}", "Add {n}"]
    assert [r.user for r in build_rows(records, "Add {n}")] == ["Add 3", "Add 4.5"]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: build_rows([{"text": "x"}], "Say {lang}: {text}", "set.csv"),
            r"set.csv, row 1: .*\{lang\}.*columns: text",
        ),
        (
            lambda: build_rows([{"prompt": "a"}, {"prompt": "  "}], "{prompt}", "set.csv"),
            r"set.csv, row 2: the prompt is empty",
        ),
        (lambda: build_rows([], "{prompt}", "set.csv"), "the prompt set is empty"),
        (
            lambda: parse_csv(b"prompt\n\xff\xfe bad\n", "bad.csv"),
            r"bad.csv: not UTF-8 text \(invalid byte 0xff at offset 7\)",
        ),
        (lambda: parse_csv(b"prompt,\nx,y\n", "h.csv"), "h.csv: column 2 of the header row has no name"),
        (lambda: parse_csv(b"a,a\n1,2\n", "h.csv"), "names a column twice"),
        (
            lambda: parse_csv(b"a,b\n1,2,3\n", "w.csv"),
            r"w.csv, line 2: 3 values but the header has 2 columns",
        ),
        (lambda: parse_csv(b"", "e.csv"), "e.csv: the file is empty"),
        (
            lambda: parse_jsonl(b'{"prompt": "a"}\n{"prompt": \n', "j.jsonl"),
            r"j.jsonl, line 2: not valid JSON",
        ),
        (lambda: parse_jsonl(b'["a"]\n', "j.jsonl"), r"j.jsonl, line 1: expected a JSON object, got list"),
        (lambda: build_rows([{"prompt": "a", "history": "[{"}]), r"row 1, column 'history': not valid JSON"),
        (
            lambda: build_rows([{"prompt": "a", "history": [{"role": "user", "content": "x"}]}]),
            "must end with an assistant answer",
        ),
        (lambda: build_rows([{"prompt": {"nested": 1}}]), r"row 1, column 'prompt': expected text, got dict"),
        (lambda: parse_pasted("x", "XML"), "unknown paste format 'XML'"),
    ],
)
def test_bad_input_names_the_file_row_and_column(call, message):
    with pytest.raises(PlaygroundError, match=message):
        call()


def test_uploaded_files_by_type(tmp_path):
    (tmp_path / "a.csv").write_text("prompt\nHi\n")
    (tmp_path / "a.jsonl").write_text('{"prompt": "Hi"}\n')
    (tmp_path / "a.xlsx").write_bytes(b"PK")
    assert load_file(tmp_path / "a.csv") == load_file(tmp_path / "a.jsonl") == [{"prompt": "Hi"}]
    with pytest.raises(PlaygroundError, match=r"a.xlsx: unknown file type .xlsx; upload a .csv or .jsonl"):
        load_file(tmp_path / "a.xlsx")


def test_pasted_lines_and_the_editable_table_round_trip():
    records = parse_pasted("First prompt\n\n  Second prompt  \n", "one prompt per line")
    assert records == [{"prompt": "First prompt"}, {"prompt": "Second prompt"}]
    headers, values = records_table(
        [{"text": "x", "prompt": "p", "history": [{"role": "user", "content": "u"}]}]
    )
    assert headers == ["prompt", "text", "history"] and values[0][:2] == ["p", "x"]
    assert table_records(headers, [*values, ["", "", ""]]) == [dict(zip(headers, values[0], strict=True))]


def test_an_import_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as f:  # 64 GB on paper, no blocks on disk: reading it would not end well
        f.write(b"prompt\nHi\n")
        f.truncate(64 * 2**30)
    with pytest.raises(PlaygroundError, match=r"huge.csv is 65536.0 MB; an import takes at most 5 MB"):
        load_file(huge)
    just_under = tmp_path / "fits.csv"
    just_under.write_bytes(b"prompt\n" + (b"x" * 5200 + b"\n") * MAX_ROWS)  # 4.96 MB
    assert just_under.stat().st_size < MAX_IMPORT_BYTES and len(load_file(just_under)) == MAX_ROWS
    with pytest.raises(PlaygroundError, match=r"the pasted text is 5.0 MB; an import takes at most 5 MB"):
        parse_pasted("prompt\n" + "y" * MAX_IMPORT_BYTES, "CSV with a header row")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("rows.csv", "prompt\n" + "".join(f"p{n}\n" for n in range(MAX_ROWS + 1))),
        ("rows.jsonl", "".join(json.dumps({"prompt": f"p{n}"}) + "\n" for n in range(MAX_ROWS + 1))),
    ],
)
def test_an_import_over_the_row_cap_is_refused(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(
        PlaygroundError, match=rf"{name}: more than 1,000 rows; an import takes at most 1,000"
    ):
        load_file(tmp_path / name)
    (tmp_path / name).write_text(content.rsplit("\n", 2)[0] + "\n")  # one row fewer: exactly the cap
    assert len(load_file(tmp_path / name)) == MAX_ROWS
    lines = "\n".join(f"p{n}" for n in range(MAX_ROWS + 1))
    with pytest.raises(PlaygroundError, match="pasted text: more than 1,000 rows"):
        parse_pasted(lines, "one prompt per line")
