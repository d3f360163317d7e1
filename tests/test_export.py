"""`traceview export`: several ranks on one time axis as a Chrome trace; read back, it gives the window's slices."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import KINETO_CORPUS, require_corpus, store_rows, write_kineto, x_event
from typer.testing import CliRunner

from traceview.analysis.export import format_ranks, parse_ranks, parse_window
from traceview.cli import app
from traceview.errors import UserError
from traceview.reports.chrome_trace import micros
from traceview.store import ingest

runner = CliRunner()
HTA_RANKS = [KINETO_CORPUS / "hta" / "trace_filter" / f"sampled_rank-{rank}.json.gz" for rank in (0, 1)]
BASE_NS = 1_700_000_000_000_000_000
SKEW_US = Decimal("5000.250")  # rank 1's clock runs this far ahead of rank 0's
UNSAFE_NAME = "void gemm<float>(</script><!--\u202eevil\u2028)"
Track = tuple[str, str]


def invoke(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def rank_events(rank: int) -> list[dict[str, Any]]:
    """Two steps of one rank: ops, a launch with its kernel and ac2g flow, NCCL kernels, a counter, a thread name."""
    skew = SKEW_US if rank else Decimal(0)

    def at(us: str) -> str:
        return str(Decimal(us) + skew)

    comm = [("1100.000", "30.000"), ("1700.000", "12.345")] if rank == 0 else [("1105.100", "25.333"), ("1690.5", "9")]
    return [
        {"ph": "M", "name": "thread_name", "pid": 10, "tid": 10, "args": {"name": "python main"}},
        x_event("ProfilerStep#1", at("1000.001"), "500.002", cat="user_annotation", pid=10, tid=10),
        x_event("ProfilerStep#2", at("1500.500"), "400.000", cat="user_annotation", pid=10, tid=10),
        x_event("aten::mm", at("1010.123"), "50.456", pid=10, tid=10),
        x_event("cudaLaunchKernel", at("1020.007"), "5.001", cat="cuda_runtime", pid=10, tid=10,
                args={"correlation": 11}),
        {"ph": "s", "id": 11, "pid": 10, "tid": 10, "ts": Decimal(at("1020.007")), "cat": "ac2g", "name": "ac2g"},
        x_event(UNSAFE_NAME, at("1030.009"), "20.011", cat="kernel", pid=0, tid=7,
                args={"device": 0, "stream": 7, "correlation": 11}),
        {"ph": "f", "id": 11, "pid": 0, "tid": 7, "ts": Decimal(at("1030.009")), "cat": "ac2g", "name": "ac2g",
         "bp": "e"},
        *(x_event("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)", at(ts), dur,
                  cat="kernel", pid=0, tid=20, args={"device": 0, "stream": 20}) for ts, dur in comm),
        x_event("aten::add", at("1600.999"), "0.001", pid=10, tid=12),
        {"ph": "C", "name": "GPU util", "pid": 0, "tid": 0, "ts": Decimal(at("1200.250")), "args": {"util": 42.5}},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two ranks, ns-exact times, rank 1's clock 5000.250 µs ahead."""
    root = tmp_path_factory.mktemp("synth")
    paths = [
        write_kineto(
            root / f"rank{rank}.json",
            rank_events(rank),
            header={"distributedInfo": {"rank": rank, "world_size": 2}, "baseTimeNanoseconds": BASE_NS},
        )
        for rank in (0, 1)
    ]
    return ingest(paths, root / "synth.traceview").store


@pytest.fixture(scope="module")
def hta_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_corpus()
    return ingest(HTA_RANKS, tmp_path_factory.mktemp("hta") / "hta.traceview").store


def read_export(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def reingest(path: Path) -> Path:
    return ingest([path], path.parent / (path.name.split(".")[0] + ".back.traceview")).store


def original_tracks(store: Path, lo: int, hi: int, offsets: dict[int, int] | None = None) -> dict[int, list[list]]:
    """rank -> its tracks' slices overlapping [lo, hi) on the aligned axis, each track a sorted list."""
    rows = store_rows(store, "slices", "rank, pid, tid, name, ts_ns, dur_ns, kind")
    tracks: dict[tuple[int, str, str], list] = defaultdict(list)
    for rank, pid, tid, name, ts, dur, kind in rows:
        ts += (offsets or {}).get(rank, 0)
        if ts < hi and ts + max(dur, 1) > lo:
            tracks[(rank, pid, tid)].append((name, ts, dur, kind))
    return _by_rank(tracks)


def exported_tracks(store: Path) -> dict[int, list[list]]:
    """The same, read back from an export's store: the rank from the process name."""
    names = {pid: value for _, pid, _, key, value in store_rows(store, "metadata", "kind, pid, tid, key, value")
             if key == "process_name"}  # fmt: skip
    tracks: dict[tuple[int, str, str], list] = defaultdict(list)
    for pid, tid, name, ts, dur, kind in store_rows(store, "slices", "pid, tid, name, ts_ns, dur_ns, kind"):
        rank = int(re.fullmatch(r"rank (\d+) (host|device \d+)", names[pid]).group(1))
        tracks[(rank, pid, tid)].append((name, ts, dur, kind))
    return _by_rank(tracks)


def _by_rank(tracks: dict[tuple[int, str, str], list]) -> dict[int, list[list]]:
    ranks: dict[int, list[list]] = defaultdict(list)
    for (rank, _, _), slices in tracks.items():
        ranks[rank].append(sorted(slices))
    return {rank: sorted(found) for rank, found in ranks.items()}


def window_of(doc: dict[str, Any]) -> tuple[int, int]:
    window = doc["traceviewExport"]["window"]
    return window["start_ns"], window["end_ns"]


# ---------------------------------------------------------------------------------------------
# Round trips.


def test_a_step_of_two_real_ranks_reads_back_exactly(hta_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "step.json"
    result = invoke("export", hta_store, "--step", 551, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == "4745 slices, 0 flows, 0 counter samples of ranks 0-1 (step 551)\n"
    lo, hi = window_of(read_export(out))
    expected = original_tracks(hta_store, lo, hi)
    assert sum(len(track) for tracks in expected.values() for track in tracks) == 4745
    assert exported_tracks(reingest(out)) == expected


def test_ns_times_flows_and_counters_read_back_exactly(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.json.gz"
    result = invoke("export", synth_store, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    doc = read_export(out)
    lo, hi = window_of(doc)
    back = reingest(out)
    assert exported_tracks(back) == original_tracks(synth_store, lo, hi)
    flows = store_rows(back, "flows", "kind, src_slice_id IS NOT NULL, dst_slice_id IS NOT NULL")
    assert sorted(flows) == [("ac2g", True, True)] * 2
    counters = store_rows(back, "counters", "ts_ns, name, series, value")
    assert sorted(counters) == [(BASE_NS + 1_200_250, "GPU util", "util", 42.5),
                                (BASE_NS + 6_200_500, "GPU util", "util", 42.5)]  # fmt: skip


def test_times_are_microseconds_with_three_decimals(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    assert invoke("export", synth_store, "-o", out).exit_code == 0
    text = out.read_text()
    times = re.findall(r'"(?:ts|dur)":(-?[0-9.eE+]+)', text)
    assert times and all(re.fullmatch(r"[0-9]+\.[0-9]{3}", t) for t in times)
    assert '"dur":0.001' in text  # aten::add, 1 ns
    assert read_export(out)["baseTimeNanoseconds"] == BASE_NS + 1_000_001  # the earliest slice


@pytest.mark.parametrize(
    ("ns", "text"),
    [(0, b"0.000"), (1, b"0.001"), (1_234_567, b"1234.567"), (-1, b"-0.001"), (-1_000, b"-1.000"),
     ((1 << 63) - 1, b"9223372036854775.807")],
)  # fmt: skip
def test_micros_is_exact(ns: int, text: bytes) -> None:
    assert orjson.dumps(micros(ns)) == text


def test_one_process_per_rank_and_side(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    assert invoke("export", synth_store, "-o", out).exit_code == 0
    events = read_export(out)["traceEvents"]
    processes = [e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    assert processes == ["rank 0 host", "rank 0 device 0", "rank 1 host", "rank 1 device 0"]
    threads = sorted({e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"})
    assert threads == ["python main", "stream 20", "stream 7", "thread 12"]
    assert len({e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}) == 8


def test_trace_text_cannot_break_out(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    assert invoke("export", synth_store, "-o", out).exit_code == 0
    raw = out.read_bytes()
    assert b"<" not in raw and b">" not in raw and "\u202e".encode() not in raw and "\u2028".encode() not in raw
    names = {e.get("name") for e in read_export(out)["traceEvents"]}
    assert UNSAFE_NAME in names


def test_dash_writes_the_trace_to_stdout_only(synth_store: Path) -> None:
    result = invoke("export", synth_store, "--ranks", "1", "-o", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["traceviewExport"]["ranks"] == [1]
    assert result.stderr == ""


def test_step_and_window_choose_the_slices(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    assert invoke("export", synth_store, "--ranks", "0", "--window", "0.6ms:601us", "-o", out).exit_code == 0
    doc = read_export(out)
    assert window_of(doc) == (BASE_NS + 1_000_001 + 600_000, BASE_NS + 1_000_001 + 601_000)
    assert sorted(e["name"] for e in doc["traceEvents"] if e["ph"] == "X") == ["ProfilerStep#2", "aten::add"]
    assert invoke("export", synth_store, "--step", 2, "-o", out).exit_code == 0
    doc = read_export(out)
    # step 2 on both clocks: from rank 0's start to rank 1's end
    assert window_of(doc) == (BASE_NS + 1_500_500, BASE_NS + 1_900_500 + 5_000_250 + 1)


# ---------------------------------------------------------------------------------------------
# Alignment.


def first_allreduce_ends(doc: dict[str, Any]) -> dict[str, Decimal]:
    """Process name -> end (µs) of its first NCCL kernel in the export."""
    names = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "process_name"}
    ends: dict[str, Decimal] = {}
    for e in sorted((e for e in doc["traceEvents"] if e["ph"] == "X"), key=lambda e: e["ts"]):
        if e["name"].startswith("ncclDevKernel"):
            ends.setdefault(names[e["pid"]], Decimal(str(e["ts"])) + Decimal(str(e["dur"])))
    return ends


def test_align_collective_ends_the_first_common_collective_together(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "aligned.json"
    result = invoke("export", synth_store, "--align", "collective", "-o", out)
    assert result.exit_code == 0, result.output
    offset = 1_130_000 - (1_105_100 + 5_000_250 + 25_333)
    assert result.stdout.endswith(f"; shifted rank 1 {offset / 1e3:+.3f} us\n")
    doc = json.loads(out.read_text(), parse_float=Decimal)
    assert doc["traceviewExport"]["offsets_ns"] == {"0": 0, "1": offset}
    ends = first_allreduce_ends(doc)
    assert ends["rank 0 device 0"] == ends["rank 1 device 0"]
    lo, hi = window_of(doc)
    assert exported_tracks(reingest(out)) == original_tracks(synth_store, lo, hi, {1: offset})


def test_align_collective_falls_back_to_comm_kernels(synth_store: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.traceview"
    shutil.copytree(synth_store, old)
    shutil.rmtree(old / "collectives")  # a store written before the collectives table
    out = tmp_path / "aligned.json"
    assert invoke("export", old, "--align", "collective", "-o", out).exit_code == 0
    assert read_export(out)["traceviewExport"]["offsets_ns"] == {"0": 0, "1": 1_130_000 - 6_130_683}


def test_align_collective_needs_a_common_collective(tmp_path: Path) -> None:
    header = {"distributedInfo": {"rank": 1, "world_size": 2}}
    no_comm = [e for e in rank_events(1) if not str(e.get("name", "")).startswith("nccl")]
    paths = [write_kineto(tmp_path / "r0.json", rank_events(0)), write_kineto(tmp_path / "r1.json", no_comm, header)]
    store = ingest(paths, tmp_path / "s.traceview").store
    result = invoke("export", store, "--align", "collective", "-o", tmp_path / "x.json")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: --align collective: no collective common to ranks 0-1"
        " (no communication recorded on every one of them)\n",
    )
    assert not (tmp_path / "x.json").exists()


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "5:3"], "--window 5:3: START must be before END"),
        (["--window", "5"], "--window 5: expected START:END, such as 10ms:25ms"),
        (["--window", "1h:2h"], "--window 1h:2h: expected times such as 12.5ms, 800us, 2s or 40ns, found '1h'"),
        (["--step", "7"], "--step 7: no step 7 on ranks 0-1 (steps 1-2)"),
        (["--ranks", "0,5-6"], "--ranks: not in the target: ranks 5-6 (it has ranks 0-1)"),
        (["--ranks", "1-0"], "--ranks 1-0: the range 1-0 is empty (write it low to high)"),
        (["--ranks", "a"], "--ranks a: expected rank numbers and ranges such as 0,2-3"),
        (["--step", "1", "--window", "0:1"], "--step and --window choose the same thing: give one of them"),
        (["--align", "ptp"], "--align must be one of clock, collective (got 'ptp')"),
    ],
)
def test_bad_choices_are_one_line_errors(synth_store: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("export", synth_store, *args, "-o", tmp_path / "x.json")
    assert (result.exit_code, result.stderr) == (2, f"Error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_an_input_is_never_the_output(synth_store: Path, tmp_path: Path) -> None:
    trace = write_kineto(tmp_path / "rank0.json", rank_events(0))
    before = trace.read_bytes()
    result = invoke("export", trace, "-o", trace, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 2
    never = "inputs are never written, choose another output"
    assert result.stderr == f"Error: {trace}: is the input {trace}; {never}\n"
    assert trace.read_bytes() == before
    inside = synth_store / "x.json"
    result = invoke("export", synth_store, "-o", inside)
    assert result.stderr == f"Error: {inside}: lies inside the input {synth_store}; {never}\n"
    assert not inside.exists()


def test_an_empty_window_is_a_valid_trace_and_a_warning(synth_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty.json"
    result = invoke("export", synth_store, "--window", "1000s:2000s", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Warning: nothing in the window (1000000-2000000 ms from the start) on ranks 0-1\nChrome trace: {out}\n"
    )
    assert read_export(out)["traceEvents"] == []


def test_two_traces_of_one_rank_are_refused(tmp_path: Path) -> None:
    paths = [write_kineto(tmp_path / f"run{i}.json", rank_events(0)[1:3]) for i in (1, 2)]
    store = ingest(paths, tmp_path / "two.traceview").store
    ids = ", ".join(sorted(row[0] for row in store_rows(store, "traces", "trace_id")))
    result = invoke("export", store, "-o", tmp_path / "x.json")
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: rank 0 is recorded by 2 traces ({ids}): export needs one trace per rank;"
        " choose ranks with --ranks or give the runs separately\n"
    )


def test_rank_and_window_syntax() -> None:
    assert parse_ranks("0,2-3") == [0, 2, 3]
    assert parse_ranks(" 3 , 1-2,2") == [1, 2, 3]
    assert format_ranks([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert parse_window("1.5:2") == (1_500_000, 2_000_000)
    assert parse_window("40ns:1.000000001s") == (40, 1_000_000_001)
    with pytest.raises(UserError, match="too long"):
        parse_ranks("0-2000000000")


def test_ingest_warnings_of_the_exported_ranks_reach_the_user(tmp_path: Path) -> None:
    """A rank dump without its timeline: `export` says so (as analyze and cluster do), for the ranks it exports."""
    samples = Path(__file__).resolve().parents[1] / "sample_traces" / "cluster_ascend"
    dumps = sorted(samples.glob("rank*_ascend_pt"))
    for dump in dumps:
        shutil.copytree(dump, tmp_path / dump.name)
    (tmp_path / dumps[1].name / "ASCEND_PROFILER_OUTPUT" / "trace_view.json.gz").unlink()
    store = ingest([tmp_path / d.name for d in dumps], tmp_path / "s.traceview").store
    warning = "Warning: rank 1: partial dump: trace_view.json not found"
    for ranks, shown in (("1", True), ("0,2", False)):
        result = runner.invoke(app, ["export", str(store), "--ranks", ranks, "-o", str(tmp_path / f"x{ranks}.json")])
        assert result.exit_code == 0, result.output
        assert (warning in result.stderr.splitlines()) is shown, result.stderr
