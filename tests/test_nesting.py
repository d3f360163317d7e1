"""parsers.nesting against a plain reference implementation (property tests) and on real traces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from conftest import CorpusIngest, store_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from traceview.parsers.flowbind import bind_points, pair_flows
from traceview.parsers.nesting import _track_order, nest


@dataclass
class Ref:
    """Reference results keyed by slice id."""

    depth: dict[int, int]
    parent: dict[int, int]
    overlaps: dict[int, bool]
    self_ns: dict[int, int]


def reference_nest(track: list[int], ts: list[int], dur: list[int], sid: list[int]) -> Ref:
    """Order by (track, ts asc, dur desc, slice_id asc); open = earlier slices on the track with end > start;
    depth = len(open); parent = the last of them; overlaps = end > parent end;
    parent.self -= min(end, parent end) - start."""
    order = sorted(range(len(ts)), key=lambda i: (track[i], ts[i], -dur[i], sid[i]))
    depth: dict[int, int] = {}
    parent: dict[int, int] = {}
    overlaps: dict[int, bool] = {}
    self_ns = {sid[i]: dur[i] for i in range(len(ts))}
    earlier: dict[int, list[int]] = {}
    for i in order:
        start, end = ts[i], ts[i] + dur[i]
        seen = earlier.setdefault(track[i], [])
        open_ = [j for j in seen if ts[j] + dur[j] > start]
        depth[sid[i]] = len(open_)
        parent[sid[i]] = sid[open_[-1]] if open_ else -1
        overlaps[sid[i]] = bool(open_) and end > ts[open_[-1]] + dur[open_[-1]]
        if open_:
            p = open_[-1]
            self_ns[sid[p]] -= min(end, ts[p] + dur[p]) - start
        seen.append(i)
    return Ref(depth, parent, overlaps, self_ns)


def fast_reference_nest(track: list[object], ts: list[int], dur: list[int], sid: list[int]) -> Ref:
    """The same definition for long non-negative-duration tracks: closed slices never reopen."""
    order = sorted(range(len(ts)), key=lambda i: (str(track[i]), ts[i], -dur[i], sid[i]))
    depth: dict[int, int] = {}
    parent: dict[int, int] = {}
    overlaps: dict[int, bool] = {}
    self_ns = {sid[i]: dur[i] for i in range(len(ts))}
    active: dict[object, list[int]] = {}
    for i in order:
        start, end = ts[i], ts[i] + dur[i]
        open_ = [j for j in active.get(track[i], []) if ts[j] + dur[j] > start]
        depth[sid[i]] = len(open_)
        parent[sid[i]] = sid[open_[-1]] if open_ else -1
        overlaps[sid[i]] = bool(open_) and end > ts[open_[-1]] + dur[open_[-1]]
        if open_:
            p = open_[-1]
            self_ns[sid[p]] -= min(end, ts[p] + dur[p]) - start
        active[track[i]] = open_ + [i]
    return Ref(depth, parent, overlaps, self_ns)


def run_nest(track: list[int], ts: list[int], dur: list[int], sid: list[int], workers: int = 1) -> Ref:
    """parsers.nesting.nest, re-keyed by slice id."""
    result = nest(
        np.array(track, dtype=np.int64),
        np.array(ts, dtype=np.int64),
        np.array(dur, dtype=np.int64),
        np.array(sid, dtype=np.int64),
        workers=workers,
    )
    return Ref(
        {s: int(d) for s, d in zip(sid, result.depth, strict=True)},
        {s: int(p) for s, p in zip(sid, result.parent, strict=True)},
        {s: bool(o) for s, o in zip(sid, result.overlaps, strict=True)},
        {s: int(v) for s, v in zip(sid, result.self_ns, strict=True)},
    )


@st.composite
def slices(
    draw: st.DrawFn, min_dur: int = 0, ascending_ids: bool = False
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Slices on a few tracks with many ties: equal starts, equal ends, zero durations, partial overlaps.

    Slice ids are a permutation, or ascending (file order, as the parsers give them) with `ascending_ids`.
    """
    n = draw(st.integers(min_value=0, max_value=40))
    base = draw(st.sampled_from([0, 1_712_195_495_519_689_047]))
    track = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    ts = [base + t for t in draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))]
    dur = draw(st.lists(st.integers(min_dur, 25), min_size=n, max_size=n))
    ids = list(range(0, 3 * n, 3))
    sid = ids if ascending_ids else draw(st.permutations(ids))
    return track, ts, dur, list(sid)


@settings(max_examples=300, deadline=None)
@given(slices())
def test_nest_matches_reference(case: tuple[list[int], list[int], list[int], list[int]]) -> None:
    """depth, parent, overlaps and self_ns equal the reference for any non-negative durations."""
    track, ts, dur, sid = case
    got = run_nest(track, ts, dur, sid)
    want = reference_nest(track, ts, dur, sid)
    assert got.depth == want.depth
    assert got.parent == want.parent
    assert got.overlaps == want.overlaps
    assert got.self_ns == want.self_ns


@settings(max_examples=300, deadline=None)
@given(slices(min_dur=-5, ascending_ids=True))
def test_nest_matches_reference_with_ids_in_file_order(case: tuple[list[int], list[int], list[int], list[int]]) -> None:
    """With ascending slice ids (the parsers' case, sorted by one combined key) nesting is the reference's too."""
    track, ts, dur, sid = case
    got = run_nest(track, ts, dur, sid)
    want = reference_nest(track, ts, [max(d, 0) for d in dur], sid)
    assert (got.depth, got.parent, got.overlaps) == (want.depth, want.parent, want.overlaps)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([-(2**63), -7, 0, 2**62, 2**63 - 1]),
                  st.one_of(st.integers(0, 5), st.integers(-(2**62), 2**62)), st.integers(-3, 4)),
        min_size=1, max_size=30,
    ),
    st.booleans(),
)
def test_track_order_is_a_lexsort(rows: list[tuple[int, int, int]], ascending_ids: bool) -> None:
    """The order nesting uses is a lexsort by track, start, longer first, slice id, for any spans of time."""
    track, ts, dur = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
    sid = np.arange(len(rows), dtype=np.int64) * 2
    if not ascending_ids:
        sid = sid[::-1].copy()
    want = np.lexsort((sid, -np.maximum(dur, 0), ts, track))
    assert _track_order(track, ts, dur, sid).tolist() == want.tolist()


@settings(max_examples=100, deadline=None)
@given(slices(ascending_ids=True), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 90)), max_size=20))
def test_flow_binding_with_nest_order(
    case: tuple[list[int], list[int], list[int], list[int]], points: list[tuple[int, int]]
) -> None:
    """Flow points bind to the same slices whether bind_points sorts the slices or reuses nest's order."""
    track, ts, dur, sid = (np.array(column, dtype=np.int64) for column in case)
    nested = nest(track, ts, dur, sid)
    point_track = np.array([p[0] for p in points], dtype=np.int64)
    point_ts = np.array([p[1] + int(ts.min(initial=0)) for p in points], dtype=np.int64)
    alone = bind_points(track, ts, dur, sid, nested.parent, point_track, point_ts)
    reused = bind_points(track, ts, dur, sid, nested.parent, point_track, point_ts, nested.order)
    assert reused.tolist() == alone.tolist()


@settings(max_examples=100, deadline=None)
@given(slices(min_dur=-5))
def test_nest_on_threads_is_nest(case: tuple[list[int], list[int], list[int], list[int]]) -> None:
    """Nesting the tracks on several threads gives what one thread gives."""
    assert run_nest(*case, workers=3) == run_nest(*case)


@settings(max_examples=100, deadline=None)
@given(slices())
def test_fast_reference_is_the_reference(case: tuple[list[int], list[int], list[int], list[int]]) -> None:
    """The pruning reference used on real traces is the plain reference (non-negative durations)."""
    assert fast_reference_nest(*case) == reference_nest(*case)


@settings(max_examples=100, deadline=None)
@given(slices(min_dur=-5))
def test_nest_with_negative_durations(case: tuple[list[int], list[int], list[int], list[int]]) -> None:
    """Negative durations are kept as written by the parser and nest as zero-length slices.

    Nesting follows the reference on the clamped durations; a slice's own self time starts from
    its duration as written.
    """
    track, ts, dur, sid = case
    got = run_nest(track, ts, dur, sid)
    clamped = [max(d, 0) for d in dur]
    want = reference_nest(track, ts, clamped, sid)
    assert got.depth == want.depth
    assert got.parent == want.parent
    assert got.overlaps == want.overlaps
    assert got.self_ns == {s: want.self_ns[s] + d - c for s, d, c in zip(sid, dur, clamped, strict=True)}


def test_nest_negative_duration_example() -> None:
    """The smallest case: one slice with dur -1 alone on its track is at depth 0."""
    got = run_nest([0], [5], [-1], [0])
    assert got.depth == {0: 0}


def test_nest_hand_example() -> None:
    """A parent with two children, one spilling past the parent's end, and a zero-length marker."""
    #  0: [0, 100)   1: [10, 30)   2: [30, 30)   3: [90, 120)   4: [95, 97)
    got = run_nest([7] * 5, [0, 10, 30, 90, 95], [100, 20, 0, 30, 2], [0, 1, 2, 3, 4])
    assert got.depth == {0: 0, 1: 1, 2: 1, 3: 1, 4: 2}
    assert got.parent == {0: -1, 1: 0, 2: 0, 3: 0, 4: 3}
    assert got.overlaps == {0: False, 1: False, 2: False, 3: True, 4: False}
    assert got.self_ns == {0: 100 - 20 - 0 - 10, 1: 20, 2: 0, 3: 28, 4: 2}


NESTED_TRACES = [
    "nano-vllm/decode_gpu_0.json",
    "hta/critical_path/alexnet/benchmark_result_2869224_1695835535_trace.json.gz",
    "tracelens/b200/eager_trace.json.gz",
]


@pytest.mark.parametrize("rel", NESTED_TRACES)
def test_store_nesting_matches_reference(rel: str, corpus_ingests: dict[str, CorpusIngest]) -> None:
    """depth/parent_id/overlaps/self_ns in the store equal the reference on real traces (per pid, tid)."""
    rows = store_rows(corpus_ingests[rel].store, "slices",
                      "slice_id, pid, tid, ts_ns, dur_ns, depth, coalesce(parent_id, -1), overlaps_parent, self_ns")
    sid = [r[0] for r in rows]
    want = fast_reference_nest([(r[1], r[2]) for r in rows], [r[3] for r in rows], [r[4] for r in rows], sid)
    assert {r[0]: r[5] for r in rows} == want.depth
    assert {r[0]: r[6] for r in rows} == want.parent
    assert {r[0]: r[7] for r in rows} == want.overlaps
    assert {r[0]: r[8] for r in rows} == want.self_ns
    assert any(r[5] > 0 for r in rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), max_size=60))
def test_pair_flows_matches_a_plain_reading(points: list[tuple[int, bool]]) -> None:
    """Each step/end gets the first start of its key in file order; starts no other point shares stay alone."""
    key = np.array([k for k, _ in points], dtype=np.int64)
    is_start = np.array([s for _, s in points], dtype=bool)
    ends, source, lone = pair_flows(key, is_start)
    expected_ends = [i for i, (_, s) in enumerate(points) if not s]
    first_start = {}
    for i, (k, s) in enumerate(points):
        if s:
            first_start.setdefault(k, i)
    end_keys = {k for k, s in points if not s}
    assert ends.tolist() == expected_ends
    assert source.tolist() == [first_start.get(points[i][0], -1) for i in expected_ends]
    assert lone.tolist() == [i for i, (k, s) in enumerate(points) if s and k not in end_keys]
