"""Store hardening: killed and racing ingests, targets that are not directories, and links nobody writes through."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import KINETO_CORPUS, small_kineto_events, store_rows, write_kineto
from typer.testing import CliRunner

import traceview.store as store_mod
from traceview.cli import app
from traceview.errors import UserError
from traceview.paths import cache_store_for
from traceview.store import ingest, read_manifest

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SMALL = KINETO_CORPUS / "hta/trace_compare/base/base.json.gz"
SMALL_SLICES = 33

# A child process that ingests argv[2] into argv[3] and SIGKILLs itself at the point argv[1] names.
KILLED_CHILD = """
import os, signal, sys
from pathlib import Path
import traceview.store as store

point, trace, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

real_replace = os.replace

def replace_then_die_before_the_new_store(src, dst):
    if Path(dst) == out and Path(src).name.endswith(".tmp"):
        die()
    real_replace(src, dst)

if point == "build":
    store._write_parsed = die
elif point == "between-renames":
    os.replace = replace_then_die_before_the_new_store
elif point == "after-renames":
    store._discard = die
store.ingest([trace], out, force=True)
"""

# A CLI run whose store builds take a second longer (and say so), so that runs started together overlap.
SLOW_CLI = """
import sys, time
import traceview.store as store

real_build = store._build

def slow_build(*args):
    print("building the store", file=sys.stderr)
    time.sleep(1.0)
    return real_build(*args)

store._build = slow_build
from traceview.cli import app
app(sys.argv[1:], prog_name="traceview")
"""


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def kill_ingest_at(point: str, trace: Path, out: Path) -> None:
    """Run an ingest in a child process that SIGKILLs itself at `point`."""
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, point, str(trace), str(out)],
                           env=child_env(), capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr


def entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture()
def trace(tmp_path: Path) -> Path:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    return write_kineto(inputs / "t.json", small_kineto_events(3))


# ---------------------------------------------------------------------------------------------
# Killed ingests.


def test_killed_build_leaves_staging_that_next_ingest_removes(trace: Path, tmp_path: Path) -> None:
    """SIGKILL while writing tables leaves `.s.traceview.*.tmp`; the next ingest removes it and writes the store."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "s.traceview"
    kill_ingest_at("build", trace, out)
    leftovers = entries(out_dir)
    assert any(name.startswith(".s.traceview.") and name.endswith(".tmp") for name in leftovers), leftovers
    result = ingest([trace], out)
    assert not result.reused
    assert entries(out_dir) == ["s.traceview"]
    assert len(store_rows(out, "slices", "1")) == 6


def test_kill_between_renames_restores_the_old_store(trace: Path, tmp_path: Path) -> None:
    """SIGKILL after the old store was moved aside and before the new one was renamed in: the store is put back."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "s.traceview"
    ingest([trace], out)
    manifest = (out / "manifest.json").read_text()
    kill_ingest_at("between-renames", trace, out)
    assert not out.exists()
    assert any(name.startswith(".s.traceview.old-") for name in entries(out_dir)), entries(out_dir)
    result = ingest([trace], out)
    assert result.reused and (out / "manifest.json").read_text() == manifest
    assert entries(out_dir) == ["s.traceview"]


def test_kill_after_renames_removes_the_old_store(trace: Path, tmp_path: Path) -> None:
    """SIGKILL before the replaced store was removed: the next ingest removes it and keeps the new store."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "s.traceview"
    ingest([trace], out)
    kill_ingest_at("after-renames", trace, out)
    assert len(entries(out_dir)) == 3  # the store, the old one moved aside, the lock file
    assert ingest([trace], out).reused
    assert entries(out_dir) == ["s.traceview"]


def test_cleanup_spares_what_is_not_provably_ours(trace: Path, tmp_path: Path) -> None:
    """Look-alike names holding user files, another store's staging, and links into a victim folder are left alone."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "s.traceview"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "manifest.json").write_text(json.dumps({"traceview_version": "0"}))
    (victim / ".traceview-staging").write_text(json.dumps({"store": "s.traceview"}))
    (victim / "precious.txt").write_text("keep")
    user_staging = out_dir / ".s.traceview.0123abcd.tmp"
    user_staging.mkdir()
    (user_staging / "notes.txt").write_text("mine")
    user_old = out_dir / ".s.traceview.old-1-0123abcd"
    user_old.mkdir()
    (user_old / "notes.txt").write_text("mine")
    other_store_staging = out_dir / ".s.traceview.x.0123abcd.tmp"
    other_store_staging.mkdir()
    (other_store_staging / ".traceview-staging").write_text(json.dumps({"store": "s.traceview.x"}))
    (out_dir / ".s.traceview.feedface.tmp").symlink_to(victim)
    (out_dir / ".s.traceview.old-2-feedface").symlink_to(victim)
    before = entries(out_dir)
    ingest([trace], out)
    assert entries(out_dir) == sorted([*before, "s.traceview"])
    assert entries(victim) == [".traceview-staging", "manifest.json", "precious.txt"]
    assert (user_staging / "notes.txt").read_text() == "mine" and (user_old / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------------
# Racing ingests.


def test_two_threads_ingesting_one_store_take_turns(trace: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two overlapping ingests into one store: one writes it, the other waits and reuses it."""
    real_build = store_mod._build

    def slow_build(*args):  # noqa: ANN002, ANN202 - a pass-through
        time.sleep(0.3)
        return real_build(*args)

    monkeypatch.setattr(store_mod, "_build", slow_build)
    out = tmp_path / "s.traceview"
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(_ingest_or_error(trace, out))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, store_mod.IngestResult) for r in results), results
    assert sorted(r.reused for r in results) == [False, True]  # type: ignore[attr-defined]
    assert entries(tmp_path) == ["inputs", "s.traceview"]
    assert len(store_rows(out, "slices", "1")) == 6


def _ingest_or_error(trace: Path, out: Path) -> object:
    try:
        return ingest([trace], out)
    except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
        return exc


def test_concurrent_analyze_and_query_share_the_cache(tmp_path: Path) -> None:
    """analyze and two queries started together on one raw trace and one cache: all succeed, one build, one store."""
    cache = tmp_path / "cache"
    sql = "select count(*) as n from slices"
    commands = [
        ["query", str(SMALL), sql, "-f", "csv", "--cache-dir", str(cache)],
        ["analyze", str(SMALL), "--cache-dir", str(cache)],
        ["query", str(SMALL), sql, "-f", "csv", "--cache-dir", str(cache)],
    ]
    children = [subprocess.Popen([sys.executable, "-c", SLOW_CLI, *cmd], env=child_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for cmd in commands]
    outputs = [child.communicate(timeout=300) for child in children]
    for child, (_, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0 and "Error" not in stderr, stderr
    assert outputs[0][0] == outputs[2][0] == f"n\n{SMALL_SLICES}\n"
    assert sum(stderr.count("building the store") for _, stderr in outputs) == 1  # the others waited and reused it
    (cached,) = entries(cache)
    assert cached.startswith("base-") and cached.endswith(".traceview")


def test_ingest_waiting_too_long_for_the_lock_gives_up(trace: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """While another ingest holds the store, a second one gives up after TRACEVIEW_LOCK_WAIT_S with one line."""
    out = tmp_path / "s.traceview"
    monkeypatch.setenv("TRACEVIEW_LOCK_WAIT_S", "0.2")
    with store_mod._store_lock(out):
        result = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {out}: another traceview ingest is writing this store; gave up after 0.2 s"
        " (set TRACEVIEW_LOCK_WAIT_S to wait longer)\n"
    )
    assert entries(tmp_path) == ["inputs"]


@pytest.mark.parametrize("value", ["nan", "-5", "inf", "abc"])
def test_a_lock_wait_that_is_no_time_is_refused(value: str, trace: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """nan never ran out (a waiting ingest spun forever); a negative wait skipped the wait."""
    out = tmp_path / "s.traceview"
    with store_mod._store_lock(out):
        monkeypatch.setenv("TRACEVIEW_LOCK_WAIT_S", value)
        result = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: TRACEVIEW_LOCK_WAIT_S: not a number of seconds from 0 ({value!r})\n"


# ---------------------------------------------------------------------------------------------
# Targets that are not store directories, and links.


def _make_fifo(path: Path) -> None:
    os.mkfifo(path)


def _make_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))


def _make_file(path: Path) -> None:
    path.write_text("not a store")


def _make_link(path: Path) -> None:
    path.with_name("elsewhere").mkdir()
    path.symlink_to(path.with_name("elsewhere"))


@pytest.mark.parametrize(("make", "kind"), [
    (_make_file, "a regular file"),
    (_make_link, "a symbolic link"),
    (_make_fifo, "a FIFO"),
    (_make_socket, "a socket"),
])
def test_ingest_target_that_is_not_a_directory(make, kind: str, trace: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """-o naming a file, a link, a FIFO or a socket: one line, exit 2, and the folder is as it was."""
    work = tmp_path / "work"
    work.mkdir()
    out = work / "s.traceview"
    make(out)
    before = entries(work)
    result = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out}: exists and is {kind}, not a traceview store; refusing to write there\n"
    assert entries(work) == before
    assert not (work / "elsewhere").exists() or entries(work / "elsewhere") == []


def test_ingest_target_that_is_a_device(trace: Path) -> None:
    result = runner.invoke(app, ["ingest", str(trace), "-o", os.devnull])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {os.devnull}: exists and is a character device, not a traceview store; refusing to write there\n"
    )


def test_store_through_a_link_to_a_store_is_refused(trace: Path, tmp_path: Path) -> None:
    """A link planted where the store goes, to another store, is neither reused nor replaced (even with --force)."""
    real = tmp_path / "real.traceview"
    ingest([trace], real)
    link = tmp_path / "s.traceview"
    link.symlink_to(real)
    for extra in ([], ["--force"]):
        result = runner.invoke(app, ["ingest", str(trace), "-o", str(link), *extra])
        assert result.exit_code == 2, result.stdout
        assert "is a symbolic link" in result.stderr
    assert link.is_symlink() and entries(tmp_path) == ["inputs", "real.traceview", "s.traceview"]


def test_cache_entry_that_is_a_link_to_a_forged_store_is_not_used(tmp_path: Path) -> None:
    """A cache entry planted as a link to a store whose manifest claims the trace: an error, not its rows."""
    cache = tmp_path / "cache"
    forged = tmp_path / "forged.traceview"
    other = write_kineto(tmp_path / "other.json", small_kineto_events(1))
    manifest = ingest([other], forged).manifest
    st = SMALL.stat()
    manifest["inputs"][0].update(path=str(SMALL.resolve()), size=st.st_size, mtime_ns=st.st_mtime_ns)
    (forged / "manifest.json").write_text(json.dumps(manifest))
    cache.mkdir()
    entry = cache_store_for([SMALL], cache)
    entry.symlink_to(forged)
    result = runner.invoke(app, ["query", str(SMALL), "select count(*) as n from slices", "-f", "csv",
                                 "--cache-dir", str(cache)])
    assert result.exit_code == 2, result.stdout
    assert result.stderr == (
        f"Error: {entry}: exists and is a symbolic link, not a traceview store; refusing to write there\n"
    )


def test_store_through_a_link_into_the_input_dump_is_refused(tmp_path: Path) -> None:
    """-o under a link that leads into the dump directory: refused before anything is written there."""
    dump = tmp_path / "dump"
    dump.mkdir()
    write_kineto(dump / "rank-0.json", small_kineto_events(2))
    (tmp_path / "into").symlink_to(dump)
    out = tmp_path / "into" / "s.traceview"
    result = runner.invoke(app, ["ingest", str(dump), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {out}: the store would be inside the input directory {dump}; choose another -o\n"
    )
    assert entries(dump) == ["rank-0.json"]


def test_planted_lock_link_is_refused(trace: Path, tmp_path: Path) -> None:
    """`.s.traceview.lock` planted as a link: refused, and the file it points to is untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    lock = tmp_path / ".s.traceview.lock"
    lock.symlink_to(victim)
    result = runner.invoke(app, ["ingest", str(trace), "-o", str(tmp_path / "s.traceview")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {lock}: cannot be used as the store's lock file (is a symbolic link)\n"
    assert victim.read_text() == "keep" and lock.is_symlink()
    assert not (tmp_path / "s.traceview").exists()


def test_full_disk_is_one_line_and_leaves_nothing(trace: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args):  # noqa: ANN002, ANN202
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_mod, "_write_parsed", disk_full)
    out = tmp_path / "s.traceview"
    result = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out}: cannot write the store (No space left on device)\n"
    assert entries(tmp_path) == ["inputs"]


def test_oversized_manifest_is_not_read(trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s.traceview"
    ingest([trace], out)
    monkeypatch.setattr(store_mod, "MANIFEST_MAX_BYTES", 64, raising=False)
    with pytest.raises(UserError, match=r"not a readable traceview store \(manifest.json is larger than 64 bytes\)"):
        read_manifest(out)


# ---------------------------------------------------------------------------------------------
# Output files (query -o, --html, --json) are replaced atomically, and only when they are regular files.


@pytest.mark.parametrize(("make", "kind"), [
    (_make_link, "a symbolic link"),
    (_make_fifo, "a FIFO"),
    (_make_socket, "a socket"),
    (lambda path: path.mkdir(), "a directory"),
])
def test_query_output_that_is_not_a_regular_file(make, kind: str, tmp_path: Path) -> None:  # noqa: ANN001
    target = tmp_path / "out.csv"
    make(target)
    result = runner.invoke(app, ["query", str(SMALL), "select 1 as n", "-f", "csv", "-o", str(target),
                                 "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {target}: exists and is {kind}; refusing to replace it with the output file\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_query_output_replaces_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    result = runner.invoke(app, ["query", str(SMALL), "select 1 as n", "-f", "csv", "-o", str(target),
                                 "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == "n\n1\n"
