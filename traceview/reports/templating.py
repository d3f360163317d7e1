"""HTML pages from jinja2 templates (`traceview/reports/templates/`), one escape policy for all.

Autoescaping is on for every template: text from a trace is escaped wherever it is placed. Markup
traceview builds itself enters only through the filters below (`figure`, `script_json`), which
escape what they embed.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jinja2
import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from traceview.reports.safe import plotly_safe, script_json

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:8px 0 24px}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;max-width:420px;vertical-align:top}
td{overflow-wrap:break-word}.wide{overflow-x:auto}
th{background:#f4f4f4;overflow-wrap:normal;word-break:normal;hyphens:none}
th.num,td.num{text-align:right}
details summary{cursor:pointer}td details ul{margin:2px 0;padding-left:16px}
p.empty{margin:6px 0;color:#555}p.note{font-size:12px;color:#555;margin-top:-18px}
.quality .kind{display:inline-block;min-width:80px;color:#a15c00}
.critical{color:#b00020;font-weight:bold}.warning{color:#a15c00}.info{color:#005f8f}
.chart{width:100%;min-height:380px}
"""

_DIV_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def figure_markup(fig: Any, div_id: str) -> Markup:
    """A div plus the script that draws plotly figure `fig` into it (labels escaped for plotly, the
    JSON safely embedded in the script element)."""
    if not _DIV_ID.fullmatch(div_id):  # ids are ours, never trace text; checked so the quoting below holds
        raise ValueError(f"not a chart id: {div_id!r}")
    spec = script_json(plotly_safe(json.loads(pio.to_json(fig, validate=False))))
    div = Markup('<div id="{}" class="chart"></div>').format(div_id)
    script = (
        f"<script>(function(){{var f={spec};Plotly.newPlot('{div_id}',f.data,f.layout,"
        "{displaylogo:false,responsive:true});})();</script>"
    )
    return div + Markup(script)


@functools.cache
def environment() -> jinja2.Environment:
    """The one template environment: autoescaping on, undefined names an error."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("traceview.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["figure"] = figure_markup
    env.filters["script_json"] = lambda value: Markup(script_json(value))
    env.globals["style"] = Markup(STYLE)
    env.globals["plotlyjs"] = functools.cache(get_plotlyjs)
    return env


def render(template: str, **context: Any) -> str:
    """Render `templates/<template>` with `context`; the page ends with one newline."""
    return environment().get_template(template).render(**context).rstrip("\n") + "\n"
