"""Read the playground's export files the way their consumers do, and print what they got as JSON:
``python -m tests.export_readers TOKENIZER_DIR dpo=F dpo_conv=F sharegpt=F jsonl=F csv=F``.

``tests/test_export_consumers.py`` runs it under several ``PYTHONHASHSEED`` values (a fresh process
each, since Python fixes string hashing at start-up) and requires the same output every time.

* every file through ``datasets.load_dataset`` (json / csv) and pandas;
* DPO files through TRL's own preparation: ``is_conversational`` on each row and
  ``DPOTrainer._prepare_dataset`` (prompt extraction, EOS appended to chosen / rejected in the
  standard format, tokenisation; the method reads nothing of the trainer but its tokenizer);
* the ShareGPT file through TRL's ``maybe_convert_to_chatml`` and the tokenizer's chat template.
"""

from __future__ import annotations

import json
import sys
import tempfile
import types


def main(argv: list[str]) -> None:
    import datasets
    import pandas as pd
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import is_conversational, maybe_convert_to_chatml

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(argv[0])
    files = dict(arg.split("=", 1) for arg in argv[1:])
    out: dict = {"eos_token_id": tokenizer.eos_token_id}
    for kind, path in files.items():
        loader = "csv" if kind == "csv" else "json"
        dataset = datasets.load_dataset(loader, data_files=path, split="train")
        frame = pd.read_csv(path) if kind == "csv" else pd.read_json(path, lines=True, dtype=False)
        got = {
            "columns": dataset.column_names,
            "rows": dataset.num_rows,
            "pandas": [list(frame.columns), len(frame)],
            "records": json.loads(json.dumps(dataset.to_list(), default=str)),
        }
        if kind.startswith("dpo"):
            got["conversational"] = [is_conversational(row) for row in dataset]
            with tempfile.TemporaryDirectory() as scratch:
                config = DPOConfig(output_dir=scratch, report_to=[], use_cpu=True, bf16=False)
                owner = types.SimpleNamespace(_tokenizer=tokenizer)
                prepared = DPOTrainer._prepare_dataset(owner, dataset, tokenizer, config, "train")
            got["tokens"] = [[r["prompt_ids"], r["chosen_ids"], r["rejected_ids"]] for r in prepared]
        if kind == "sharegpt":
            chats = [maybe_convert_to_chatml(dict(row)) for row in dataset]
            got["conversational"] = [is_conversational(chat) for chat in chats]
            got["rendered"] = [
                tokenizer.apply_chat_template(chat["messages"], tokenize=False) for chat in chats
            ]
        out[kind] = got
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
