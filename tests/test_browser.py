"""The HTML reports in a real browser: headless Chromium draws every chart, with no script errors.

Needs Debian's `chromium` package (.ci/run installs it); skips with that name when it is absent. A screenshot
of each report is kept under test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from traceview.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_traces"
ARTIFACTS = ROOT / "test-artifacts"
runner = CliRunner()

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless browser test needs the Debian package `chromium` (apt-get install chromium)"
)

# Collects errors from the start (window.onerror and console.error) ...
PROBE_HEAD = """<script>window.__tvErrors=[];
window.addEventListener('error',function(e){window.__tvErrors.push(String(e.message||e));});
window.addEventListener('unhandledrejection',function(e){window.__tvErrors.push('unhandled: '+String(e.reason));});
(function(){var ce=console.error;console.error=function(){
  window.__tvErrors.push(Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};})();</script>"""
# ... and once plotly had time to draw, writes per chart div its SVG roots and drawn marks into the DOM.
PROBE_BODY = """<script>window.addEventListener('load',function(){setTimeout(function(){
var out={charts:{},errors:window.__tvErrors};
document.querySelectorAll('div.chart').forEach(function(d){out.charts[d.id]={
  svg:d.querySelectorAll('svg.main-svg').length,marks:d.querySelectorAll('g.trace, g.slice').length,
  text:Array.prototype.map.call(d.querySelectorAll('text'),function(t){return t.textContent;}).join('\\n'),
  bold:d.querySelectorAll('tspan[style*="bold"]').length};});
out.links=Array.prototype.map.call(document.querySelectorAll('a'),function(a){
  return a.getAttribute('href')||a.getAttribute('xlink:href')||'';});
var p=document.createElement('pre');p.id='tv-check';p.textContent=JSON.stringify(out);
document.body.appendChild(p);},2000);});</script>"""


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
         "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def _render(html: Path, tmp_path: Path, screenshot: Path | None = None) -> dict:
    text = html.read_text(encoding="utf-8")
    probed = tmp_path / f"probed-{html.name}"
    probed.write_text(text.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_BODY + "</body>", 1),
                      encoding="utf-8")
    dom = _chromium(["--dump-dom", probed.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines()
               if "Uncaught" in line or re.search(r":(ERROR|FATAL):CONSOLE", line)]
    assert not console, console
    match = re.search(r'<pre id="tv-check">(.*?)</pre>', dom.stdout, re.S)
    assert match, "the probe never ran: the page did not load"
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = _chromium([f"--screenshot={screenshot}", "--window-size=1400,2600", html.as_uri()], tmp_path)
        assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    return json.loads(html_lib.unescape(match.group(1)))


def _chart_ids(html: Path) -> list[str]:
    return re.findall(r'<div id="([^"]+)" class="chart">', html.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("name", "target", "expected"),
    [
        ("report_h200", SAMPLES / "longctx_h200" / "longctx_h200.pt.trace.json.gz",
         {"flame0", "tp_prefill", "tp_decode", "tp_kv_cache", "tp_mix", "tp_bandwidth"}),
        ("report_real_cpu", SAMPLES / "real_cpu" / "tiny_decoder_cpu.pt.trace.json.gz", {"flame0"}),
        ("report_real_h200", SAMPLES / "real_h200" / "small_decoder_h200.pt.trace.json.gz",
         {"flame0", "tp_prefill", "tp_decode", "tp_kv_cache", "tp_mix", "tp_bandwidth"}),
    ],
)
def test_report_draws_every_chart(name: str, target: Path, expected: set[str], tmp_path: Path) -> None:
    html = tmp_path / f"{name}.html"
    result = runner.invoke(app, ["analyze", str(target), "--html", str(html), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    ids = _chart_ids(html)
    assert expected <= set(ids)
    check = _render(html, tmp_path, ARTIFACTS / f"{name}.png" if name == "report_h200" else None)
    assert check["errors"] == []
    assert set(check["charts"]) == set(ids)
    for chart_id, drawn in check["charts"].items():
        assert drawn["svg"] >= 1, f"{chart_id}: plotly drew no SVG"
        assert drawn["marks"] >= 1, f"{chart_id}: no traces or slices drawn"
    shutil.copyfile(html, ARTIFACTS / f"{name}.html")


def test_flame_and_throughput_pages_draw(tmp_path: Path) -> None:
    h200 = SAMPLES / "longctx_h200" / "longctx_h200.pt.trace.json.gz"
    ascend = SAMPLES / "longctx_910b" / "longctx_910b_ascend_pt"
    cache = str(tmp_path / "c")
    flame_html, tp_html = tmp_path / "flame.html", tmp_path / "throughput.html"
    assert runner.invoke(app, ["flame", str(ascend), "--weight", "device", "--html", str(flame_html),
                               "--cache-dir", cache]).exit_code == 0
    assert runner.invoke(app, ["throughput", str(h200), str(ascend), "--device-cost", "3.5", "--html", str(tp_html),
                               "--cache-dir", cache]).exit_code == 0
    for html, shot in ((flame_html, None), (tp_html, ARTIFACTS / "throughput.png")):
        check = _render(html, tmp_path, shot)
        assert check["errors"] == [] and check["charts"]
        assert all(d["svg"] >= 1 and d["marks"] >= 1 for d in check["charts"].values()), check


def test_hostile_names_show_as_text_and_make_no_links(tmp_path: Path) -> None:
    """A kernel named like an HTML injection is drawn as literal text: no link, no bold, no broken script."""
    from test_hardening_output import HTML_NAME, malicious_copy

    trace = malicious_copy("runtime_v1", tmp_path / "in")
    cache = str(tmp_path / "c")
    pages = {name: tmp_path / f"{name}.html" for name in ("report", "flame", "diff")}
    assert runner.invoke(app, ["analyze", str(trace), "--html", str(pages["report"]), "--cache-dir", cache]
                         ).exit_code == 0
    assert runner.invoke(app, ["flame", str(trace), "--weight", "device", "--min-share", "0", "--html",
                               str(pages["flame"]), "--cache-dir", cache]).exit_code == 0
    test = malicious_copy("runtime_v2", tmp_path / "in2")
    assert runner.invoke(app, ["diff", str(trace), str(test), "--html", str(pages["diff"]), "--cache-dir", cache]
                         ).exit_code == 0
    checks = {name: _render(page, tmp_path) for name, page in pages.items()}
    for name, check in checks.items():
        assert check["errors"] == [], name
        assert not [href for href in check["links"] if "evil" in href], name
        assert all(d["svg"] >= 1 for d in check["charts"].values()), name
    flame = checks["flame"]["charts"]["flame0"]
    assert f"[device] {HTML_NAME}" in flame["text"] and flame["bold"] == 0
