"""The HTML every report page shares: page frame and style, escaped tables, embedded images."""

from __future__ import annotations

import base64
import html
import math
import time
from pathlib import Path

REPORT = "report.html"
REFRESH_SECONDS = 5

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;image-rendering:pixelated}
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid figure{margin:0}.grid img{min-width:96px}figcaption{font-size:.85em;color:#555}
.status{padding:.4em .8em;background:#eef;display:inline-block;border-radius:4px}
.warning{padding:.4em .8em;background:#fde8cc;display:inline-block;border-radius:4px}.note{color:#a04000}
table.sortable{font-size:.85em}table.sortable th{cursor:pointer}.thumbs td{padding:2px;text-align:center}.thumbs img{width:64px}
"""
# Counts the embedded images that decoded, so a headless browser can check the page; a click on
# a column head of a sortable table sorts its rows by that column (numbers as numbers).
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    var heads = table.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var rows = Array.prototype.slice.call(table.rows, 1);
        var down = th.getAttribute('data-order') !== 'down';
        var key = function (r) { var t = r.cells[col].textContent, v = parseFloat(t); return isNaN(v) ? t : v; };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
          return down ? -c : c;
        });
        th.setAttribute('data-order', down ? 'down' : 'up');
        rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
      });
    });
  });
});
"""


class Html(str):
    """Markup that :func:`table_html` puts into a cell as it is (everything else is escaped)."""


def image_html(png: Path | bytes, alt: str) -> str:
    """An ``<img>`` with the PNG (a file or its bytes) embedded as base64."""
    data = base64.b64encode(png if isinstance(png, bytes) else png.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def figure_html(png: Path | bytes, caption: str) -> str:
    if isinstance(png, Path) and not png.is_file():
        return ""
    return f"<figure>{image_html(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def table_html(header: list[str], rows: list[list], css_class: str = "") -> str:
    """A table of escaped cells (:class:`Html` cells as they are); ``css_class`` "sortable" makes
    its column heads sort the rows on a click, "thumbs" keeps its images small."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Html) else html.escape(str(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<table{attribute}><tr>{head}</tr>{body}</table>"


def page(title: str, body: str, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{meta}<title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body><h1>{html.escape(title)}</h1>{body}"
            f"<footer><p><small>written {time.strftime('%Y-%m-%d %H:%M:%S')} by xdream report</small></p></footer>"
            "</body></html>\n")


def fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v)


def fixed(value: float | None) -> str:
    """A ratio or fraction with two decimals; "n/a" for None, NaN or infinity."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"
