"""A vLLM-like scheduler: turns batches of prompts into steps of prefill and decode tokens."""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Workload


@dataclass(frozen=True)
class Slot:
    """One request's share of a step."""

    request: int  # global request id
    new_tokens: int
    context_before: int  # tokens already in the KV cache
    is_context: bool  # vLLM "context request": no output token yet (prefill or a prefill chunk)
    samples: bool  # produces an output token in this step (needs logits)

    @property
    def context_after(self) -> int:
        """KV-cache length of the request once this step has run."""
        return self.context_before + self.new_tokens


@dataclass(frozen=True)
class StepPlan:
    """The requests and tokens of one engine step."""

    index: int  # 0-based position in the run
    batch: int  # which workload batch it serves
    slots: tuple[Slot, ...]
    frees_batch: bool  # the batch's KV cache is released after this step

    @property
    def phase(self) -> str:
        """`prefill`, `decode` or `mixed` (both kinds of request in one step)."""
        ctx = any(s.is_context for s in self.slots)
        gen = any(not s.is_context for s in self.slots)
        return "mixed" if ctx and gen else ("prefill" if ctx else "decode")

    @property
    def tokens(self) -> int:
        """Tokens computed in the step (query rows)."""
        return sum(s.new_tokens for s in self.slots)

    def annotation(self) -> str:
        """vLLM's `execute_context_{Rc}({Tc})_generation_{Rg}({Tg})` step label."""
        ctx = [s for s in self.slots if s.is_context]
        gen = [s for s in self.slots if not s.is_context]
        tc = sum(s.new_tokens for s in ctx)
        tg = sum(s.new_tokens for s in gen)
        return f"execute_context_{len(ctx)}({tc})_generation_{len(gen)}({tg})"


def plan_steps(workload: Workload) -> list[StepPlan]:
    """Schedule every batch: prefill (chunked or whole prompts), then the decode steps."""
    steps: list[StepPlan] = []
    first_id = 0
    for b, prompts in enumerate(workload.batches):
        ids = range(first_id, first_id + len(prompts))
        first_id += len(prompts)
        steps.extend(_plan_batch(b, list(ids), list(prompts), workload, len(steps)))
    return steps


def _plan_batch(batch: int, ids: list[int], prompts: list[int], wl: Workload, start: int) -> list[StepPlan]:
    done = [0] * len(ids)  # prompt tokens prefilled
    outputs = [0] * len(ids)  # tokens generated
    plans: list[StepPlan] = []
    budget = wl.chunk_size if wl.chunk_size else max(max(prompts), 8192)
    decode_left = wl.decode_steps
    while True:
        prefilling = any(d < p for d, p in zip(done, prompts, strict=True))
        if not prefilling and decode_left == 0:
            break
        slots: list[Slot] = []
        left = budget
        chunked = wl.chunk_size is not None
        if chunked or not prefilling:
            for i, rid in enumerate(ids):
                if done[i] == prompts[i]:
                    slots.append(Slot(rid, 1, done[i] + outputs[i] - 1, False, True))
                    left -= 1
        for i, rid in enumerate(ids):
            remaining = prompts[i] - done[i]
            if remaining == 0 or left <= 0:
                continue
            take = min(remaining, left) if chunked else remaining
            if not chunked and take > left and slots:
                break
            finishes = take == remaining
            slots.append(Slot(rid, take, done[i], True, finishes))
            left -= take
        for s in slots:
            i = ids.index(s.request)
            if s.is_context:
                done[i] += s.new_tokens
            if s.samples:
                outputs[i] += 1
        if not prefilling:
            decode_left -= 1
        plans.append(StepPlan(start + len(plans), batch, tuple(slots), False))
    if plans:
        last = plans[-1]
        plans[-1] = StepPlan(last.index, last.batch, last.slots, True)
    return plans
