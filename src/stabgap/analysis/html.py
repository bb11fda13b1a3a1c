"""report.html: the report as one self-contained page that works offline.

Its text and tables are report.md's, its figures the PNGs, embedded as data; the accuracy
curves are drawn again in the page by a short script of its own (no library, nothing
fetched), so that a reader can toggle groups, zoom on a switch (buttons, or drag across the
plot; a double click resets) and read a value under the pointer.

The page's state can also be set by its address (``report.html#task=2&hide=nd&zoom=3``:
task 2's curves, the group ``nd`` hidden, zoomed on the switch to task 3), which is how the
tests drive it in a headless browser; after each drawing the page notes what it drew in
``data-`` attributes of its body.
"""

from __future__ import annotations

import base64
import html
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import to_hex


def curve_data(
    groups: Mapping[str, Sequence],
    n_tasks: int,
    colors: Mapping[str, Any] | None = None,
    keys: Mapping[str, str] | None = None,
    baseline: str | None = None,
) -> dict:
    """Each group's accuracy per task, mean and std over seeds at each evaluation point, its
    colour in the report's figures (`colors`, any matplotlib colour; tab10's by position
    where a group has none), its key (`keys`: an address may hide a group by either, as
    --baseline names it) and whether it is the `baseline` (drawn above the others)."""
    colors, keys = colors or {}, keys or {}
    out = {"tasks": n_tasks, "groups": []}
    for label, runs in groups.items():
        first = runs[0]
        acc = np.stack([np.asarray(r.acc, dtype=float) for r in runs])  # (seeds, points, tasks)
        with warnings.catch_warnings():  # a task not yet seen has no value to average
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(acc, axis=0)
            std = np.nanstd(acc, axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)

        def column(a: np.ndarray, t: int) -> list:
            return [None if not np.isfinite(v) else round(float(v), 2) for v in a[:, t]]

        out["groups"].append(
            {
                "label": label,
                "key": keys.get(label, label),
                "baseline": label == baseline,
                "color": to_hex(colors.get(label, f"C{len(out['groups']) % 10}")),
                "seeds": len(runs),
                "x": [int(s) for s in first.eval_steps],
                "switches": [int(e) for e in list(first.ends)[:-1]],
                "mean": [column(mean, t) for t in range(mean.shape[1])],
                "std": [column(std, t) for t in range(std.shape[1])],
            }
        )
    return out


def write_html(out: Path, markdown: str, curves: dict, title: str = "Stability-gap report") -> Path:
    """Write ``out/report.html`` from the report's Markdown (figures read from `out`)."""
    blocks = [_block(b.strip(), out) for b in markdown.split("\n\n") if b.strip()]
    blocks.insert(2, '<div id="curves"></div>')  # after the title and the study's summary
    body = "\n".join(blocks)
    data = json.dumps(curves, separators=(",", ":")).replace("</", "<\\/")
    page = (
        PAGE.replace("{title}", html.escape(title))
        .replace("{body}", body)
        .replace("{data}", data)
        .replace("{script}", SCRIPT)
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


# --- the Markdown report.md uses, as HTML ------------------------------------------------------
def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"&lt;(/?)(sub|sup)&gt;", r"<\1\2>", text)  # Table 1's subscripts
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _block(block: str, out: Path) -> str:
    if block.startswith("#"):
        level = len(block) - len(block.lstrip("#"))
        return f"<h{level}>{_inline(block[level:].strip())}</h{level}>"
    if block.startswith("|"):
        rows = [r.strip().strip("|").split(" | ") for r in block.splitlines()]
        head, body = rows[0], rows[2:]
        cells = "".join(f"<th>{_inline(c.strip())}</th>" for c in head)
        lines = [f"<tr>{cells}</tr>"]
        lines += [
            "<tr>" + "".join(f"<td>{_inline(c.strip())}</td>" for c in r) + "</tr>" for r in body
        ]
        return "<table>" + "".join(lines) + "</table>"
    if block.startswith("- "):
        items = [line[2:] for line in block.splitlines() if line.startswith("- ")]
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>"
    image = re.fullmatch(r"!\[(.*)\]\((.+\.png)\)", block, flags=re.S)
    if image:
        png = base64.b64encode((out / image[2]).read_bytes()).decode()
        return f'<img alt="{html.escape(image[1])}" src="data:image/png;base64,{png}">'
    if block.startswith("*") and block.endswith("*"):
        return f'<p class="caption">{_inline(block[1:-1])}</p>'
    return f"<p>{_inline(block)}</p>"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
img { max-width: 100%; } .caption { font-style: italic; color: #444; }
#curves { border: 1px solid #ddd; padding: 0.5em; margin: 1em 0; }
#curves canvas { width: 100%; height: 420px; cursor: crosshair; }
#curves label { margin-right: 1em; font-size: 0.85em; white-space: nowrap; }
#tip { position: fixed; pointer-events: none; background: #fff; border: 1px solid #999;
       font-size: 0.8em; padding: 0.3em; display: none; }
</style></head><body>
{body}
<div id="tip"></div>
<script type="application/json" id="curve-data">{data}</script>
<script>{script}</script>
</body></html>
"""

# The interactive accuracy curves: stabgap's own few lines (report.js beside this module),
# inlined into the page so that it needs nothing else.
SCRIPT = (Path(__file__).with_name("report.js")).read_text(encoding="utf-8")
