"""Every Ascend dump of the shared corpus ingests, and the store says what the files say.

Each top-level folder of `../shared/corpus/ascend/` is ingested once (as a directory walk) into
its own store; the checks compare the store with independent readings of the files
(`ascend_support`: csv + Decimal, sqlite3).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from ascend_support import (
    ASCEND,
    STEP_BREAKDOWN_SQL,
    query,
    read_db,
    read_kernel_csv,
    snapshot,
    sqlite_ro,
    us_to_ns,
)

from traceview import parsers
from traceview.parsers.ascend import FORMATS
from traceview.store import ingest

FOLDERS = sorted(p.name for p in ASCEND.iterdir() if p.is_dir()) if ASCEND.is_dir() else []
KERNEL_CSVS = sorted(
    p.relative_to(ASCEND).as_posix()
    for p in ASCEND.rglob("*.csv")
    if p.name == "kernel_details.csv" or p.name.startswith("op_summary")
)
DATABASES = sorted(
    p.relative_to(ASCEND).as_posix()
    for p in ASCEND.rglob("*.db")
    if p.name.startswith(("ascend_pytorch_profiler", "msprof_"))
)
# (dump, why its step_trace_time.csv cannot be recomputed from its own device tasks)
NOT_RECOMPUTABLE = {
    "torch_npu_cann83_level2/rank_1_ascend_pt": "partial dump: no kernel_details.csv, trace_view.json or database",
    "msinsight_server/test_rank_0": "a 21-row fragment of kernel_details.csv, not the whole step",
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each corpus folder ingested into its own store; the corpus is checked untouched after."""
    assert ASCEND.is_dir(), f"corpus not found at {ASCEND}"
    before = snapshot(ASCEND)
    root = tmp_path_factory.mktemp("ascend_stores")
    out = {name: ingest([ASCEND / name], root / f"{name}.traceview").store for name in FOLDERS}
    assert snapshot(ASCEND) == before, "ingest wrote into the corpus"
    return out


def _store_of(rel: str, stores: dict[str, Path]) -> Path:
    return stores[rel.split("/", 1)[0]]


def _trace_id(store: Path, path: Path) -> str:
    """The trace whose source (a unit directory or file) holds `path`: the longest such source."""
    rows = query(store, "SELECT trace_id, source_path FROM traces")
    owners = [(len(src), tid) for tid, src in rows if path == Path(src) or Path(src) in path.parents]
    assert owners, f"no trace in {store} covers {path}"
    return max(owners)[1]


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_ascend_unit_of_the_folder_ingests(folder: str, stores: dict[str, Path]) -> None:
    units = [p for p, fmt in parsers.trace_files(ASCEND / folder) if fmt in FORMATS]
    assert units, f"no Ascend unit detected under {folder}"
    sources = {Path(src) for (src,) in query(stores[folder], "SELECT source_path FROM traces")}
    assert set(units) <= sources


def test_detection_claims_units_not_their_files() -> None:
    found = dict(parsers.trace_files(ASCEND / "torch_npu_2025_text" / "level2"))
    unit = ASCEND / "torch_npu_2025_text" / "level2" / "rank0_ascend_pt"
    assert found == {unit: "ascend_pt"}, "trace_view.json inside a torch_npu dump must not be listed on its own"
    single = ASCEND / "msprof_analyze" / "ut" / "advisor" / "timeline_advice" / "trace_view.json"
    assert parsers.trace_files(single) == [(single, "ascend_timeline")]
    tiny = ASCEND / "msinsight_server" / "fuzz" / "trace_view_tiny.json"
    assert parsers.trace_files(tiny) == [(tiny, "ascend_timeline")], "detected by content, not by name"


def _assert_kernel_and_comm_slices(store: Path, tid: str, count: int, total_ns: int, comm_names: list[str]) -> None:
    """The trace's NPU kernel slices have the expected count and total ns; its comm slices the expected names."""
    kernels = query(
        store,
        f"SELECT count(*), coalesce(sum(dur_ns), 0) FROM slices"
        f" WHERE trace_id = '{tid}' AND kind = 'kernel' AND device_type = 'npu'",
    )[0]
    assert kernels == (count, total_ns)
    comm = [n for (n,) in query(store, f"SELECT name FROM slices WHERE trace_id = '{tid}' AND kind = 'comm'")]
    assert sorted(comm) == comm_names


@pytest.mark.parametrize("rel", KERNEL_CSVS)
def test_kernel_rows_are_the_kernel_slices(rel: str, stores: dict[str, Path]) -> None:
    path = ASCEND / rel
    expected = read_kernel_csv(path)
    store = _store_of(rel, stores)
    tid = _trace_id(store, path)
    _assert_kernel_and_comm_slices(store, tid, expected.compute_count, expected.compute_ns, expected.comm_names)
    metrics = query(
        store, f"SELECT count(*), count(DISTINCT slice_id) FROM npu_kernel_metrics WHERE trace_id = '{tid}'"
    )
    assert metrics[0] == (expected.rows, expected.rows)
    orphans = query(
        store,
        f"SELECT count(*) FROM npu_kernel_metrics m WHERE trace_id = '{tid}' AND NOT EXISTS"
        f" (SELECT 1 FROM slices s WHERE s.trace_id = m.trace_id AND s.slice_id = m.slice_id)",
    )
    assert orphans == [(0,)]


@pytest.mark.parametrize("rel", DATABASES)
def test_database_kernels_are_the_kernel_slices(rel: str, stores: dict[str, Path]) -> None:
    path = ASCEND / rel
    expected = read_db(path)
    store = _store_of(rel, stores)
    tid = _trace_id(store, path)
    _assert_kernel_and_comm_slices(store, tid, expected.compute_count, expected.compute_ns, expected.comm_names)
    rows = query(store, f"SELECT count(*) FROM npu_kernel_metrics WHERE trace_id = '{tid}'")[0][0]
    assert rows == expected.cti_rows + len(expected.comm_names)


def _pairs() -> list[tuple[str, str]]:
    pairs = []
    for db_dump in sorted((ASCEND / "torch_npu_2025_db").glob("level*/rank*_ascend_pt")):
        rel = db_dump.relative_to(ASCEND / "torch_npu_2025_db").as_posix()
        if (ASCEND / "torch_npu_2025_text" / rel).is_dir():
            pairs.append(("torch_npu_2025_text/" + rel, "torch_npu_2025_db/" + rel))
    return pairs


@pytest.mark.parametrize(("text", "db"), _pairs())
def test_text_and_db_exports_agree(text: str, db: str, stores: dict[str, Path]) -> None:
    """Separate runs of one workload: same kernels per op type, device time within 1%."""

    def summary(rel: str) -> tuple[dict, int]:
        store = _store_of(rel, stores)
        tid = _trace_id(store, ASCEND / rel)
        per_type = query(
            store,
            f"SELECT m.op_type, count(*) FROM npu_kernel_metrics m JOIN slices s USING (trace_id, slice_id)"
            f" WHERE m.trace_id = '{tid}' AND s.kind = 'kernel' GROUP BY 1",
        )
        total = query(store, f"SELECT sum(dur_ns) FROM slices WHERE trace_id = '{tid}' AND kind = 'kernel'")[0][0]
        return dict(per_type), int(total)

    text_types, text_ns = summary(text)
    db_types, db_ns = summary(db)
    assert text_types == db_types
    assert abs(db_ns - text_ns) <= 0.01 * text_ns


def _dumps_with_steps() -> list[str]:
    found = []
    for steps_csv in sorted(ASCEND.rglob("step_trace_time.csv")):
        found.append(steps_csv.parent.parent.relative_to(ASCEND).as_posix())
    for db in sorted(ASCEND.rglob("analysis.db")):
        dump = db.parent.parent.relative_to(ASCEND).as_posix()
        if dump not in found:
            found.append(dump)
    return found


@pytest.mark.parametrize("dump", _dumps_with_steps())
def test_step_breakdown_recomputed_from_device_tasks(dump: str, stores: dict[str, Path]) -> None:
    """Computing, Communication(Not Overlapped) and Free of step_trace_time.csv (analysis.db for
    database exports), recomputed by SQL from the device slices, within 1%."""
    store = _store_of(dump, stores)
    tid = _trace_id(store, ASCEND / dump)
    written = query(
        store,
        f"SELECT step, computing_ns, communication_not_overlapped_ns, free_ns FROM steps WHERE trace_id = '{tid}'",
    )
    assert written, "the profiler's step breakdown was not ingested"
    recomputed = {
        step: (c, n, f)
        for _, step, c, n, f in query(store, f"SELECT * FROM ({STEP_BREAKDOWN_SQL}) WHERE trace_id = '{tid}'")
    }
    if dump in NOT_RECOMPUTABLE:
        devices = query(store, f"SELECT count(*) FROM slices WHERE trace_id = '{tid}' AND kind = 'kernel'")[0][0]
        assert devices < 100, NOT_RECOMPUTABLE[dump]
        return
    for step, *values in written:
        assert step in recomputed, f"no device tasks in step {step}"
        for want, got in zip(values, recomputed[step], strict=True):
            assert abs(got - want) <= 0.01 * want, (step, want, got)


def test_cluster_dump_becomes_one_store_with_a_rank_column(tmp_path: Path) -> None:
    cluster = ASCEND / "torch_npu_2025_text" / "level1"
    store = ingest([cluster], tmp_path / "cluster.traceview").store
    assert query(store, "SELECT rank, format FROM traces ORDER BY rank") == [(0, "ascend_pt"), (1, "ascend_pt")]
    assert query(store, "SELECT DISTINCT rank FROM slices WHERE kind = 'kernel' ORDER BY 1") == [(0,), (1,)]
    per_rank = query(store, "SELECT rank, count(*) FROM npu_kernel_metrics GROUP BY 1 ORDER BY 1")
    assert per_rank == [(0, 191), (1, 191)]


def test_exact_times_units_and_links(stores: dict[str, Path]) -> None:
    store = stores["torch_npu_2025_text"]
    dump = ASCEND / "torch_npu_2025_text" / "level2" / "rank0_ascend_pt"
    tid = _trace_id(store, dump)
    # `1736412474730135.222<TAB>` in kernel_details.csv: exact ns, beyond a double's precision.
    first = query(store, f"SELECT name, ts_ns, dur_ns, stream, core FROM slices WHERE trace_id = '{tid}'"
                         " AND kind = 'kernel' ORDER BY ts_ns LIMIT 1")
    assert first == [("trans_TransData_0", 1736412474730135222, 55161, 2, "AI_VECTOR_CORE")]
    shapes = query(store, f"SELECT input_shapes, block_dim, aiv_ns FROM npu_kernel_metrics WHERE trace_id = '{tid}'"
                          " AND name = 'trans_TransData_0'")
    assert shapes == [("32,3,224,224", 32, 50078)]
    # memory_record.csv: `APP,1736412474607990.240<TAB>,,2109.6015625,,,NPU:0` (MB) -> bytes.
    app = query(store, f"SELECT ts_ns, total_reserved, device_id FROM memory WHERE trace_id = '{tid}'"
                       " AND pid = 'APP' ORDER BY ts_ns LIMIT 1")
    assert app == [(1736412474607990240, 2109_6015625 * 1048576 // 10_000_000, 0)]
    # Timeline counters: NPU MEM in KB, HBM in MB/s -> bytes, bytes/s.
    series = dict(query(store, f"SELECT name, any_value(series) FROM counters WHERE trace_id = '{tid}'"
                               " AND name IN ('APP/HBM', 'HBM 0/Read') GROUP BY 1"))
    assert series == {"APP/HBM": "bytes", "HBM 0/Read": "bytes/s"}
    hbm = query(
        store, f"SELECT value FROM counters WHERE trace_id = '{tid}' AND name = 'APP/HBM' ORDER BY ts_ns LIMIT 1"
    )
    assert hbm == [(2160232.0 * 1024,)]
    # Launches link to device tasks: every kernel's connection id is a CANN launch's.
    unlinked = query(
        store,
        f"SELECT count(*) FROM slices k WHERE k.trace_id = '{tid}' AND k.kind = 'kernel' AND NOT EXISTS"
        f" (SELECT 1 FROM slices r WHERE r.trace_id = k.trace_id AND r.kind = 'runtime'"
        f" AND r.correlation = k.correlation)",
    )
    assert unlinked == [(0,)]
    flows = dict(query(store, f"SELECT kind, count(dst_slice_id) FROM flows WHERE trace_id = '{tid}' GROUP BY 1"))
    assert flows["HostToDevice"] > 0 and flows["async_npu"] > 0
    framework = query(
        store,
        f"SELECT count(*) FROM slices k JOIN slices o ON o.trace_id = k.trace_id AND o.slice_id = k.external_id"
        f" WHERE k.trace_id = '{tid}' AND k.kind = 'kernel' AND o.kind = 'cpu_op'",
    )
    assert framework[0][0] > 100, "kernels link to their framework op through external_id"
    steps = query(store, f"SELECT DISTINCT step FROM slices WHERE trace_id = '{tid}' AND kind = 'kernel'")
    assert steps == [(50,)]


def test_pipe_utilization_metrics_are_typed_columns(stores: dict[str, Path]) -> None:
    """The default PMU set's per-pipe times and ratios are columns (ns, exact), in both exports."""
    path = ASCEND / "torch_npu_2025_text/level2/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/kernel_details.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    store = _store_of("torch_npu_2025_text", stores)
    tid = _trace_id(store, path)
    got = query(
        store,
        f"SELECT sum(aic_mac_ns), sum(aiv_mte3_ns), count(aic_fixpipe_ratio), max(metrics) FROM npu_kernel_metrics"
        f" WHERE trace_id = '{tid}'",
    )
    def total(column: str) -> int:
        return sum(us_to_ns(r[column]) for r in rows if r[column] != "N/A")

    expected = total("aic_mac_time(us)"), total("aiv_mte3_time(us)")
    ratios = sum(r["aic_fixpipe_ratio"] != "N/A" for r in rows)
    assert got == [(*expected, ratios, "{}")], "no column of this file is left for the metrics JSON"
    db = ASCEND / "torch_npu_2025_db/level2/rank0_ascend_pt/ASCEND_PROFILER_OUTPUT/ascend_pytorch_profiler_0.db"
    with sqlite_ro(db) as con:
        pmu = con.execute(
            "SELECT count(*), sum(p.value) FROM TASK_PMU_INFO p JOIN STRING_IDS s ON s.id = p.name"
            " WHERE s.value = 'aic_mac_time'"
        ).fetchone()
    store = _store_of("torch_npu_2025_db", stores)
    tid = _trace_id(store, db)
    count, total = query(
        store, f"SELECT count(aic_mac_ns), sum(aic_mac_ns) FROM npu_kernel_metrics WHERE trace_id = '{tid}'"
    )[0]
    assert count == pmu[0] and abs(total - pmu[1]) <= count  # ns floats in the database, rounded each
