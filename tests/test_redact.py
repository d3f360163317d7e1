"""Secrets in trace metadata (environment dumps, log lines) never reach the store."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import small_kineto_events, store_rows, write_kineto
from typer.testing import CliRunner

from parsers.redact import REDACTED, redact
from traceview.cli import app
from traceview.store import ingest

HF = "hf_abcdefghijklmnopqrstuvwxyz123456"
SECRETS = [HF, "supersecret", "wandb-0123456789", "hunter2-pw"]


def _leaks(store: Path, secrets: list[str]) -> list[str]:
    """Where any secret appears: raw bytes of every file, and the decoded values of every Parquet file."""
    found = []
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        texts = [raw.decode("latin-1")]
        if path.suffix == ".parquet":
            texts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
        for secret in secrets:
            if any(secret in text for text in texts):
                found.append(f"{path.relative_to(store)}: {secret}")
    return found


def _secret_trace(tmp_path: Path, error_lines: list[str] | None = None) -> Path:
    header = {
        "schemaVersion": 1,
        "metadata": {"system": {"env": {"HF_TOKEN": HF, "PATH": "/usr/bin", "WANDB_API_KEY": "wandb-0123456789",
                                        "DB_PASSWORD": "hunter2-pw"}}},
        "distributedInfo": {"rank": 0, "world_size": 1},
    }
    trailer: dict[str, object] = {
        "INFO": ["INFO:2024-05-22 17:15:22 1:1 launcher.py:12] started with API_KEY=supersecret ok",
                 f"INFO:2024-05-22 17:15:23 1:1 hub.py:3] using token {HF}"],
        "traceName": "/tmp/run.json",
    }
    if error_lines is not None:
        trailer["ERROR"] = error_lines
    return write_kineto(tmp_path / "secret.json", small_kineto_events(2), header, trailer)


def test_secrets_do_not_reach_the_store(tmp_path: Path) -> None:
    """HF_TOKEN, API_KEY=..., *_API_KEY and *_PASSWORD are redacted everywhere; PATH survives."""
    trace = _secret_trace(tmp_path)
    for secret in SECRETS:
        assert secret in trace.read_text()
    out = tmp_path / "s.traceview"
    result = ingest([trace], out)
    assert _leaks(out, SECRETS) == []
    assert not any(secret in w for w in result.warnings for secret in SECRETS)
    meta = dict(store_rows(out, "metadata", "key, value", "WHERE kind = 'trace'"))
    env = json.loads(meta["metadata"])["system"]["env"]
    assert env == {"HF_TOKEN": REDACTED, "PATH": "/usr/bin", "WANDB_API_KEY": REDACTED, "DB_PASSWORD": REDACTED}
    info = json.loads(meta["INFO"])
    assert info[0].endswith(f"API_KEY={REDACTED} ok") and info[1].endswith(f"using token {REDACTED}")
    assert len(store_rows(out, "slices", "1")) == 5


def test_secrets_in_profiler_error_lines_do_not_leak(tmp_path: Path) -> None:
    """An ERROR line with a secret is reported as a warning, but redacted like INFO lines."""
    trace = _secret_trace(tmp_path, ["ERROR:2024-05-22 17:15:22 1:1 auth.py:9] login failed for API_KEY=supersecret"])
    out = tmp_path / "s.traceview"
    result = CliRunner().invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert result.exit_code == 0
    assert "profiler reported" in result.stderr
    assert "supersecret" not in result.output
    assert _leaks(out, SECRETS) == []


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        ("abc", "HF_TOKEN", REDACTED),
        ("abc", "aws_secret_access_key", REDACTED),
        ("abc", "Authorization", REDACTED),
        ("/usr/bin:/bin", "PATH", "/usr/bin:/bin"),
        (8, "world_size", 8),
        (f"x {HF} y", "cmd", f"x {REDACTED} y"),
        ("ghp_" + "a" * 36, "", REDACTED),
        ("sk-" + "b" * 40, "note", REDACTED),
        ("AKIA" + "C" * 16, "", REDACTED),
        ("python train.py --lr=0.1 OPENAI_API_KEY=sk123 --token=abc", "cmdline",
         f"python train.py --lr=0.1 OPENAI_API_KEY={REDACTED} --token={REDACTED}"),
    ],
)
def test_redact_values(value: object, key: str, expected: object) -> None:
    """Secret-looking keys and values are replaced; ordinary ones are kept."""
    assert redact(value, key) == expected


def test_redact_nested() -> None:
    """Dicts and lists are walked; structure is kept."""
    value = {"env": {"GITHUB_TOKEN": "x", "HOME": "/root"}, "argv": ["run", f"--hf={HF}"], "n": 3}
    assert redact(value) == {"env": {"GITHUB_TOKEN": REDACTED, "HOME": "/root"}, "argv": ["run", f"--hf={REDACTED}"],
                             "n": 3}
