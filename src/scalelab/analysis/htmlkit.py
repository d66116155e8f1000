"""Small pieces of self-contained HTML: escaped tables, embedded PNGs, inline charts and styles.

Nothing here refers to anything outside the page, so a report opens offline
and can be mailed as one file: plotly.js (from the `plotly` package's bundled
`plotly.min.js`) is inlined. The inline scripts mark `<body>` with
`data-images-ok` once every image has decoded, `data-charts` and
`data-charts-rendered` once every chart is drawn, and `data-errors` with the
number of script errors, which the browser test reads.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1180px;padding:18px 28px;color:#1f2933;background:#fff;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid
#d9e2ec;padding-bottom:.2em}h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.9em}
th,td{border:1px solid #d9e2ec;padding:3px 9px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#f0f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap;overflow-wrap:normal}
.badge{display:inline-block;padding:4px 14px;border-radius:4px;font-weight:700;color:#fff}
.valid{background:#2e7d32}.invalid{background:#c62828}.met{color:#2e7d32;font-weight:600}
.missed{color:#c62828;font-weight:600}.muted{color:#627d98}.estimate{background:#fff4e5;
border-left:4px solid #ef6c00;padding:6px 10px}figure{margin:0 0 1.2em}img{max-width:100%;
border:1px solid #e4e7eb}figcaption{font-size:.85em;color:#627d98}
ul.reasons li{color:#c62828}code{background:#f0f4f8;padding:0 3px}
.keys{display:flex;flex-wrap:wrap;gap:6px 10px;margin:.6em 0}.keys div{background:#f0f4f8;
border-radius:4px;padding:4px 10px;font-size:.9em}.keys b{color:#334e68;font-weight:600}
.chart{min-height:300px;border:1px solid #e4e7eb;margin-bottom:4px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}
"""

CHARTS_SCRIPT = """
(function () {
  var errors = 0;
  function mark(name, value) { document.body.setAttribute(name, String(value)); }
  window.addEventListener("error", function () { errors += 1; mark("data-errors", errors); });
  mark("data-errors", 0);
  var specs = JSON.parse(document.getElementById("chart-data").textContent);
  mark("data-charts", specs.length);
  if (typeof Plotly === "undefined") { mark("data-charts-rendered", 0); return; }
  var linked = [], syncing = false;
  function share(source, event) {
    var update = null;
    if ("xaxis.range[0]" in event) {
      update = {"xaxis.range": [event["xaxis.range[0]"], event["xaxis.range[1]"]]};
    } else if (event["xaxis.range"]) {
      update = {"xaxis.range": event["xaxis.range"]};
    } else if (event["xaxis.autorange"]) {
      update = {"xaxis.autorange": true};
    }
    if (!update || syncing) { return; }
    syncing = true;
    Promise.all(linked.filter(function (o) { return o !== source; })
      .map(function (o) { return Plotly.relayout(o, update); }))
      .then(function () { syncing = false; }, function () { syncing = false; });
  }
  var config = {responsive: true, displaylogo: false, toImageButtonOptions: {format: "svg"}};
  Promise.all(specs.map(function (c) {
    var el = document.getElementById(c.id);
    return Plotly.newPlot(el, c.data, c.layout, config).then(function () {
      if (c.linked) {
        linked.push(el);
        el.on("plotly_relayout", function (event) { share(el, event); });
      }
      return el.querySelector(".main-svg") ? 1 : 0;
    });
  })).then(function (drawn) {
    mark("data-charts-rendered", drawn.reduce(function (a, b) { return a + b; }, 0));
  }, function () { errors += 1; mark("data-errors", errors); });
})();
"""

IMAGES_OK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-images-ok", ok ? "true" : "false");
});
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, charts: list[dict[str, Any]] | None = None) -> str:
    """A whole page; with `charts` (Plotly figure specs), plotly.js inlined to draw them."""
    scripts = f"<script>{IMAGES_OK_SCRIPT}</script>"
    if charts:
        data = json.dumps(charts, separators=(",", ":")).replace("</", "<\\/")
        scripts += (
            f"<script>{plotly_js()}</script>"
            f'<script type="application/json" id="chart-data">{data}</script>'
            f"<script>{CHARTS_SCRIPT}</script>"
        )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
        f"{scripts}\n</body></html>\n"
    )


def plotly_js() -> str:
    """The bundled plotly.min.js of the `plotly` package (read as a file, not imported)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("plotly")
    bundle = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"
    return bundle.read_text(encoding="utf-8").replace("</script", "<\\/script")


def has_plotly() -> bool:
    return importlib.util.find_spec("plotly") is not None


def chart(chart_id: str, caption: str) -> str:
    """The place of one chart, drawn by the page's script from its spec."""
    return (
        f'<figure><div class="chart" id="{esc(chart_id)}"></div>'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{esc(title)}</h2>\n" + "\n".join(p for p in parts if p) + "</section>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table of escaped cells; numbers are right-aligned. Empty rows give a note instead."""
    body = ["<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows]
    if not body:
        return '<p class="muted">no data</p>'
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def pairs_table(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of label and value."""
    rows = [f"<tr><th>{esc(k)}</th>{_cell(v)}</tr>" for k, v in pairs]
    return f"<table>{''.join(rows)}</table>" if rows else '<p class="muted">no data</p>'


def image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def number(value: Any, digits: int = 2, unit: str = "", scale: float = 1.0) -> str:
    """A number for people: '–' when missing, fixed digits, an optional unit."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return "–" if isinstance(value, float) else str(value)
    shown = f"{value * scale:,.{digits}f}"
    return f"{shown} {unit}".rstrip()


def ms(value: Any) -> str:
    return number(value, 1, "ms", 1000)


def _cell(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="num">{esc(number(value, 0 if isinstance(value, int) else 3))}</td>'
    if isinstance(value, Raw):
        return f"<td>{value.markup}</td>"
    return f"<td>{esc('–' if value is None else value)}</td>"


class Raw:
    """Markup that a table cell shows as is (already escaped by its maker)."""

    def __init__(self, markup: str):
        self.markup = markup
