#!/usr/bin/env python3
"""Cross-check: traceview's Ascend communication tables against msprof-analyze's cluster analysis.

For each Ascend dump of the corpus (``../shared/corpus/ascend``) this script

1. copies the dump to a temporary folder (msprof-analyze writes into its input folder unless given
   ``-o``, and checks the owner and permissions of what it reads: it never runs on the corpus);
2. ingests the copy with ``traceview.store.ingest`` and reads ``comm_links`` and ``collectives``;
3. runs ``msprof-analyze cluster -d COPY -m all -o OUT`` on it. msprof-analyze takes a dump with an
   ``analysis.db`` (or ``ascend_pytorch_profiler_N.db``) as a db dump (``cluster_analysis.db``:
   ``ClusterCommunicationMatrix``, ``ClusterCommunicationTime``), else as a text dump
   (``cluster_communication_matrix.json``, ``cluster_communication.json``);
4. compares, within ``--tolerance`` (default 1%):

   * per link (step, group, op type, global src and dst rank, transport): bandwidth, bytes and
     transit time of the ``{type}-total`` entries;
   * per op (step, rank, op name, group): transit, wait, synchronisation and idle time.

   Equal within 1 ns / 1 byte counts as equal (traceview keeps whole ns and bytes). Where traceview
   has group-local ranks only (the dump records no rank list for the group), the check maps them as
   msprof-analyze does: a rank's link from local rank l to itself says that l is that rank.

It exits 1 on a value outside the tolerance or a link or op msprof-analyze has and traceview lacks;
links only traceview has (msprof-analyze drops links whose far end is not in the dump) are counted,
not failed. It also compares traceview's per-op times on ``msinsight_server/test_rank_0`` with the
committed msprof-analyze output ``msinsight_server/cluster_analysis_output`` (rank 0 of that
16-rank cluster is the one dump of it in the corpus; its links are not compared: that 2023
communication_matrix.json is keyed per op, with no ``-total`` entries). The other committed output,
``msprof_analyze/resource/advisor/cluster_analysis_output``, has no dump in the corpus (its groups and ops
appear in no other file) and is not compared.

msprof-analyze comes with the ``bench`` extra (``pip install -e .[bench]``) or any other install:
``--msprof-analyze PATH`` or the environment variable ``MSPROF_ANALYZE`` names the executable, else
it is looked up on PATH.

Usage::

    python benchmarks/cross_check_msprof.py
    python benchmarks/cross_check_msprof.py --dump cann83-json --json benchmarks/output/msprof.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from traceview.engine import connect
from traceview.store import ingest

ASCEND = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ascend"
TOLERANCE = 0.01
# one msprof-analyze run on a 2-rank corpus dump takes ~30 s on 2 busy cores
MSPROF_TIMEOUT_S = 600
COMM_JSON = ("communication.json", "communication_matrix.json")
TEXT_BANDWIDTH_ROUNDING = 0.5e-4 + 1e-12
TOTAL_OP = "Total Op Info"  # msprof-analyze's sum over a group's ops, not an op


@dataclass(frozen=True)
class Dump:
    """A corpus dump, and the files left out of its copy (to pick what each tool reads)."""

    name: str
    path: str
    drop: tuple[str, ...] = ()
    note: str = ""


DUMPS = [
    Dump("text-level1", "torch_npu_2025_text/level1", note="2 ranks, no rank list"),
    Dump("text-level2", "torch_npu_2025_text/level2", note="rank 0 only"),
    Dump("cann83", "torch_npu_cann83_level2", note="tv reads the json, msprof analysis.db"),
    Dump("cann83-json", "torch_npu_cann83_level2", drop=("analysis.db",), note="both read the json"),
    Dump("cann83-db", "torch_npu_cann83_level2", drop=COMM_JSON, note="both read analysis.db"),
    Dump("db-level0", "torch_npu_2025_db/level0"),
    Dump("db-level1", "torch_npu_2025_db/level1"),
    Dump("db-level2", "torch_npu_2025_db/level2", note="rank 0 only"),
]
COMMITTED = ("msinsight_server/test_rank_0", "msinsight_server/cluster_analysis_output")

LinkKey = tuple[int, str, str, int, int, str]  # step, group, op type, src, dst, transport
OpKey = tuple[int, int, str, str]  # step, rank, op name, group
LINK_FIELDS = ("bandwidth_gbps", "bytes", "transit_ns")
OP_FIELDS = ("transit_ns", "wait_ns", "sync_ns", "idle_ns")


@dataclass
class Outcome:
    """What one comparison found."""

    name: str
    mode: str = ""
    links: int = 0
    link_max_diff: float = 0.0
    ops: int = 0
    op_max_diff: float = 0.0
    only_traceview: int = 0
    only_msprof: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.only_msprof)


def find_msprof_analyze(explicit: str | None = None) -> str | None:
    """The msprof-analyze executable: the argument, $MSPROF_ANALYZE, or the one on PATH."""
    name = explicit or os.environ.get("MSPROF_ANALYZE") or "msprof-analyze"
    return shutil.which(name)


def relative_diff(a: float, b: float, floor: float = 0.0) -> float:
    """|a - b| over the larger magnitude; 0 when they differ by no more than `floor`."""
    if abs(a - b) <= floor:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def _step(text: object) -> int:
    match = re.search(r"\d+", str(text))
    return int(match.group()) if match else -1


def _ms_ns(value: object) -> int:
    return round(float(value) * 1_000_000)  # type: ignore[arg-type]


def copy_dump(source: Path, target: Path, drop: Iterable[str] = ()) -> Path:
    """A writable copy of a dump without the files named in `drop`."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*drop))
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target


def tree_digests(root: Path) -> dict[str, str]:
    """Each file under root (relative path) -> sha256 of its bytes, to see what a tool changed in its input."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def run_msprof(exe: str, dump: Path, out: Path) -> Path:
    """Run msprof-analyze's cluster analysis of `dump` into `out`; the cluster_analysis_output folder."""
    command = [exe, "cluster", "-d", str(dump), "-m", "all", "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=MSPROF_TIMEOUT_S, cwd=out.parent)
    result = out / "cluster_analysis_output"
    if done.returncode != 0 or not result.is_dir():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-10:])
        raise RuntimeError(f"msprof-analyze failed on {dump} (exit {done.returncode}):\n{tail}")
    return result


# --- traceview's side -----------------------------------------------------------------------------------------


def traceview_tables(dump: Path, store: Path) -> tuple[dict[LinkKey, dict], dict[OpKey, dict], int]:
    """traceview's links (global ranks, local ones mapped by self links where needed), op time splits, and the
    number of links whose ranks stay unknown."""
    result = ingest([dump], store)
    with connect(result.store) as con:
        links = con.sql(
            'SELECT step, "group", op_type, rank, src_rank, dst_rank, src_local_rank, dst_local_rank, transport,'
            " bytes, transit_ns, bandwidth_gbps FROM comm_links"
        ).fetchall()
        ops = con.sql(
            'SELECT step, rank, name, "group", transit_ns, wait_ns, sync_ns, idle_ns FROM collectives'
            " WHERE wait_ns IS NOT NULL OR transit_ns IS NOT NULL"
        ).fetchall()
    local_to_global = {(r[1], r[6]): r[3] for r in links if r[6] == r[7]}
    by_link: dict[LinkKey, dict] = {}
    unmapped = 0
    for step, grp, op_type, rank, src, dst, src_local, dst_local, transport, size, transit, bandwidth in links:
        src = src if src is not None else local_to_global.get((grp, src_local))
        dst = dst if dst is not None else local_to_global.get((grp, dst_local))
        if src is None or dst is None:
            unmapped += 1
            continue
        key = (step, grp, op_type, src, dst, transport)
        if key in by_link:
            raise RuntimeError(f"traceview has link {key} twice (ranks {by_link[key]['rank']} and {rank})")
        by_link[key] = {"rank": rank, "bytes": size, "transit_ns": transit, "bandwidth_gbps": bandwidth}
    by_op = {
        (step, rank, name, grp): dict(zip(OP_FIELDS, values, strict=True)) for step, rank, name, grp, *values in ops
    }
    return by_link, by_op, unmapped


# --- msprof-analyze's side ------------------------------------------------------------------------------------


def msprof_tables(output: Path) -> tuple[str, dict[LinkKey, dict], dict[OpKey, dict]]:
    """msprof-analyze's `-total` links and per-op time splits from its db or text output."""
    db = output / "cluster_analysis.db"
    if db.is_file():
        return "db", *_msprof_db(db)
    matrix, times = output / "cluster_communication_matrix.json", output / "cluster_communication.json"
    links = _text_links(json.loads(matrix.read_text())) if matrix.is_file() else {}
    ops = text_ops(json.loads(times.read_text())) if times.is_file() else {}
    return "text", links, ops


def _msprof_db(db: Path) -> tuple[dict[LinkKey, dict], dict[OpKey, dict]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        links: dict[LinkKey, dict] = {}
        if "ClusterCommunicationMatrix" in tables:
            for step, kind, grp, src, dst, transport, size, transit, bandwidth in con.execute(
                "SELECT step, hccl_op_name, group_name, src_rank, dst_rank, transport_type, transit_size,"
                " transit_time, bandwidth FROM ClusterCommunicationMatrix WHERE hccl_op_name LIKE '%-total'"
            ):
                key = (_step(step), str(grp), kind.removesuffix("-total"), int(src), int(dst), transport)
                links[key] = _link_values(size, transit, bandwidth)
        ops: dict[OpKey, dict] = {}
        if "ClusterCommunicationTime" in tables:
            for step, rank, name, grp, *times in con.execute(
                "SELECT step, rank_id, hccl_op_name, group_name, transit_time, wait_time, synchronization_time,"
                " idle_time FROM ClusterCommunicationTime WHERE hccl_op_name <> ?",
                (TOTAL_OP,),
            ):
                ops[(_step(step), int(rank), name, str(grp))] = dict(zip(OP_FIELDS, map(_ms_ns, times), strict=True))
        return links, ops
    finally:
        con.close()


def _link_values(size_mb: object, transit_ms: object, bandwidth: object) -> dict:
    return {
        "bytes": round(float(size_mb) * 1_000_000),  # type: ignore[arg-type]
        "transit_ns": _ms_ns(transit_ms),
        "bandwidth_gbps": float(bandwidth),  # type: ignore[arg-type]
    }


def _text_links(doc: dict) -> dict[LinkKey, dict]:
    links: dict[LinkKey, dict] = {}
    for steps in doc.values():
        for step, entries in steps.items():
            for entry, by_link in entries.items():
                kind, _, grp = entry.rpartition("@")
                if not kind.endswith("-total"):
                    continue
                for ends, link in by_link.items():
                    src, dst = (int(x) for x in ends.split("-"))
                    key = (_step(step), grp, kind.removesuffix("-total"), src, dst, link["Transport Type"])
                    links[key] = _link_values(
                        link["Transit Size(MB)"], link["Transit Time(ms)"], link["Bandwidth(GB/s)"]
                    )
    return links


def text_ops(doc: dict) -> dict[OpKey, dict]:
    """Per-op time splits of a cluster_communication.json (rank set -> step -> op@group -> rank)."""
    keys = ("Transit Time(ms)", "Wait Time(ms)", "Synchronization Time(ms)", "Idle Time(ms)")
    ops: dict[OpKey, dict] = {}
    for steps in doc.values():
        for step, entries in steps.items():
            for entry, by_rank in entries.items():
                name, at, grp = entry.rpartition("@")
                if not at or name == TOTAL_OP:
                    continue
                for rank, info in by_rank.items():
                    times = info["Communication Time Info"]
                    ops[(_step(step), int(rank), name, grp)] = {
                        f: _ms_ns(times[k]) for f, k in zip(OP_FIELDS, keys, strict=True)
                    }
    return ops


# --- the comparison -------------------------------------------------------------------------------------------


def _floor(field_name: str, mode: str) -> float:
    """The difference that counts as none: 1 ns or byte (traceview's unit); for bandwidth from msprof-analyze's
    text output, which writes it with 4 decimals, half of the last one."""
    if field_name != "bandwidth_gbps":
        return 1.0
    return TEXT_BANDWIDTH_ROUNDING if mode == "text" else 0.0


def compare(outcome: Outcome, ours: dict, theirs: dict, fields: tuple[str, ...], tolerance: float, links: bool) -> None:
    """Fill `outcome` with the keys both sides have, their largest difference, and what is off."""
    common = ours.keys() & theirs.keys()
    worst = 0.0
    for key in sorted(common, key=str):
        for name in fields:
            a, b = ours[key][name], theirs[key][name]
            if a is None:
                outcome.mismatches.append(f"{key} {name}: traceview has none, msprof-analyze {b}")
                continue
            diff = relative_diff(float(a), float(b), _floor(name, outcome.mode))
            worst = max(worst, diff)
            if diff > tolerance:
                outcome.mismatches.append(f"{key} {name}: traceview {a}, msprof-analyze {b} ({diff:.2%})")
    outcome.only_msprof += [f"{'link' if links else 'op'} {k}" for k in sorted(theirs.keys() - ours.keys(), key=str)]
    if links:
        outcome.links, outcome.link_max_diff = len(common), worst
        outcome.only_traceview += len(ours.keys() - theirs.keys())
    else:
        outcome.ops, outcome.op_max_diff = len(common), worst


def check_dump(exe: str, dump: Dump, work: Path, tolerance: float = TOLERANCE) -> Outcome:
    """Copy one corpus dump into `work`, run both tools on it, compare."""
    outcome = Outcome(dump.name)
    copy = copy_dump(ASCEND / dump.path, work / "dump", dump.drop)
    ours_links, ours_ops, outcome.only_traceview = traceview_tables(copy, work / "store")
    before = tree_digests(copy)
    outcome.mode, links, ops = msprof_tables(run_msprof(exe, copy, work / "out"))
    after = tree_digests(copy)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:
        outcome.notes.append(f"msprof-analyze changed its input: {', '.join(changed)}")
    compare(outcome, ours_links, links, LINK_FIELDS, tolerance, links=True)
    compare(outcome, ours_ops, ops, OP_FIELDS, tolerance, links=False)
    return outcome


def check_committed(work: Path, tolerance: float = TOLERANCE) -> Outcome:
    """traceview's per-op times of msinsight's test_rank_0 against the committed cluster output's rank 0."""
    dump, output = (ASCEND / p for p in COMMITTED)
    outcome = Outcome("msinsight-committed", mode="text")
    _, ours_ops, _ = traceview_tables(copy_dump(dump, work / "test_rank_0"), work / "store")
    cluster = text_ops(json.loads((output / "cluster_communication.json").read_text()))
    theirs = {k: v for k, v in cluster.items() if k[1] == 0}  # the other 15 ranks are not in the corpus
    compare(outcome, ours_ops, theirs, OP_FIELDS, tolerance, links=False)
    outcome.notes.append(
        "links not compared: the 2023 communication_matrix.json is keyed per op (no -total entries),"
        " which traceview does not read"
    )
    return outcome


def print_table(outcomes: list[Outcome]) -> None:
    header = f"{'dump':<20} {'mode':<5} {'links':>6} {'max bw/B/t':>10} {'ops':>5} {'max t':>8} {'tv only':>7}  result"
    print(header)
    print("-" * len(header))
    for o in outcomes:
        result = "ok" if o.ok else f"MISMATCH ({len(o.mismatches)} values, {len(o.only_msprof)} missing)"
        print(
            f"{o.name:<20} {o.mode:<5} {o.links:>6} {o.link_max_diff:>10.4%} {o.ops:>5} {o.op_max_diff:>8.4%}"
            f" {o.only_traceview:>7}  {result}"
        )
    for o in outcomes:
        for line in [*o.mismatches, *(f"missing in traceview: {m}" for m in o.only_msprof), *o.notes][:40]:
            print(f"  {o.name}: {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--msprof-analyze", help="msprof-analyze executable (default: $MSPROF_ANALYZE, PATH)")
    parser.add_argument("--dump", action="append", choices=[d.name for d in DUMPS], help="only these dumps")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="relative tolerance (default 0.01)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    exe = find_msprof_analyze(args.msprof_analyze)
    if exe is None:
        print("msprof-analyze not found: pip install msprof-analyze, or pass --msprof-analyze", file=sys.stderr)
        return 2
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="tv-msprof-") as tmp:
        for dump in [d for d in DUMPS if not args.dump or d.name in args.dump]:
            started = time.perf_counter()
            outcomes.append(check_dump(exe, dump, Path(tmp) / dump.name, args.tolerance))
            print(f"[{dump.name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
        if not args.dump:
            outcomes.append(check_committed(Path(tmp) / "committed", args.tolerance))
    print_table(outcomes)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1, default=str))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
