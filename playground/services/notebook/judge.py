"""An LLM judge over a notebook run: pairwise (both orders) or a 1–5 rubric score per cell. No Gradio.

Any preset can judge. The judge prompts of a whole run are built as ``GenerationRequest``s and sent
in one ``stream`` call to the judge's session, so the engine prefills and decodes them together like
a grid's cells (a request gives the same text alone or batched, so a verdict is reproducible from
its stored prompt, parameters and seed). Greedy by default.

Pairwise: for each row (and sample) and each pair of models, the judge sees both answers in both
orders; the same winner both times is a win, anything else (a different winner, no clear choice) a
tie. Verdicts are stored in ``judge_verdicts`` with the rationale, the judge's preset, model and
revision and every call as it ran; never as votes, so the human leaderboard never counts them.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from playground.engine.generation.request import GenerationRequest
from playground.engine.models.templates import Message
from playground.errors import PlaygroundError
from playground.services.answers.chat import ChatService
from playground.services.notebook.document import JudgeSettings
from playground.store.models import JudgeVerdict
from playground.store.notebooks import NotebookStore

PAIRWISE = """Two assistants answered the same question. Decide which answer is better: more correct, more helpful, and closer to what the question asks.

[Question]
{question}

[Answer A]
{a}

[Answer B]
{b}

Which answer is better? Reply with A, B or tie on the first line, then explain why in one sentence."""

RUBRIC = """Score the answer to the question from 1 (poor) to 5 (excellent), following the rubric.

[Rubric]
{rubric}

[Question]
{question}

[Answer]
{answer}

Reply with the score (1 to 5) on the first line, then explain why in one sentence."""


def fill_prompt(template: str, **values: str) -> str:
    """The prompt with its slots filled (answers may hold braces: no ``str.format``)."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def parse_choice(text: str) -> str | None:
    """``A``, ``B`` or ``tie`` from a pairwise reply; None when it names none clearly."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    words = re.sub(r"[^\w\s]", " ", first).split()
    if words and words[0].lower() == "tie":
        return "tie"
    for word in words[:3]:
        if word in ("A", "B"):
            return word
    named = re.search(r"\b(?:answer|assistant|response)\s*\[?([AB])\]?", first, re.IGNORECASE)
    if named:
        return named.group(1).upper()
    better = re.search(r"\b(?:answer|assistant|response)\s*\[?([AB])\]?\s+is\s+better", text, re.IGNORECASE)
    return better.group(1).upper() if better else None


def parse_score(text: str) -> int | None:
    """The 1–5 score of a rubric reply (on its first line, or after "score"); None when there is none."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    found = re.search(r"\b([1-5])\b", first) or re.search(r"(?:score|rating)\D{0,12}\b([1-5])\b", text, re.I)
    return int(found.group(1)) if found else None


@dataclass
class _Job:
    """One verdict to reach: its cells and the prompts (one for a rubric, two orders for a pair)."""

    row: int
    sample: int
    turns: list[Any]  # the answers judged (one or two ``Turn``s)
    prompts: list[str]
    outputs: list[dict] = field(default_factory=list)


@dataclass
class JudgeRun:
    """A judge pass as it goes: generations done / total; at the end, the stored verdicts."""

    judging: str
    conversation_id: str
    judge: str
    mode: str
    total: int
    done: int = 0
    finished: bool = False
    verdicts: list[dict] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("judging", "conversation_id", "judge", "mode", "total", "done", "finished", "verdicts")
        }


class JudgeService:
    def __init__(self, chat: ChatService, rows: NotebookStore):
        self.chat, self.rows = chat, rows

    def judge(
        self, conversation_id: str, settings: JudgeSettings, cancel: threading.Event | None = None
    ) -> Iterator[JudgeRun]:
        """Judge a run's answers; yields progress, then the run with its stored verdicts."""
        if not settings.preset:
            raise PlaygroundError("pick a judge model first")
        preset = self.chat.preset(settings.preset)
        self.chat.available(preset)
        if settings.mode == "rubric" and not settings.rubric.strip():
            raise PlaygroundError("rubric judging needs a rubric: say what a good answer does")
        jobs, models = self._jobs(conversation_id, settings)
        if not jobs:
            raise PlaygroundError(
                "nothing to judge: pairwise judging needs two models with answers in the same row"
                if settings.mode == "pairwise"
                else "nothing to judge: the run has no answers"
            )
        params = self.chat.params_for(
            preset, {"do_sample": False, "max_new_tokens": settings.max_new_tokens, "seed": settings.seed}
        )
        run = JudgeRun(
            uuid.uuid4().hex, conversation_id, preset.name, settings.mode, sum(len(j.prompts) for j in jobs)
        )
        cancel = cancel or threading.Event()
        with self.chat.backends.open(preset) as model:
            slots = [(job, k) for job in jobs for k in range(len(job.prompts))]
            requests = []
            for job, k in slots:
                rendered = model.render([Message(role="user", content=job.prompts[k])], preset.system_prompt)
                requests.append(
                    GenerationRequest.build(
                        rendered.text, params, preset.stop, model.context_length, rendered.messages
                    )
                )
                job.outputs.append({"prompt": rendered.text, "params": requests[-1].params.model_dump()})
            yield run
            with closing(model.stream(requests, cancel)) as events:
                for event in events:
                    if event.done:
                        job, k = slots[event.index]
                        job.outputs[k] |= {
                            "output": event.text,
                            "finish_reason": event.finish_reason,
                            "error": event.error,
                        }
                        run.done += 1
                        yield run
            origin = model.origin
        finished = [j for j in jobs if all("output" in o and not o.get("error") for o in j.outputs)]
        stored = [self._verdict(run, job, models, preset, origin) for job in finished]
        ids = self.rows.record_verdicts(stored)
        run.verdicts = [verdict_json(v, i) for v, i in zip(stored, ids, strict=True)]
        run.finished = True
        yield run

    def _jobs(self, conversation_id: str, settings: JudgeSettings) -> tuple[list[_Job], list[str]]:
        conversation = self.chat.store.conversation(conversation_id)
        if conversation is None or conversation.mode != "notebook":
            raise PlaygroundError(f"there is no notebook run {conversation_id!r} to judge")
        answers: dict[tuple[int, int], dict[int, Any]] = {}
        for cell, turn in self.chat.store.notebook_cells(conversation_id):
            if turn.finish_reason != "error" and turn.output.strip():
                answers.setdefault((cell.row_index, cell.sample_index), {})[cell.model_index] = turn
        jobs = []
        for (row, sample), by_model in sorted(answers.items()):
            question = _question(next(iter(by_model.values())))
            if settings.mode == "rubric":
                for m in sorted(by_model):
                    prompt = fill_prompt(
                        RUBRIC, rubric=settings.rubric, question=question, answer=by_model[m].output
                    )
                    jobs.append(_Job(row, sample, [by_model[m]], [prompt]))
                continue
            for i, j in combinations(sorted(by_model), 2):
                a, b = by_model[i].output, by_model[j].output
                prompts = [fill_prompt(PAIRWISE, question=question, a=x, b=y) for x, y in ((a, b), (b, a))]
                jobs.append(_Job(row, sample, [by_model[i], by_model[j]], prompts))
        return jobs, list(conversation.models)

    def _verdict(self, run: JudgeRun, job: _Job, models: list[str], preset, origin) -> JudgeVerdict:
        first = job.turns[0]
        common = {
            "judging": run.judging,
            "conversation_id": run.conversation_id,
            "kind": run.mode,
            "row_index": job.row,
            "sample_index": job.sample,
            "model_a": models[first.column],
            "turn_a": first.id,
            "judge_preset": preset.name,
            "judge_model_id": preset.model.id,
            "judge_revision": origin.revision,
        }
        if run.mode == "rubric":
            output = job.outputs[0]
            output["score"] = parse_score(output["output"])
            return JudgeVerdict(
                **common, score=output["score"], rationale=output["output"].strip(), calls=job.outputs
            )
        second = job.turns[1]
        ab, ba = (parse_choice(o["output"]) for o in job.outputs)
        job.outputs[0]["choice"], job.outputs[1]["choice"] = ab, ba
        # order 1 shows model_a's answer as A; order 2 shows it as B
        winner_1 = {"A": "a", "B": "b"}.get(ab)
        winner_2 = {"A": "b", "B": "a"}.get(ba)
        outcome = winner_1 if winner_1 is not None and winner_1 == winner_2 else "tie"
        rationale = "\n".join(
            f"{label}: {o['output'].strip()}"
            for label, o in zip(("A = model_a", "A = model_b"), job.outputs, strict=True)
        )
        return JudgeVerdict(
            **common,
            model_b=models[second.column],
            turn_b=second.id,
            outcome=outcome,
            rationale=rationale,
            calls=job.outputs,
        )


def _question(turn) -> str:
    users = [m["content"] for m in turn.messages if m.get("role") == "user"]
    return users[-1] if users else ""


def verdict_json(verdict: JudgeVerdict, verdict_id: int | None = None) -> dict[str, Any]:
    return {
        "id": verdict_id if verdict_id is not None else verdict.id,
        "kind": verdict.kind,
        "row": verdict.row_index,
        "sample": verdict.sample_index,
        "model_a": verdict.model_a,
        "model_b": verdict.model_b,
        "turn_a": verdict.turn_a,
        "turn_b": verdict.turn_b,
        "outcome": verdict.outcome,
        "score": verdict.score,
        "rationale": verdict.rationale,
        "judge_preset": verdict.judge_preset,
        "judge_model_id": verdict.judge_model_id,
        "judge_revision": verdict.judge_revision,
        "calls": verdict.calls,
    }
