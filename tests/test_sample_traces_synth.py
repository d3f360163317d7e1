"""The synthesiser (sample_traces/synth): determinism, format fidelity against the real corpus,
and truth.json consistency with the events written.

Reference files (read in place, never copied):
- Kineto: `kineto/nano-vllm/decode_gpu_0.json` (modern Kineto text layout, cpu_op shapes,
  `[memory]`, runtime/kernel/memcpy args) plus `kineto/hta/nccl_parser_config/nccl_data.json.gz`
  and `kineto/hta/triton_example/triton_example.json.gz` for `user_annotation` /
  `gpu_user_annotation` events, which the nano-vllm trace lacks.
- Ascend: the Jan-2025 torch_npu Level1 text export
  `ascend/torch_npu_2025_text/level1/rank0_ascend_pt` (CANN 8.0 era), which the fixture follows.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import re
import sys
import zlib
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sample_traces.synth import PRESETS, RunSpec, Stall, Workload, generate  # noqa: E402
from sample_traces.synth.cli import main  # noqa: E402
from sample_traces.synth.samples import MANIFEST, regenerate, sample_specs  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
SAMPLES = ROOT / "sample_traces"
NANO = CORPUS / "kineto/nano-vllm/decode_gpu_0.json"
KINETO_EXTRA = [
    CORPUS / "kineto/hta/nccl_parser_config/nccl_data.json.gz",
    CORPUS / "kineto/hta/triton_example/triton_example.json.gz",
]
ASCEND_REF = CORPUS / "ascend/torch_npu_2025_text/level1/rank0_ascend_pt"
ASCEND_CSVS = [
    "kernel_details.csv",
    "memory_record.csv",
    "operator_memory.csv",
    "step_trace_time.csv",
    "op_statistic.csv",
]

needs_corpus = pytest.mark.skipif(not NANO.is_file(), reason="shared corpus not present")


# -- helpers ------------------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _load(path: Path) -> Any:
    return json.loads(_read(path))


@functools.cache
def _sample(rel: str) -> Any:
    """A committed sample file, parsed once per session (callers must not modify it)."""
    return _load(SAMPLES / rel)


def _ns(value: Any) -> int:
    """Exact integer ns of a µs value written with three decimals (number or string)."""
    return int(Decimal(str(value)) * 1000)


def _kind(ev: dict[str, Any]) -> tuple[str, str]:
    """Event class: (ph, cat), with the name for metadata and instant events."""
    ph = ev.get("ph", "")
    if ph in ("M", "i"):
        return ph, ev.get("name", "")
    return ph, ev.get("cat", "")


def _jtype(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


@functools.cache
def _corpus_kineto_shapes() -> dict[tuple[str, str], dict[str, Any]]:
    """Per event class: the key orders, arg-key sets and value types seen in the reference files."""
    shapes: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"keys": set(), "args": set(), "types": defaultdict(set)}
    )
    for path in [NANO, *KINETO_EXTRA]:
        for ev in _load(path)["traceEvents"]:
            s = shapes[_kind(ev)]
            s["keys"].add(tuple(ev))
            s["args"].add(tuple(sorted(ev.get("args", {}))))
            for k, v in ev.items():
                s["types"][k].add(_jtype(v))
            for k, v in ev.get("args", {}).items():
                s["types"]["args." + k].add(_jtype(v))
    return dict(shapes)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    regenerate(out)
    return out


@pytest.fixture(scope="module")
def h200_trace() -> dict[str, Any]:
    return _sample("longctx_h200/longctx_h200.pt.trace.json.gz")


def _truth(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name / "truth.json").read_text(encoding="utf-8"))


# -- determinism ----------------------------------------------------------------------------------------


def test_regenerating_gives_identical_files(regenerated: Path) -> None:
    manifest = json.loads((SAMPLES / MANIFEST).read_text(encoding="utf-8"))
    same_zlib = manifest["zlib_version"] == zlib.ZLIB_RUNTIME_VERSION
    committed = {
        p.relative_to(SAMPLES).as_posix() for name in sample_specs() for p in (SAMPLES / name).rglob("*") if p.is_file()
    }
    fresh = {p.relative_to(regenerated).as_posix() for p in regenerated.rglob("*") if p.is_file()}
    assert committed | {MANIFEST} == fresh
    for rel in sorted(committed):
        old, new = (SAMPLES / rel).read_bytes(), (regenerated / rel).read_bytes()
        if rel.endswith(".gz") and not same_zlib:  # another zlib may compress differently
            old, new = gzip.decompress(old), gzip.decompress(new)
        assert old == new, rel
    assert json.loads((regenerated / MANIFEST).read_text())["samples"].keys() == manifest["samples"].keys()


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    wl = Workload(batches=((512, 1024),), decode_steps=2, chunk_size=1024)
    spec = RunSpec(name="t", workload=wl, seed=5, formats=("kineto", "ascend"))
    a = generate(spec, tmp_path / "a", compress=True)
    b = generate(spec, tmp_path / "b", compress=True)
    c = generate(RunSpec(name="t", workload=wl, seed=6, formats=("kineto", "ascend")), tmp_path / "c", compress=True)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]
    assert all(p.read_bytes()[4:8] == b"\0\0\0\0" for p in a if p.suffix == ".gz")  # gzip mtime 0


def test_samples_are_small() -> None:
    total = sum(p.stat().st_size for name in sample_specs() for p in (SAMPLES / name).rglob("*") if p.is_file())
    assert total < 10_000_000


# -- Kineto fidelity --------------------------------------------------------------------------------------


@needs_corpus
def test_kineto_top_level_keys_match_nano_vllm(h200_trace: dict[str, Any]) -> None:
    ref = list(_load(NANO))
    ours = list(h200_trace)
    # the synthetic runs have no Python stacks, so PyTorch writes no `with_stack` flag
    assert ours == [k for k in ref if k != "with_stack"]
    ref_obj = _load(NANO)
    for key in ours:
        if key != "traceEvents":
            assert _jtype(h200_trace[key]) == _jtype(ref_obj[key]), key
    assert list(h200_trace["deviceProperties"][0]) == list(ref_obj["deviceProperties"][0])
    assert list(h200_trace["distributedInfo"]) == list(ref_obj["distributedInfo"])


@needs_corpus
@pytest.mark.parametrize("sample", ["longctx_h200", "runtime_v1", "runtime_v2"])
def test_kineto_events_have_corpus_keys_and_types(sample: str) -> None:
    shapes = _corpus_kineto_shapes()
    trace = _sample(f"{sample}/{sample}.pt.trace.json.gz")
    seen = set()
    for ev in trace["traceEvents"]:
        kind = _kind(ev)
        assert kind in shapes, kind
        ref = shapes[kind]
        assert tuple(ev) in ref["keys"], (kind, list(ev))
        assert tuple(sorted(ev.get("args", {}))) in ref["args"], (kind, sorted(ev.get("args", {})))
        for k, v in ev.items():
            assert _jtype(v) in ref["types"][k], (kind, k)
        for k, v in ev.get("args", {}).items():
            assert _jtype(v) in ref["types"]["args." + k], (kind, k)
        seen.add(kind)
    expected = {
        ("X", "cpu_op"),
        ("X", "user_annotation"),
        ("X", "cuda_runtime"),
        ("X", "kernel"),
        ("X", "gpu_memcpy"),
        ("s", "ac2g"),
        ("f", "ac2g"),
        ("i", "[memory]"),
        ("M", "process_name"),
        ("M", "thread_name"),
        ("X", "Trace"),
        ("X", "gpu_user_annotation"),
    }
    assert expected <= seen


@needs_corpus
def test_kineto_text_layout_matches_kineto(h200_trace: dict[str, Any]) -> None:
    text = _read(SAMPLES / "longctx_h200/longctx_h200.pt.trace.json.gz").decode()
    ref = NANO.read_text()
    # same header layout line by line up to the events (values differ)
    head = [re.sub(r": .*", "", line) for line in text[: text.index('"traceEvents"')].splitlines()]
    ref_head = [re.sub(r": .*", "", line) for line in ref[: ref.index('"traceEvents"')].splitlines()]
    assert head == [line for line in ref_head if "with_stack" not in line]
    # every ts/dur literal is relative µs with exactly three decimals, as modern Kineto writes
    for m in re.finditer(r'"(ts|dur)": ([^,\n}]+)', text):
        assert re.fullmatch(r"\d+\.\d{3}", m.group(2)), m.group(0)
    assert text.endswith('\n  ],\n  "traceName": "longctx_h200.pt.trace.json"\n}')
    # the first cpu_op block reads like nano-vllm's (same line structure)
    ours = text[text.index('    "ph": "X", "cat": "cpu_op"') :].split("\n  }")[0].splitlines()
    theirs = ref[ref.index('    "ph": "X", "cat": "cpu_op"') :].split("\n  }")[0].splitlines()
    assert [re.sub(r'"[^"]*"|[\d.\-]+', "", x)[:12] for x in ours] == [
        re.sub(r'"[^"]*"|[\d.\-]+', "", x)[:12] for x in theirs
    ]


def test_kineto_step_annotations_and_attention_shapes(h200_trace: dict[str, Any]) -> None:
    truth = _truth("longctx_h200")
    base = h200_trace["baseTimeNanoseconds"]
    ev = h200_trace["traceEvents"]
    ann = {e["name"]: e for e in ev if e.get("cat") == "user_annotation"}
    gpu_ann = [e["name"] for e in ev if e.get("cat") == "gpu_user_annotation"]
    pattern = re.compile(r"execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)")
    attn = [e for e in ev if e.get("cat") == "cpu_op" and e["name"] == "_vllm_fa2_C::varlen_fwd"]
    layers = truth["spec"]["model"]["layers"]
    assert len(attn) == layers * len(truth["steps"])
    for i, step in enumerate(truth["steps"]):
        ps = ann[step["profiler_step"]]
        assert base + _ns(ps["ts"]) == step["start_ns"]
        assert _ns(ps["dur"]) == step["dur_ns"]
        m = pattern.fullmatch(step["annotation"])
        assert m and step["annotation"] in ann and step["annotation"] in gpu_ann
        assert [int(g) for g in m.groups()] == [
            step["num_context_requests"],
            step["context_tokens"],
            step["num_generation_requests"],
            step["generation_tokens"],
        ]
        op = attn[i * layers]
        assert op["args"]["Input Dims"][0][0] == step["tokens"]
        assert int(op["args"]["Concrete Inputs"][11]) == step["max_context_len"]  # max_seqlen_k
        assert op["args"]["Input Dims"][8] == [len(step["requests"]), -(-step["max_context_len"] // 16)]


# -- truth consistency (Kineto) ---------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["longctx_h200", "runtime_v1", "runtime_v2"])
def test_kineto_family_totals_equal_kernel_durations(sample: str) -> None:
    truth = _truth(sample)
    trace = _sample(f"{sample}/{sample}.pt.trace.json.gz")
    family_of = {n: fam for fam, v in truth["kernel_families"].items() for n in v["names"]}
    totals: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for e in trace["traceEvents"]:
        if e.get("cat") in ("kernel", "gpu_memcpy"):
            totals[family_of[e["name"]]] += _ns(e["dur"])
            counts[family_of[e["name"]]] += 1
    assert {f: v["total_ns"] for f, v in truth["kernel_families"].items()} == dict(totals)
    assert {f: v["count"] for f, v in truth["kernel_families"].items()} == dict(counts)


def test_kineto_steps_decode_bandwidth_and_stall(h200_trace: dict[str, Any]) -> None:
    truth = _truth("longctx_h200")
    base = h200_trace["baseTimeNanoseconds"]
    kernels = sorted(
        (base + _ns(e["ts"]), _ns(e["dur"])) for e in h200_trace["traceEvents"] if e.get("cat") == "kernel"
    )
    for step in truth["steps"]:
        inside = [d for t, d in kernels if step["start_ns"] <= t < step["start_ns"] + step["dur_ns"]]
        assert len(inside) == step["kernel_count"]
        assert sum(inside) == step["device_busy_ns"]
        kv = sum(r["context_len"] for r in step["requests"]) * truth["model"]["kv_bytes_per_token"]
        assert step["kv_tokens"] * truth["model"]["kv_bytes_per_token"] == kv
    decode = {s["step"]: s for s in truth["steps"] if s["phase"] == "decode"}
    assert [b["step"] for b in truth["decode_bandwidth"]] == sorted(decode)
    for b in truth["decode_bandwidth"]:
        assert b["device_ns"] == decode[b["step"]]["device_busy_ns"]
        assert b["bytes_per_s"] == pytest.approx(b["bytes"] / b["device_ns"] * 1e9)
        assert b["bytes_per_s"] < b["peak_bytes_per_s"]
    # each injected stall is a host gap; the device gap it leaves is the one truth.json states
    host = [(base + _ns(e["ts"]), _ns(e["dur"])) for e in h200_trace["traceEvents"] if e.get("cat") == "cpu_op"]
    tasks = sorted(
        (base + _ns(e["ts"]), _ns(e["dur"]))
        for e in h200_trace["traceEvents"]
        if e.get("cat") in ("kernel", "gpu_memcpy")
    )
    assert len(truth["stalls"]) == 2
    for stall in truth["stalls"]:
        ts, dur = stall["ts_ns"], stall["dur_ns"]
        assert not any(t < ts + dur and t + d > ts for t, d in host)
        gaps = [
            (a[0] + a[1], b[0] - (a[0] + a[1]))
            for a, b in zip(tasks, tasks[1:], strict=False)
            if ts <= b[0] <= ts + 2 * dur
        ]
        assert max(gaps, key=lambda g: g[1]) == (stall["device_gap_start_ns"], stall["device_gap_ns"])
    inside, before = truth["stalls"]
    assert 0 < inside["device_gap_ns"] < inside["dur_ns"] < before["dur_ns"] < before["device_gap_ns"]


def test_kineto_memory_events_show_kv_growth(h200_trace: dict[str, Any]) -> None:
    truth = _truth("longctx_h200")
    base_ns = h200_trace["baseTimeNanoseconds"]
    mem = [e for e in h200_trace["traceEvents"] if e.get("name") == "[memory]"]
    first = mem[0]["args"]
    floor = first["Total Allocated"] - first["Bytes"]
    for step in truth["steps"]:
        end = step["start_ns"] + step["dur_ns"]
        before = [e for e in mem if base_ns + _ns(e["ts"]) <= end - 1]
        allocated = before[-1]["args"]["Total Allocated"] - floor
        nxt = truth["steps"].index(step) + 1
        last_of_batch = nxt == len(truth["steps"]) or truth["steps"][nxt]["batch"] != step["batch"]
        assert allocated == (0 if last_of_batch else step["kv_cache_bytes"])
    peak = max(e["args"]["Total Allocated"] for e in mem) - floor
    assert peak >= max(s["kv_cache_bytes"] for s in truth["steps"])


def test_pair_has_the_known_changes() -> None:
    v1, v2 = _truth("runtime_v1"), _truth("runtime_v2")
    assert v2["variant"] == {
        "label": "v2",
        "family_scale": {"attention": 1.3},
        "extra_kernel": "qk_norm",
        "launch_overhead_scale": 1.4,
    }
    new = set(v2["kernel_families"]["norm"]["names"]) - set(v1["kernel_families"]["norm"]["names"])
    assert len(new) == 1
    ratio = v2["kernel_families"]["attention"]["total_ns"] / v1["kernel_families"]["attention"]["total_ns"]
    assert 1.2 < ratio < 1.4
    gemm = v2["kernel_families"]["gemm"]["total_ns"] / v1["kernel_families"]["gemm"]["total_ns"]
    assert 0.97 < gemm < 1.03 and gemm != 1.0  # noise only
    assert v1["seed"] != v2["seed"]


# -- Ascend fidelity ------------------------------------------------------------------------------------------


def _ascend_out(sample: str = "longctx_910b") -> Path:
    return SAMPLES / sample / f"{sample}_ascend_pt"


def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_read(path).decode(), newline="")))


@needs_corpus
@pytest.mark.parametrize("name", ASCEND_CSVS)
def test_ascend_csv_header_and_line_ends_match_corpus(name: str) -> None:
    ours = _read(_ascend_out() / "ASCEND_PROFILER_OUTPUT" / f"{name}.gz")
    ref = (ASCEND_REF / "ASCEND_PROFILER_OUTPUT" / name).read_bytes()
    ref_header = ref.split(b"\n", 1)[0] + b"\n"
    assert ours.split(b"\n", 1)[0] + b"\n" == ref_header  # same bytes, CRLF or LF included
    crlf = ref_header.endswith(b"\r\n")
    lines = ours.split(b"\n")[:-1]
    assert all(line.endswith(b"\r") == crlf for line in lines)
    rows = _csv_rows(_ascend_out() / "ASCEND_PROFILER_OUTPUT" / f"{name}.gz")
    assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows)
    ref_rows = list(csv.reader(io.StringIO(ref.decode(), newline="")))
    for col, head in enumerate(rows[0]):
        if "Time(us)" in head and "Total" not in head and name != "op_statistic.csv" or head == "Timestamp(us)":
            ref_tab = {r[col].endswith("\t") for r in ref_rows[1:] if r[col]}
            assert {r[col].endswith("\t") for r in rows[1:] if r[col]} <= ref_tab, head


@needs_corpus
def test_ascend_kernel_details_cells_follow_corpus_quirks() -> None:
    rows = _csv_rows(_ascend_out() / "ASCEND_PROFILER_OUTPUT/kernel_details.csv.gz")
    head = rows[0]
    col = {h: i for i, h in enumerate(head)}
    cores = {r[col["Accelerator Core"]] for r in rows[1:]}
    assert cores == {"AI_CORE", "AI_VECTOR_CORE", "MIX_AIC"}
    for r in rows[1:]:
        assert r[col["Start Time(us)"]].endswith("\t")
        assert re.fullmatch(r"\d{16}\.\d{3}\t", r[col["Start Time(us)"]])
        assert r[col["Input Shapes"]].startswith('"') and r[col["Input Shapes"]].endswith('"')
        assert r[col["Model ID"]] == "4294967295"
        assert r[col["Context ID"]] == ("0" if r[col["Accelerator Core"]].startswith("MIX") else "N/A")
    raw = _read(_ascend_out() / "ASCEND_PROFILER_OUTPUT/kernel_details.csv.gz").decode()
    assert ',"""' in raw  # shapes written as a quoted field holding quotes, as torch_npu does


@needs_corpus
def test_ascend_trace_view_events_match_corpus_shapes() -> None:
    ref = _load(ASCEND_REF / "ASCEND_PROFILER_OUTPUT/trace_view.json")
    ours = _sample("longctx_910b/longctx_910b_ascend_pt/ASCEND_PROFILER_OUTPUT/trace_view.json.gz")
    assert isinstance(ours, list)

    Shapes = dict[tuple[str, str, str], set[tuple[tuple[str, ...], tuple[str, ...]]]]

    def classes(events: list[dict[str, Any]]) -> Shapes:
        names = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "process_name"}
        out: Shapes = defaultdict(set)
        for e in events:
            key = (
                names.get(e.get("pid"), "?"),
                e.get("ph", ""),
                e.get("cat", e.get("name", "")) if e.get("ph") == "M" else e.get("cat", ""),
            )
            out[key].add((tuple(e), tuple(e.get("args", {}))))
        return out

    ref_c, our_c = classes(ref), classes(ours)
    for key, shapes in our_c.items():
        assert key in ref_c, key
        for keys, args in shapes:
            assert keys in {k for k, _ in ref_c[key]}, (key, keys)
            assert set(args) <= {a for _, aa in ref_c[key] for a in aa}, (key, args)
    for e in ours:
        if "ts" in e:
            assert isinstance(e["ts"], str) and re.fullmatch(r"\d{16}\.\d{3}", e["ts"])


@needs_corpus
def test_ascend_profiler_info_has_corpus_keys() -> None:
    def shape(x: Any) -> Any:
        return {k: shape(v) for k, v in x.items()} if isinstance(x, dict) else _jtype(x)

    ref = json.loads((ASCEND_REF / "profiler_info_0.json").read_text())
    ours = _load(_ascend_out() / "profiler_info_0.json.gz")
    assert shape(ours) == shape(ref)


# -- truth consistency (Ascend) ---------------------------------------------------------------------------------


def test_ascend_family_totals_equal_task_durations() -> None:
    truth = _truth("longctx_910b")
    fams = truth["kernel_families"]
    family_of = {n: fam for fam, v in fams.items() for n in v["names"]}
    rows = _csv_rows(_ascend_out() / "ASCEND_PROFILER_OUTPUT/kernel_details.csv.gz")
    col = {h: i for i, h in enumerate(rows[0])}
    totals: dict[str, int] = defaultdict(int)
    for r in rows[1:]:
        totals[family_of[r[col["Name"]]]] += _ns(r[col["Duration(us)"]])
    view = _sample("longctx_910b/longctx_910b_ascend_pt/ASCEND_PROFILER_OUTPUT/trace_view.json.gz")
    hw_pid = next(e["pid"] for e in view if e.get("name") == "process_name" and e["args"]["name"] == "Ascend Hardware")
    tasks: dict[str, int] = defaultdict(int)
    for e in view:
        if e.get("pid") == hw_pid and e.get("ph") == "X":
            tasks[family_of[e["name"]]] += round(e["dur"] * 1000)
    assert {f: v["total_ns"] for f, v in fams.items() if f != "copy"} == dict(totals)
    assert {f: v["total_ns"] for f, v in fams.items()} == dict(tasks)
    steps = _csv_rows(_ascend_out() / "ASCEND_PROFILER_OUTPUT/step_trace_time.csv.gz")[1:]
    assert [int(r[0]) for r in steps] == [s["step"] for s in truth["steps"]]
    for r, s in zip(steps, truth["steps"], strict=True):
        assert float(r[6]) * 1000 == pytest.approx(s["dur_ns"], abs=1)  # Stage
        assert float(r[1]) * 1000 == pytest.approx(s["device_busy_ns"], abs=1)  # Computing (one stream)
    assert truth["steps"][0]["annotation"] is None  # this sample has no vLLM step labels


def test_ascend_operator_memory_records_kv_allocations() -> None:
    truth = _truth("longctx_910b")
    rows = _csv_rows(_ascend_out() / "ASCEND_PROFILER_OUTPUT/operator_memory.csv.gz")
    kv = [r for r in rows[1:] if r[0] == "aten::empty"]
    assert len(kv) == len(truth["steps"])
    for r, s in zip(kv, truth["steps"], strict=True):
        assert float(r[1]) * 1024 == s["tokens"] * truth["model"]["kv_bytes_per_token"]


# -- CLI ---------------------------------------------------------------------------------------------------


def test_cli_generate_and_presets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    presets = json.loads(capsys.readouterr().out)
    assert presets["h200"]["peak_flops"] == PRESETS["h200"].peak_flops == 989e12
    assert presets["910b"]["hbm_bandwidth"] == 1.6e12
    args = [
        "generate",
        "--name",
        "cli",
        "--device",
        "910b",
        "--prompts",
        "512,256",
        "--prompts",
        "1024",
        "--decode-steps",
        "2",
        "--no-chunking",
        "--layers",
        "2",
        "--stall",
        "2:500",
        "--format",
        "kineto,ascend",
        "--family-scale",
        "gemm=1.5",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert [s["phase"] for s in truth["steps"]] == ["prefill", "decode", "decode", "prefill", "decode", "decode"]
    assert truth["stalls"][0]["dur_ns"] == 500_000 and truth["variant"]["family_scale"] == {"gemm": 1.5}
    assert (tmp_path / "cli.pt.trace.json").is_file()
    assert (tmp_path / "cli_ascend_pt/ASCEND_PROFILER_OUTPUT/kernel_details.csv").is_file()
    # the recorded spec regenerates the same files
    again = tmp_path / "again"
    assert main(["generate", "--spec", str(tmp_path / "truth.json"), "--out", str(again)]) == 0
    assert (again / "cli.pt.trace.json").read_bytes() == (tmp_path / "cli.pt.trace.json").read_bytes()
    assert main(["generate", "--format", "perfetto", "--out", str(tmp_path / "bad")]) == 1
    assert "unknown format" in capsys.readouterr().err


def test_stall_and_spec_round_trip() -> None:
    spec = RunSpec(name="x", stalls=(Stall(3, 100),), formats=("kineto",))
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    for spec in sample_specs().values():
        assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
