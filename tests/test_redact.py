"""Secrets in trace metadata (environment dumps, log lines) never reach the store."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import small_kineto_events, store_rows, write_kineto, x_event
from typer.testing import CliRunner

from traceview.cli import app
from traceview.parsers.errors import TraceFormatError
from traceview.parsers.redact import (
    CANDIDATE_PATTERN,
    REDACTED,
    duckdb_redacted,
    redact,
    redact_array,
    redact_columns,
    redact_text,
    register_duckdb,
)
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
        "metadata": {
            "system": {
                "env": {
                    "HF_TOKEN": HF,
                    "PATH": "/usr/bin",
                    "WANDB_API_KEY": "wandb-0123456789",
                    "DB_PASSWORD": "hunter2-pw",
                }
            }
        },
        "distributedInfo": {"rank": 0, "world_size": 1},
    }
    trailer: dict[str, object] = {
        "INFO": [
            "INFO:2024-05-22 17:15:22 1:1 launcher.py:12] started with API_KEY=supersecret ok",
            f"INFO:2024-05-22 17:15:23 1:1 hub.py:3] using token {HF}",
        ],
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
        (
            "python train.py --lr=0.1 OPENAI_API_KEY=sk123 --token=abc",
            "cmdline",
            f"python train.py --lr=0.1 OPENAI_API_KEY={REDACTED} --token={REDACTED}",
        ),
    ],
)
def test_redact_values(value: object, key: str, expected: object) -> None:
    """Secret-looking keys and values are replaced; ordinary ones are kept."""
    assert redact(value, key) == expected


def test_redact_nested() -> None:
    """Dicts and lists are walked; structure is kept."""
    value = {"env": {"GITHUB_TOKEN": "x", "HOME": "/root"}, "argv": ["run", f"--hf={HF}"], "n": 3}
    assert redact(value) == {
        "env": {"GITHUB_TOKEN": REDACTED, "HOME": "/root"},
        "argv": ["run", f"--hf={REDACTED}"],
        "n": 3,
    }


# Each form of secret the redaction knows, with the secret in it that must not survive.
SECRET_FORMS = [
    ("MYTOKEN=s3cr3tvalue1", "s3cr3tvalue1"),
    ("export GITHUBTOKEN=s3cr3tvalue2", "s3cr3tvalue2"),
    ("SECRETKEY=s3cr3tvalue3 next", "s3cr3tvalue3"),
    ("DBPASS=s3cr3tvalue4", "s3cr3tvalue4"),
    ("DB_PASS='s3cr3t value5'", "s3cr3t value5"),
    ("GPG_PASSPHRASE=s3cr3tvalue6", "s3cr3tvalue6"),
    ("aws_secret_access_key: s3cr3tvalue7", "s3cr3tvalue7"),
    ("password: two s3cr3t words8, user: bob", "s3cr3t words8"),
    ('{"api_key": "s3cr3tvalue9", "n": 1}', "s3cr3tvalue9"),
    ('{"config": "{\\"api_key\\": \\"s3cr3tvalue10\\"}"}', "s3cr3tvalue10"),
    ("{'client_secret': 's3cr3tvalue11'}", "s3cr3tvalue11"),
    ("train.py --password s3cr3tvalue12 --lr 0.1", "s3cr3tvalue12"),
    ("train.py --token s3cr3tvalue13", "s3cr3tvalue13"),
    ("train.py --hf-token=s3cr3tvalue14", "s3cr3tvalue14"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.s3cr3t15", "eyJhbGciOiJIUzI1NiJ9"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA==' x", "dXNlcjpwYXNzd29yZA=="),
    ("sent bearer abcdefghijklmnop16 upstream", "abcdefghijklmnop16"),
    ("clone https://user:s3cr3tvalue17@github.com/org/repo", "s3cr3tvalue17"),
    ("postgres://admin:s3cr3tvalue18@db:5432/runs", "s3cr3tvalue18"),
    ("https://example.com/x?access_token=s3cr3tvalue19&page=2", "s3cr3tvalue19"),
    ("using glpat-" + "a1" * 10, "glpat-" + "a1" * 10),
    ("nvapi-" + "Bc3" * 15, "nvapi-" + "Bc3" * 15),
    ("hub " + HF, HF),
    ("key sk-proj-" + "x9" * 20, "sk-proj-" + "x9" * 20),
    ("ghp_" + "Q" * 36, "ghp_" + "Q" * 36),
    ("AKIA" + "ABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEs3cr3tbody\n-----END RSA PRIVATE KEY-----", "MIIEs3cr3tbody"),
    ('{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEs3cr3tcut', "MIIEs3cr3tcut"),
    ("SESSION_ID=s3cr3tvalue20; COOKIE=s3cr3tvalue21", "s3cr3tvalue2"),
    ("Schlüssel İ DB_PASSWORD=gehéim22 ✓", "gehéim22"),
]
LOOK_ALIKES = [
    "num_tokens=128",
    "max_tokens: 4096",
    '{"input_tokens": 512, "output_tokens": 16}',
    "tokenizer=gpt2",
    "token_ids: [1, 2, 3]",
    "passes=2",
    "password_hash_algo=bcrypt",
    "sk-layer",
    "ms-key",
    "aten::embedding_backward(token_ids)",
    "void sort_keys_kernel<int>(int*)",
    "PWD=/home/user/run",
    "https://github.com/org/repo",
    "--max-tokens 4096",
    "bypass=1",
    "author: Ada",
    "größe İ num_tokens=128 ✓",
]


@pytest.mark.parametrize(("text", "secret"), SECRET_FORMS)
def test_secret_forms_are_redacted(text: str, secret: str) -> None:
    """Every form of secret is replaced; the text around it stays."""
    cleaned = redact_text(text)
    assert secret not in cleaned and REDACTED in cleaned


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_stay(text: str) -> None:
    """Counts and names that merely contain a secret word are kept as they are."""
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "key",
    [
        "MYTOKEN",
        "GITHUBTOKEN",
        "SECRETKEY",
        "DBPASS",
        "DB_PASS",
        "GPG_PASSPHRASE",
        "aws_secret_access_key",
        "api-key",
        "refresh_token",
        "SECRET_KEY_BASE",
    ],
)
def test_secret_keys(key: str) -> None:
    """Env keys with and without separators name secrets."""
    assert redact({key: "v4lue", "nested": {key: 7}}) == {key: REDACTED, "nested": {key: REDACTED}}


@pytest.mark.parametrize(
    "key",
    [
        "num_tokens",
        "max_tokens",
        "input_tokens",
        "tokenizer",
        "token_ids",
        "passes",
        "password_hash_algo",
        "PWD",
        "keys",
        "author",
    ],
)
def test_look_alike_keys_stay(key: str) -> None:
    """Counts and ordinary names under secret-looking keys keep their values."""
    assert redact({key: 128, "s": {key: "gpt2"}}) == {key: 128, "s": {key: "gpt2"}}


def test_secret_flag_in_an_argv_list() -> None:
    """`["--token", "x"]`: the argument after a secret flag is redacted."""
    assert redact(["run", "--token", "abc", "--max-tokens", "5"]) == ["run", "--token", REDACTED, "--max-tokens", "5"]


def test_redacted_json_stays_json() -> None:
    """Secrets in JSON text (args) are replaced by a JSON string: the text still parses."""
    args = {"api_key": 1234, "cmd": f"run --token abc {HF}", "auth": {"password": "pw"}, "inner": '{"token": "x"}'}
    cleaned = json.loads(redact_text(json.dumps(args)))
    assert cleaned["api_key"] == REDACTED and cleaned["cmd"] == f"run --token {REDACTED} {REDACTED}"
    assert cleaned["auth"] == {"password": REDACTED} and json.loads(cleaned["inner"]) == {"token": REDACTED}


def test_vectorised_redaction_agrees_with_redact_text() -> None:
    """The RE2 pre-filters (pyarrow, DuckDB) pass every text redact_text changes, and give its result."""
    texts = [text for text, _ in SECRET_FORMS] + LOOK_ALIKES + ["aten::mm", "", None]
    expected = [None if text is None else redact_text(text) for text in texts]
    plain = pa.array(texts, pa.string())
    assert redact_array(plain).to_pylist() == expected
    assert redact_array(plain.dictionary_encode()).to_pylist() == expected
    assert redact_array(plain, repetitive=True).to_pylist() == expected
    repeated = pa.array(texts * 8, pa.string())  # few distinct values: searched once each
    assert redact_array(repeated, repetitive=True).to_pylist() == expected * 8
    encoded = repeated.dictionary_encode()
    shared = pa.chunked_array([encoded[:100], encoded[100:]])
    dictionaries: dict = {}
    assert redact_array(shared, dictionaries=dictionaries).to_pylist() == expected * 8
    assert len(dictionaries) == 1  # the dictionary both pieces share, searched once
    assert redact_array(pa.chunked_array([plain[:5], plain[5:]])).to_pylist() == expected
    assert redact_columns(pa.table({"a": plain, "n": range(len(texts))})).column("a").to_pylist() == expected
    with duckdb.connect() as con:
        register_duckdb(con)
        register_duckdb(con)  # once per database, however often asked
        rows = con.execute(f"SELECT {duckdb_redacted('t')} FROM (SELECT unnest(?) AS t)", [texts]).fetchall()
    assert [row[0] for row in rows] == expected
    candidate = re.compile(CANDIDATE_PATTERN, re.IGNORECASE)
    assert all(candidate.search(text) for text, _ in SECRET_FORMS)


def test_trace_format_errors_are_redacted() -> None:
    """An error line quoting the input carries no secret."""
    error = TraceFormatError("t.json", f"unexpected value 'Authorization: Bearer {HF}' at byte 9")
    assert HF not in str(error) and str(error) == f"t.json: unexpected value 'Authorization: {REDACTED}' at byte 9"


# Secrets planted in every part of a Kineto trace.
KERNEL_SECRET = "s3cr3t-in-kernel-name"
ARGS_SECRET = "s3cr3t-in-op-args"
NESTED_SECRET = "s3cr3t-in-json-in-args"
INSTANT_SECRET = "s3cr3t-in-instant"
PROCESS_SECRET = "s3cr3t-in-process-name"
ENV_SECRET = "s3cr3t-in-env"
BEARER = "eyJhbGciOiJIUzI1NiJ9.s3cr3t-bearer"
PLANTED = [KERNEL_SECRET, ARGS_SECRET, NESTED_SECRET, INSTANT_SECRET, PROCESS_SECRET, ENV_SECRET, BEARER, HF]


def _trace_with_planted_secrets(tmp_path: Path) -> Path:
    events = small_kineto_events(2)
    events.append(
        x_event(
            f"void attn_kernel<GITHUBTOKEN={KERNEL_SECRET}>",
            "1712195495519700.5",
            "3.0",
            cat="kernel",
            pid=0,
            tid=7,
            args={"device": 0, "stream": 7},
        )
    )
    events.append(
        x_event(
            "aten::generate",
            "1712195495519701.5",
            "2.0",
            args={
                "api_key": ARGS_SECRET,
                "max_tokens": 4096,
                "num_tokens": 128,
                "config": json.dumps({"password": NESTED_SECRET}),
                "url": f"https://x:{HF}@h",
            },
        )
    )
    events.append(
        {
            "name": f"checkpoint --token {INSTANT_SECRET}",
            "ph": "i",
            "s": "t",
            "pid": 100,
            "tid": 100,
            "ts": "1712195495519702.0",
            "args": {},
        }
    )
    events.append(
        {"name": "process_name", "ph": "M", "pid": 100, "tid": 0, "args": {"name": f"python DBPASS={PROCESS_SECRET}"}}
    )
    header = {
        "schemaVersion": 1,
        "metadata": {"env": {"MYTOKEN": ENV_SECRET, "max_tokens": "4096"}},
        "distributedInfo": {"rank": 0, "world_size": 1},
    }
    trailer = {"ERROR": [f"ERROR:2024-05-22 17:15:22 1:1 hub.py:9] request failed: Authorization: Bearer {BEARER}"]}
    return write_kineto(tmp_path / "planted.json", events, header, trailer)


def test_planted_secrets_reach_no_store_file_report_or_output(tmp_path: Path) -> None:
    """A secret in a kernel name, op args, JSON inside args, an instant, a process name, the env
    metadata and a profiler ERROR line is in no Parquet file, manifest, warning, report or output line;
    the counts beside them stay."""
    trace = _trace_with_planted_secrets(tmp_path)
    for secret in PLANTED:
        assert secret in trace.read_text()
    out, report = tmp_path / "s.traceview", tmp_path / "report.json"
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", str(trace), "-o", str(out)])
    assert ingested.exit_code == 0, ingested.output
    assert "profiler reported" in ingested.stderr and f"Authorization: {REDACTED}" in ingested.stderr
    analysed = runner.invoke(app, ["analyze", str(out), "--json", str(report)])
    assert analysed.exit_code == 0, analysed.output
    assert _leaks(out, PLANTED) == []
    for text in (ingested.output, analysed.output, report.read_text()):
        assert [s for s in PLANTED if s in text] == []
    args = json.loads(store_rows(out, "slices", "args", "WHERE name = 'aten::generate'")[0][0])
    assert args["max_tokens"] == 4096 and args["num_tokens"] == 128 and args["api_key"] == REDACTED
    assert store_rows(out, "slices", "count(*)", "WHERE name = 'void attn_kernel<GITHUBTOKEN=<redacted>'") == [(1,)]


def _ascend_dump_with_secrets(tmp_path: Path) -> Path:
    """The corpus's torch_npu db dump, with a secret appended to every string of the database, plus a
    kernel_details.csv dump with secrets in its text columns."""
    source = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "ascend" / "torch_npu_2025_db"
    dump = tmp_path / "db" / "rank0_ascend_pt"
    shutil.copytree(source / "level1" / "rank0_ascend_pt", dump)
    with sqlite3.connect(dump / "ASCEND_PROFILER_OUTPUT" / "ascend_pytorch_profiler_0.db") as con:
        con.execute("UPDATE STRING_IDS SET value = value || ' api_key=s3cr3t-in-db'")
    return dump


def test_planted_secrets_in_ascend_inputs_reach_no_store_file(tmp_path: Path) -> None:
    """Secrets in an Ascend db's strings and in a kernel_details.csv's text columns are redacted."""
    header = "Step Id,Name,Type,Accelerator Core,Start Time(us),Duration(us),Wait Time(us),Block Dim,Input Shapes\n"
    csv_path = tmp_path / "csv" / "kernel_details.csv"
    csv_path.parent.mkdir()
    csv_path.write_text(
        header + f"50,gemm {HF},DBPASS=s3cr3t-in-type,AI_CORE,1736405443881410.320\t,50.6,0,0,"
        '"--token s3cr3t-in-shapes"\n'
    )
    csv_store = ingest([csv_path], tmp_path / "csv.traceview").store
    assert _leaks(csv_store, [HF, "s3cr3t-in-type", "s3cr3t-in-shapes"]) == []
    assert store_rows(csv_store, "slices", "name") == [(f"gemm {REDACTED}",)]
    dump = _ascend_dump_with_secrets(tmp_path)
    db_store = ingest([dump], tmp_path / "db.traceview").store
    assert _leaks(db_store, ["s3cr3t-in-db"]) == []
    assert store_rows(db_store, "slices", "count(*)", f"WHERE name LIKE '%api_key={REDACTED}'")[0][0] > 0
