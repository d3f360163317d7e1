"""Seeded mutations of small real traces, for the fuzz test (tests/test_fuzz.py).

A case is (seed file or dump, mutation, case seed): `build_case` writes the mutated input into a
directory, deterministically (`random.Random(case seed)`). To rebuild one failing case by hand:

    python -m tests.fuzz_mutations --case 'ingest:kineto/hta/call_stack/backward_thread.json|truncate|17' \\
        --out /tmp/c --run
    python -m tests.fuzz_mutations --list          # every case of the default plan

It prints the input it wrote and the traceview command the test runs on it; `--run` runs that command
in-process under the test's limits and prints the exit code, the output and any traceback.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import hashlib
import io
import os
import re
import traceback
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from random import Random

from typer.testing import CliRunner, Result

from traceview.cli import app
from traceview.parsers.limits import limits, set_limits

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
GZIP_MAGIC = b"\x1f\x8b"

DEFAULT_CASES = 300
# Seed dumps keep their text files up to this size (inflated): bigger CSVs are cut to their first lines,
# bigger JSON files are left out, so that each case stays small. Databases are kept whole.
MAX_SEED_FILE_BYTES = 256 * 1024
NESTING_DEPTH = 2000
# The fuzz runs lower the inflate floor (64 MiB by default, parsers/limits.py) so that a gzip bomb costs
# little: `gzip_bomb` follows a valid prefix with a member of BOMB_PADDING_BYTES spaces, past that floor.
FUZZ_INFLATE_FLOOR_BYTES = 4 << 20
BOMB_PADDING_BYTES = 8 << 20
ANALYZE_EVERY = 10  # every 10th case runs `analyze` (with --json) instead of `ingest`

CORPUS_SEEDS = (
    "kineto/hta/trace_compare/base/base.json.gz",
    "kineto/hta/call_stack/backward_thread.json",
    "kineto/hta/amd_trace/mi250_minitoy_train_ROCm6_2_kineto.json.gz",
    "kineto/hta/trace_file_list/inference_rank_1.json.gz",
    "kineto/hta/cpu_only/rank-34.Jul_15_10_52_41.1074.pt.trace.json.gz",
    "kineto/hta/critical_path/cuda_event_sync/event_sync_trace.json.gz",
    "kineto/tracelens/torch_compile_triton/trace.json.gz",
    "ascend/msinsight_server/fuzz/trace_view_tiny.json",
    "ascend/msinsight_server/heatMap/trace_view.json",
    "ascend/msinsight_server/test_kernel_parse/op_summary_1.csv",
    "ascend/msprof_analyze/ut/advisor/compute_advice/data/kernel_details.csv",
    "ascend/msinsight_server/full_db/msprof_0.db",
    "ascend/msinsight_server/test_rank_0",
    "ascend/torch_npu_2025_text/level0/rank0_ascend_pt",
    "ascend/torch_npu_cann83_level2/rank_1_ascend_pt",
    "ascend/torch_npu_2025_db/level0/rank0_ascend_pt",
)
SAMPLE_SEEDS = (
    "sample_traces/runtime_v1/runtime_v1.pt.trace.json.gz",
    "sample_traces/longctx_910b/longctx_910b_ascend_pt",
)


def seed_path(name: str) -> Path:
    """Where a seed lives: the project's sample_traces/ or the shared corpus."""
    return REPO / name if name.startswith("sample_traces/") else CORPUS / name


def available_seeds() -> list[str]:
    """The seeds present on this machine (the corpus ones only where the corpus is)."""
    return [name for name in CORPUS_SEEDS + SAMPLE_SEEDS if seed_path(name).exists()]


# ---------------------------------------------------------------------------------------------
# Content mutations: plain bytes in, plain bytes out (a gzip file is inflated first, recompressed after).

NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
STRING_START = re.compile(rb'"(?=[A-Za-z_])')
ODD_NUMBERS = (
    *b"1e400 -1e400 1e30 -1e30 NaN Infinity -Infinity nan inf 99999999999999999999999999999 -1 -0 0".split(),
    *b'-9223372036854775809 18446744073709551616 4294967295 1.5e-300 "12" "abc" null true {} [] abc'.split(),
    b"",
)
SURROGATES = (b"\\ud800", b"\\udfff", b"\\udbff\\u0041", b"\xed\xa0\x80", b"\\ud83d")
CONTROLS = (
    *(b"\\u001b[31m", b"\x1b[2J\x1b[H", b"\x1b]0;title\x07", b"\x00", b"\\u0000", b"\x07"),
    *(b"\r", b"\x08", b"\\n", b"\n", b"\x7f", b"\xc2\x9b"),
)
INTERESTING = (b"\x00", b"\xff", b"{", b"[", b"]", b"}", b'"', b",", b"\\", b"\n", b"\r\n", b"\xef\xbb\xbf", b":")


def _positions(rng: Random, length: int, count: int) -> list[int]:
    return sorted((rng.randrange(length + 1) for _ in range(count)), reverse=True)


def truncate(rng: Random, data: bytes) -> bytes:
    """Cut at a random offset."""
    return data[: rng.randrange(len(data))] if data else data


def flip_bytes(rng: Random, data: bytes) -> bytes:
    """Flip one bit in each of a few random bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8) if out else 0):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def insert_bytes(rng: Random, data: bytes) -> bytes:
    """Insert a few random or syntax bytes."""
    for pos in _positions(rng, len(data), rng.randint(1, 6)):
        piece = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 16))
        data = data[:pos] + piece + data[pos:]
    return data


def delete_bytes(rng: Random, data: bytes) -> bytes:
    """Delete a few short spans."""
    for pos in _positions(rng, len(data), rng.randint(1, 6)):
        data = data[:pos] + data[pos + rng.randint(1, 64) :]
    return data


def splice(rng: Random, data: bytes) -> bytes:
    """Copy a chunk of the file over another place of it."""
    if not data:
        return data
    start = rng.randrange(len(data))
    chunk = data[start : start + rng.randint(1, 4096)]
    at = rng.randrange(len(data))
    return data[:at] + chunk + data[at + rng.randint(0, len(chunk)) :]


def duplicate_region(rng: Random, data: bytes) -> bytes:
    """Repeat a region right after itself (duplicate events, rows or keys)."""
    if not data:
        return data
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randint(1, 16384))
    return data[:end] + data[start:end] * rng.randint(1, 3) + data[end:]


def _replace_matches(
    rng: Random, data: bytes, pattern: re.Pattern[bytes], pieces: tuple[bytes, ...], count: int
) -> bytes:
    matches = list(pattern.finditer(data))
    for match in sorted(rng.sample(matches, min(count, len(matches))), key=lambda m: m.start(), reverse=True):
        data = data[: match.start()] + rng.choice(pieces) + data[match.end() :]
    return data


def odd_numbers(rng: Random, data: bytes) -> bytes:
    """Replace some numbers with huge, negative, NaN, 1e30 or string values."""
    return _replace_matches(rng, data, NUMBER, ODD_NUMBERS, rng.randint(1, 40))


def _insert_into_strings(rng: Random, data: bytes, pieces: tuple[bytes, ...]) -> bytes:
    starts = [m.end() for m in STRING_START.finditer(data)] or [0]
    for pos in sorted(rng.sample(starts, min(len(starts), rng.randint(1, 20))), reverse=True):
        data = data[:pos] + rng.choice(pieces) + data[pos:]
    return data


def surrogates(rng: Random, data: bytes) -> bytes:
    """Lone surrogate escapes (and an encoded surrogate, invalid UTF-8) at the start of strings."""
    return _insert_into_strings(rng, data, SURROGATES)


def control_chars(rng: Random, data: bytes) -> bytes:
    """Control characters and ANSI escapes at the start of strings."""
    return _insert_into_strings(rng, data, CONTROLS)


def deep_nesting(rng: Random, data: bytes) -> bytes:
    """A value nested 2000 deep in place of a number, or an unclosed run of 2000 brackets."""
    open_, close = rng.choice(((b"[", b"]"), (b'{"a":', b"}")))
    if rng.random() < 0.5:
        nested = open_ * NESTING_DEPTH + b"1" + close * NESTING_DEPTH
        return _replace_matches(rng, data, NUMBER, (nested,), rng.randint(1, 2))
    at = rng.randrange(len(data) + 1)
    return data[:at] + open_ * NESTING_DEPTH + data[at:]


def _csv_rows(data: bytes) -> tuple[list[list[str]], str]:
    text = data.decode("utf-8", errors="surrogateescape")
    newline = "\r\n" if "\r\n" in text[:4096] else "\n"
    return list(csv.reader(io.StringIO(text, newline=""))), newline


def _csv_bytes(rows: list[list[str]], newline: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerows(rows)
    return buffer.getvalue().encode("utf-8", errors="surrogateescape")


def swap_csv_header(rng: Random, data: bytes) -> bytes:
    """Swap two column names of the header (or rename the only one)."""
    rows, newline = _csv_rows(data)
    if not rows or not rows[0]:
        return data
    header = rows[0]
    if len(header) == 1:
        header[0] = header[0][::-1]
    else:
        i, j = rng.sample(range(len(header)), 2)
        header[i], header[j] = header[j], header[i]
    return _csv_bytes(rows, newline)


def text_column(rng: Random, data: bytes) -> bytes:
    """Make one column text: every value of it replaced by words, blanks or odd numbers."""
    rows, newline = _csv_rows(data)
    if len(rows) < 2 or not rows[0]:
        return data
    column = rng.randrange(len(rows[0]))
    values = ("abc", "N/A", "", "1e400", "-5", "x,y", "NaN", "\t", "12abc", "\\ud800")
    for row in rows[1:]:
        if column < len(row):
            row[column] = rng.choice(values)
    return _csv_bytes(rows, newline)


ContentMutation = Callable[[Random, bytes], bytes]
CONTENT_MUTATIONS: dict[str, ContentMutation] = {
    "truncate": truncate,
    "flip_bytes": flip_bytes,
    "insert_bytes": insert_bytes,
    "delete_bytes": delete_bytes,
    "splice": splice,
    "duplicate_region": duplicate_region,
    "odd_numbers": odd_numbers,
    "surrogates": surrogates,
    "control_chars": control_chars,
    "deep_nesting": deep_nesting,
}
CSV_MUTATIONS: dict[str, ContentMutation] = {"swap_csv_header": swap_csv_header, "text_column": text_column}


# ---------------------------------------------------------------------------------------------
# File mutations: (name, raw bytes) in, (name, raw bytes) out; they see the gzip layer.


def _is_gzip(raw: bytes) -> bool:
    return raw[:2] == GZIP_MAGIC


def _plain(raw: bytes) -> bytes:
    """The inflated bytes of one of our own (trusted, small) seed files."""
    return gzip.decompress(raw) if _is_gzip(raw) else raw


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


@cache
def _bomb_padding() -> bytes:
    """One gzip member of BOMB_PADDING_BYTES spaces (about 8 KB), built once."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    body = b"".join(packer.compress(block) for _ in range(BOMB_PADDING_BYTES >> 20))
    return body + packer.flush()


@dataclass(frozen=True)
class FileMutation:
    """A mutation of one file; `applies` says which files (by name and raw bytes) it can take."""

    apply: Callable[[Random, str, bytes], tuple[str, bytes]]
    applies: Callable[[str, bytes], bool]


def _content(mutation: ContentMutation) -> Callable[[Random, str, bytes], tuple[str, bytes]]:
    def apply(rng: Random, name: str, raw: bytes) -> tuple[str, bytes]:
        mutated = mutation(rng, _plain(raw))
        return name, _gzip(mutated) if _is_gzip(raw) else mutated

    return apply


def truncate_gzip(rng: Random, name: str, raw: bytes) -> tuple[str, bytes]:
    """Cut the compressed stream (inside the header, the deflate data or the trailer)."""
    return name, raw[: rng.randrange(len(raw))]


def flip_gzip(rng: Random, name: str, raw: bytes) -> tuple[str, bytes]:
    """Flip bits of the compressed stream (bad deflate data, bad CRC or length)."""
    return name, flip_bytes(rng, raw)


def gzip_mutated(rng: Random, name: str, raw: bytes) -> tuple[str, bytes]:
    """Mutate a plain file with a random content mutation, then gzip it as NAME.gz."""
    mutation = CONTENT_MUTATIONS[rng.choice(sorted(CONTENT_MUTATIONS))]
    return name + ".gz", _gzip(mutation(rng, raw))


def fake_gz(rng: Random, name: str, raw: bytes) -> tuple[str, bytes]:
    """Rename to .gz without compressing."""
    return name + ".gz", raw


def gzip_bomb(rng: Random, name: str, raw: bytes) -> tuple[str, bytes]:
    """A valid gzip prefix of the file followed by a member that inflates to 80 MiB of spaces."""
    plain = _plain(raw)
    prefix = plain[: rng.randrange(len(plain) + 1)]
    return (name if _is_gzip(raw) else name + ".gz"), _gzip(prefix) + _bomb_padding()


def _is_csv(name: str) -> bool:
    return name.endswith((".csv", ".csv.gz"))


def _any(name: str, raw: bytes) -> bool:
    return bool(raw)


FILE_MUTATIONS: dict[str, FileMutation] = {
    **{key: FileMutation(_content(fn), _any) for key, fn in CONTENT_MUTATIONS.items()},
    **{key: FileMutation(_content(fn), lambda n, r: _is_csv(n) and bool(r)) for key, fn in CSV_MUTATIONS.items()},
    "truncate_gzip": FileMutation(truncate_gzip, lambda n, r: _is_gzip(r)),
    "flip_gzip": FileMutation(flip_gzip, lambda n, r: _is_gzip(r)),
    "gzip_mutated": FileMutation(gzip_mutated, lambda n, r: bool(r) and not _is_gzip(r) and not n.endswith(".db")),
    "fake_gz": FileMutation(fake_gz, lambda n, r: bool(r) and not _is_gzip(r)),
    "gzip_bomb": FileMutation(gzip_bomb, lambda n, r: not n.endswith(".db")),
}


# ---------------------------------------------------------------------------------------------
# Dump mutations: they change which files a dump directory holds.


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def delete_file(rng: Random, root: Path) -> str:
    """Delete one file of the dump."""
    victim = rng.choice(_files(root))
    victim.unlink()
    return f"deleted {victim.relative_to(root)}"


def empty_file(rng: Random, root: Path) -> str:
    """Empty one file of the dump."""
    victim = rng.choice(_files(root))
    victim.write_bytes(b"")
    return f"emptied {victim.relative_to(root)}"


def add_gz_sibling(rng: Random, root: Path) -> str:
    """Add x.gz next to x: the same content, or a mutated one."""
    plain = [p for p in _files(root) if not _is_gzip(p.read_bytes()[:2])]
    if not plain:
        return "no plain file to add a .gz beside"
    original = rng.choice(plain)
    data = original.read_bytes()
    how = rng.choice(("same", "mutated"))
    if how == "mutated" and data:
        data = CONTENT_MUTATIONS[rng.choice(sorted(CONTENT_MUTATIONS))](rng, data)
    original.with_name(original.name + ".gz").write_bytes(_gzip(data))
    return f"added {original.relative_to(root)}.gz ({how} content)"


def symlink_loop(rng: Random, root: Path) -> str:
    """Add a link to the dump's own folder (or its parent) inside one of its folders."""
    folders = sorted({p.parent for p in _files(root)})
    where = rng.choice(folders)
    pointee = rng.choice([".", "..", str(root)])
    (where / "loop").symlink_to(pointee, target_is_directory=True)
    return f"linked {(where / 'loop').relative_to(root)} -> {pointee}"


DIR_MUTATIONS: dict[str, Callable[[Random, Path], str]] = {
    "delete_file": delete_file,
    "empty_file": empty_file,
    "add_gz_sibling": add_gz_sibling,
    "symlink_loop": symlink_loop,
}


# ---------------------------------------------------------------------------------------------
# Seeds and cases.


@cache
def _seed_files(name: str) -> tuple[tuple[str, bytes], ...]:
    """A seed's files as (relative path, raw bytes); a dump's big files trimmed (see MAX_SEED_FILE_BYTES)."""
    path = seed_path(name)
    if path.is_file():
        return ((path.name, path.read_bytes()),)
    kept = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        raw = file.read_bytes()
        plain = _plain(raw)
        if len(plain) > MAX_SEED_FILE_BYTES and not file.name.endswith(".db"):
            if not _is_csv(file.name):
                continue
            cut = plain[:MAX_SEED_FILE_BYTES]
            plain = cut[: cut.rfind(b"\n") + 1]
            raw = _gzip(plain) if _is_gzip(raw) else plain
        kept.append((file.relative_to(path).as_posix(), raw))
    return tuple(kept)


def is_dump(name: str) -> bool:
    """True for a seed that is a dump directory."""
    return seed_path(name).is_dir()


def applicable_mutations(name: str) -> list[str]:
    """The mutations that can act on this seed, in a fixed order."""
    files = _seed_files(name)
    names = [key for key, m in FILE_MUTATIONS.items() if any(m.applies(rel, raw) for rel, raw in files)]
    return names + (list(DIR_MUTATIONS) if is_dump(name) else [])


@dataclass(frozen=True)
class Case:
    """One fuzz case: which seed, which mutation, which random seed, and the command run on it."""

    seed_name: str
    mutation: str
    case_seed: int
    command: str

    @property
    def id(self) -> str:
        """`command:seed|mutation|case seed`, also what `--case` takes."""
        return f"{self.command}:{self.seed_name}|{self.mutation}|{self.case_seed}"

    @classmethod
    def parse(cls, text: str) -> Case:
        """The case a test id names."""
        command, rest = text.split(":", 1)
        seed_name, mutation, case_seed = rest.rsplit("|", 2)
        return cls(seed_name, mutation, int(case_seed), command)


def plan_cases(count: int = DEFAULT_CASES, first_seed: int = 0, seeds: list[str] | None = None) -> list[Case]:
    """`count` cases going round every (seed, mutation) pair, again and again; case seeds count up."""
    seeds = available_seeds() if seeds is None else seeds
    mutations = {name: applicable_mutations(name) for name in seeds}
    rounds = max((len(m) for m in mutations.values()), default=0)
    pairs = [(name, mutations[name][r]) for r in range(rounds) for name in seeds if r < len(mutations[name])]
    cases = []
    for i in range(count if pairs else 0):
        name, mutation = pairs[i % len(pairs)]
        command = "analyze" if i % ANALYZE_EVERY == ANALYZE_EVERY - 1 else "ingest"
        cases.append(Case(name, mutation, first_seed + i, command))
    return cases


def build_case(case: Case, dest: Path) -> tuple[Path, str]:
    """Write the case's mutated input under `dest`; return its path and a note of what was done."""
    rng = Random(case.case_seed)
    files = _seed_files(case.seed_name)
    root = dest / seed_path(case.seed_name).name
    if not is_dump(case.seed_name):
        ((rel, raw),) = files
        new_name, mutated = FILE_MUTATIONS[case.mutation].apply(rng, rel, raw)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / new_name).write_bytes(mutated)
        return dest / new_name, f"{case.mutation} of {rel} -> {new_name} ({len(mutated)} bytes)"
    for rel, raw in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)
    if case.mutation in DIR_MUTATIONS:
        return root, DIR_MUTATIONS[case.mutation](rng, root)
    mutation = FILE_MUTATIONS[case.mutation]
    rel, raw = rng.choice([(rel, raw) for rel, raw in files if mutation.applies(rel, raw)])
    new_name, mutated = mutation.apply(rng, Path(rel).name, raw)
    (root / rel).unlink()
    (root / rel).with_name(new_name).write_bytes(mutated)
    return root, f"{case.mutation} of {rel} -> {new_name} ({len(mutated)} bytes)"


def command_args(case: Case, target: Path, out: Path) -> list[str]:
    """The traceview arguments the fuzz test runs for a case; it writes only under `out`."""
    if case.command == "analyze":
        return ["analyze", str(target), "--cache-dir", str(out / "cache"), "--json", str(out / "report.json")]
    return ["ingest", str(target), "-o", str(out / "store")]


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root`: relative path to the sha256 of its bytes (or `link` / `dir`)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file():
            entries[rel] = "link" if path.is_symlink() else "dir"
        else:
            entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


@contextmanager
def fuzz_limits() -> Iterator[None]:
    """The limits the fuzz cases run under (a lower inflate floor), restored after."""
    previous = limits()
    set_limits(inflate_floor_bytes=FUZZ_INFLATE_FLOOR_BYTES)
    try:
        yield
    finally:
        set_limits(**dataclasses.asdict(previous))


def run_case(case: Case, target: Path, out: Path) -> Result:
    """Run the case's traceview command in-process, as the fuzz test does."""
    with fuzz_limits():
        return CliRunner().invoke(app, command_args(case, target, out))


def main(argv: list[str] | None = None) -> None:
    """Rebuild one case's input (or list the plan) from the command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz_mutations", description=__doc__.splitlines()[0])
    parser.add_argument("--case", help="a test id: 'COMMAND:SEED|MUTATION|N'")
    parser.add_argument("--file", help="seed: a path relative to the corpus, or sample_traces/...")
    parser.add_argument("--mutation", choices=sorted([*FILE_MUTATIONS, *DIR_MUTATIONS]))
    parser.add_argument("--seed", type=int, help="case seed")
    parser.add_argument("--command", choices=("ingest", "analyze"), default="ingest")
    parser.add_argument("--out", type=Path, help="an empty or new directory to write the input into")
    parser.add_argument("--run", action="store_true", help="also run the command in-process and show its result")
    parser.add_argument("--list", action="store_true", help="list the cases of the plan (FUZZ_CASES, FUZZ_SEED)")
    args = parser.parse_args(argv)
    if args.list:
        plan = plan_cases(int(os.environ.get("FUZZ_CASES", DEFAULT_CASES)), int(os.environ.get("FUZZ_SEED", "0")))
        print("\n".join(case.id for case in plan))
        return
    if args.case:
        case = Case.parse(args.case)
    elif args.file and args.mutation and args.seed is not None:
        case = Case(args.file, args.mutation, args.seed, args.command)
    else:
        parser.error("give --case, or --file, --mutation and --seed")
    if args.out is None:
        parser.error("--out is required")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    target, note = build_case(case, args.out / "in")
    print(f"{case.id}: {note}")
    print("traceview " + " ".join(command_args(case, target, args.out / "out")))
    print(f"(the test runs it in-process, with the inflate floor lowered to {FUZZ_INFLATE_FLOOR_BYTES >> 20} MiB)")
    if args.run:
        os.environ["TRACEVIEW_DEBUG"] = "1"  # an internal error raises, so its traceback is shown
        before = snapshot(args.out / "in")
        result = run_case(case, target, args.out / "out")
        print(f"exit {result.exit_code}\n{result.output}", end="")
        after = snapshot(args.out / "in")
        changed = sorted(rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel))
        print(f"input entries changed, added or removed: {changed}" if changed else "inputs unchanged")
        if result.exc_info and result.exception is not None and not isinstance(result.exception, SystemExit):
            traceback.print_exception(*result.exc_info)
        elif result.exit_code not in (0, 2):
            _rerun_for_traceback(case, target, args.out / "rerun")


def _rerun_for_traceback(case: Case, target: Path, out: Path) -> None:
    """Run the command again outside click's standalone mode, which turns EOFError into a bare `Aborted!`."""
    try:
        with fuzz_limits():
            app(command_args(case, target, out), standalone_mode=False)
    except Exception:  # noqa: BLE001 - the point is to show it
        traceback.print_exc()


if __name__ == "__main__":
    main()
