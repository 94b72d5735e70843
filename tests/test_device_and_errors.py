import json

import torch
from huggingface_hub.errors import GatedRepoError

from playground.engine.models.device import DeviceInfo, cpu_bf16_speedup
from playground.engine.models.loader import LoadRequest, explain_load_error


def test_cpu_dtype_decision_is_measured_once_and_remembered(tmp_path):
    first = cpu_bf16_speedup(tmp_path)
    record = json.loads((tmp_path / "cpu-dtype.json").read_text())
    assert record["bf16_speedup"] == first > 0 and "torch" in record["machine"]
    record["bf16_speedup"] = 0.5  # a later start reads the record instead of measuring again
    (tmp_path / "cpu-dtype.json").write_text(json.dumps(record))
    assert DeviceInfo.detect("cpu", tmp_path).default_dtype == torch.float32
    record["bf16_speedup"] = 2.0
    (tmp_path / "cpu-dtype.json").write_text(json.dumps(record))
    info = DeviceInfo.detect("cpu", tmp_path)
    assert info.default_dtype == torch.bfloat16
    assert info.resolve("float16") == torch.bfloat16  # fp16 on CPU falls back to the measured choice
    assert info.resolve("float32") == torch.float32


def test_gated_repo_error_says_what_to_do():
    request = LoadRequest("upstage/llama-65b-instruct", "main", "transformers", "float16", "8bit", False)
    response = type("Response", (), {"headers": {}, "status_code": 403, "request": None})()
    message = str(
        explain_load_error(request, GatedRepoError("Access to model is restricted", response=response))
    )
    assert "upstage/llama-65b-instruct@main is a gated repository" in message
    assert "huggingface-cli login" in message and "accept its license" in message
