"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network).

Charts are drawn here as SVG from the report data: requests and errors over time, status
mix, latency distribution, uptime timeline, shop funnel and CDN cache status.  A Content
Security Policy forbids every fetch, so the page cannot reach the network even by mistake.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html import escape
from typing import Any

W, H = 920, 240  # chart size (viewBox units)
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 14, 34
COLORS = {
    "ok": "#4c9f70", "4xx": "#e0a030", "5xx": "#d1495b", "bar": "#3d7ab8",
    "up": "#4c9f70", "degraded": "#e0c040", "down": "#d1495b", "none": "#b8bcc4",
}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1d2330; }
body { margin: 0; background: #f4f5f7; }
header { background: #1d2330; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c6cad3; font-size: 13px; }
main { padding: 18px 28px 40px; max-width: 1200px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 18px; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 140px; box-shadow: 0 1px 2px #0002; }
.card b { display: block; font-size: 22px; }
.card span { color: #5b6273; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
section { background: #fff; border-radius: 8px; padding: 14px 18px; margin: 0 0 18px; box-shadow: 0 1px 2px #0002; }
section h2 { margin: 0 0 4px; font-size: 18px; }
section p.desc { margin: 0 0 10px; color: #5b6273; font-size: 13px; }
figure.chart { margin: 8px 0 14px; }
figure.chart figcaption { font-size: 13px; font-weight: 600; margin-bottom: 4px; }
svg.chart-svg { width: 100%; height: auto; background: #fbfbfc; border: 1px solid #e3e5ea; border-radius: 6px; }
svg text { font-size: 11px; fill: #5b6273; }
svg .axis { stroke: #c9ccd3; stroke-width: 1; }
.legend { font-size: 12px; color: #5b6273; }
.legend i { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; border-radius: 2px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 4px 0 14px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef2; vertical-align: top; }
th { background: #f7f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
h3 { font-size: 14px; margin: 12px 0 2px; }
.empty { color: #8a90a0; font-style: italic; font-size: 13px; }
.warn { background: #fff4d6; border-left: 4px solid #e0a030; padding: 8px 12px; margin-bottom: 14px; font-size: 13px; }
.tablewrap { overflow-x: auto; }
"""


# --- formatting -------------------------------------------------------------------------

def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, Decimal):
        return f"{v:,.2f}" if v != v.to_integral_value() or v.as_tuple().exponent < 0 else f"{int(v):,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


def human_bytes(n: float | int | None) -> str:
    if not n:
        return "0 B"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def _num(v: Any) -> float:
    if v is None:
        return 0.0
    return float(v)


def _label_time(v: Any, minutes: float) -> str:
    if not isinstance(v, dt.datetime):
        return str(v)
    if minutes >= 1440:
        return v.strftime("%Y-%m-%d")
    return v.strftime("%m-%d %H:%M")


# --- charts -----------------------------------------------------------------------------

def _svg(name: str, body: list[str], title: str, legend: list[tuple[str, str]] | None = None,
         height: int = H) -> str:
    leg = ""
    if legend:
        leg = '<div class="legend">' + "".join(
            f'<i style="background:{c}"></i>{escape(t)}' for t, c in legend
        ) + "</div>"
    return (
        f'<figure class="chart" id="chart-{name}"><figcaption>{escape(title)}</figcaption>'
        f'<svg class="chart-svg" data-chart="{name}" viewBox="0 0 {W} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body) + f"</svg>{leg}</figure>"
    )


def _axes(ymax: float, height: int = H) -> list[str]:
    out = [
        f'<line class="axis" x1="{PAD_L}" y1="{height - PAD_B}" x2="{W - PAD_R}" y2="{height - PAD_B}"/>',
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{height - PAD_B}"/>',
    ]
    for frac in (0.5, 1.0):
        y = height - PAD_B - frac * (height - PAD_T - PAD_B)
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(round(ymax * frac, 2)))}</text>')
        out.append(f'<line class="axis" x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" stroke-dasharray="2 4"/>')
    return out


def _empty(name: str, title: str, why: str) -> str:
    return _svg(name, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">{escape(why)}</text>'], title,
                height=80)


def stacked_bars(name: str, title: str, rows: list[dict], xkey: str, series: list[tuple[str, str, str]],
                 minutes: float = 60) -> str:
    """Vertical stacked bars; series = (label, key-or-expression, color)."""
    if not rows:
        return _empty(name, title, "no data")
    vals = [[max(_num(r.get(k)), 0.0) for _, k, _ in series] for r in rows]
    ymax = max((sum(v) for v in vals), default=0) or 1
    n = len(rows)
    pw = W - PAD_L - PAD_R
    bw = pw / n
    ph = H - PAD_T - PAD_B
    body = _axes(ymax)
    for i, (r, v) in enumerate(zip(rows, vals, strict=True)):
        x = PAD_L + i * bw
        y = H - PAD_B
        tip = _label_time(r.get(xkey), minutes) + ": " + ", ".join(
            f"{lbl} {fmt(int(val))}" for (lbl, _, _), val in zip(series, v, strict=True)
        )
        for (_, _, color), val in zip(series, v, strict=True):
            if val <= 0:
                continue
            h = val / ymax * ph
            y -= h
            body.append(
                f'<rect class="bar" x="{x + bw * 0.08:.2f}" y="{y:.2f}" width="{max(bw * 0.84, 0.6):.2f}" '
                f'height="{h:.2f}" fill="{color}"><title>{escape(tip)}</title></rect>'
            )
    for i in sorted({0, n // 2, n - 1}):
        x = PAD_L + (i + 0.5) * bw
        body.append(f'<text x="{x:.1f}" y="{H - PAD_B + 16}" text-anchor="middle">'
                    f'{escape(_label_time(rows[i].get(xkey), minutes))}</text>')
    return _svg(name, body, title, [(lbl, c) for lbl, _, c in series])


def hbars(name: str, title: str, items: list[tuple[str, float, str]], note: list[str] | None = None,
          color: str = COLORS["bar"]) -> str:
    """Horizontal bars: (label, value, value text)."""
    if not items:
        return _empty(name, title, "no data")
    rowh = 26
    height = PAD_T + rowh * len(items) + 10
    vmax = max(v for _, v, _ in items) or 1
    lw = 170
    pw = W - lw - 140
    body = []
    for i, (label, v, text) in enumerate(items):
        y = PAD_T + i * rowh
        w = max(v / vmax * pw, 0 if v <= 0 else 1)
        body.append(f'<text x="{lw - 8}" y="{y + 16}" text-anchor="end">{escape(label[:28])}</text>')
        body.append(f'<rect class="bar" x="{lw}" y="{y + 4}" width="{w:.2f}" height="{rowh - 8}" fill="{color}">'
                    f'<title>{escape(label)}: {escape(text)}</title></rect>')
        extra = f"  {note[i]}" if note else ""
        body.append(f'<text x="{lw + w + 6:.2f}" y="{y + 16}">{escape(text + extra)}</text>')
    return _svg(name, body, title, height=height)


def vbars(name: str, title: str, items: list[tuple[str, float]], color: str = COLORS["bar"]) -> str:
    if not items or not any(v for _, v in items):
        return _empty(name, title, "no data")
    ymax = max(v for _, v in items) or 1
    n = len(items)
    bw = (W - PAD_L - PAD_R) / n
    ph = H - PAD_T - PAD_B
    body = _axes(ymax)
    for i, (label, v) in enumerate(items):
        h = v / ymax * ph
        x = PAD_L + i * bw
        body.append(f'<rect class="bar" x="{x + bw * 0.1:.2f}" y="{H - PAD_B - h:.2f}" width="{bw * 0.8:.2f}" '
                    f'height="{h:.2f}" fill="{color}"><title>{escape(label)}: {fmt(v)}</title></rect>')
        body.append(f'<text x="{x + bw / 2:.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{escape(label)}</text>')
    return _svg(name, body, title)


def timeline(name: str, title: str, buckets: list[dict], minutes: float) -> str:
    """Uptime: one cell per bucket (grouped to at most 600 cells, worst state wins)."""
    if not buckets:
        return _empty(name, title, "no data")
    rank = {"up": 0, "degraded": 1, "none": 2, "down": 3}

    def state(b: dict) -> str:
        if b.get("down_reason"):
            return "down"
        if not b.get("requests"):
            return "none"
        return "up" if (b.get("errors_5xx") or 0) == 0 else "degraded"

    per = max(1, -(-len(buckets) // 600))
    cells = []
    for i in range(0, len(buckets), per):
        group = buckets[i:i + per]
        st = max((state(b) for b in group), key=rank.__getitem__)
        req = sum(int(b.get("requests") or 0) for b in group)
        err = sum(int(b.get("errors_5xx") or 0) for b in group)
        cells.append((group[0]["bucket"], st, req, err))
    height = 110
    cw = (W - PAD_L - PAD_R) / len(cells)
    body = []
    for i, (t, st, req, err) in enumerate(cells):
        avail = f"{100 * (1 - err / req):.1f}%" if req else "no requests"
        tip = f"{_label_time(t, minutes)}: {st}, {req} requests, {err} 5xx, availability {avail}"
        body.append(f'<rect class="cell {st}" x="{PAD_L + i * cw:.2f}" y="{PAD_T}" width="{max(cw, 0.5):.2f}" '
                    f'height="50" fill="{COLORS[st]}"><title>{escape(tip)}</title></rect>')
    for i in sorted({0, len(cells) // 2, len(cells) - 1}):
        body.append(f'<text x="{PAD_L + (i + 0.5) * cw:.1f}" y="{PAD_T + 70}" text-anchor="middle">'
                    f'{escape(_label_time(cells[i][0], minutes))}</text>')
    legend = [("up", COLORS["up"]), ("some 5xx", COLORS["degraded"]), ("down", COLORS["down"]),
              ("no requests", COLORS["none"])]
    return _svg(name, body, title, legend, height=height)


# --- page -------------------------------------------------------------------------------

def _table(cols: list[str], rows: list[dict], limit: int = 25) -> str:
    if not rows:
        return '<p class="empty">no rows</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    out = []
    for r in rows[:limit]:
        tds = []
        for c in cols:
            v = r.get(c)
            cls = ' class="num"' if isinstance(v, int | float | Decimal) and not isinstance(v, bool) else ""
            tds.append(f"<td{cls}>{escape(fmt(v))}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    more = f'<p class="empty">{len(rows) - limit:,} more rows (see --json)</p>' if len(rows) > limit else ""
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(out)}</tbody></table></div>{more}'


def _charts_for(name: str, rep: dict, params: dict) -> list[str]:
    s = rep["sections"]
    out: list[str] = []
    chart_min = params.get("chart_bucket_minutes") or 60
    if name == "status":
        rows = [dict(r, ok=max(_num(r["requests"]) - _num(r["errors_4xx"]) - _num(r["errors_5xx"]), 0))
                for r in s.get("errors_over_time", [])]
        out.append(stacked_bars(
            "requests-over-time", f"Requests and errors over time ({fmt(chart_min)}-minute buckets)",
            rows, "bucket", [("ok", "ok", COLORS["ok"]), ("4xx", "errors_4xx", COLORS["4xx"]),
                             ("5xx", "errors_5xx", COLORS["5xx"])], chart_min))
        classes = s.get("classes", [])
        total = sum(_num(r["requests"]) for r in classes) or 1
        cmap = {"2xx": COLORS["ok"], "3xx": "#6c8ebf", "4xx": COLORS["4xx"], "5xx": COLORS["5xx"]}
        items = [(r["class"], _num(r["requests"]), f"{fmt(r['requests'])} ({100 * _num(r['requests']) / total:.1f}%)")
                 for r in classes]
        html = hbars("status-mix", "Status mix", items)
        for cls, color in cmap.items():  # colour each class bar
            html = html.replace(f'fill="{COLORS["bar"]}"><title>{cls}:', f'fill="{color}"><title>{cls}:')
        out.append(html)
    elif name == "performance":
        out.append(vbars("latency", "Latency distribution (duration_ms)",
                         [(r["label"], _num(r["requests"])) for r in s.get("histogram", [])]))
    elif name == "uptime":
        bm = params.get("bucket_minutes") or 5
        out.append(timeline("uptime", f"Uptime timeline ({fmt(bm)}-minute buckets)", s.get("buckets", []), bm))
    elif name == "shop":
        funnel = s.get("funnel", [])
        if funnel and funnel[0].get("visitors"):
            items = [(r["stage"], _num(r["visitors"]), f"{fmt(r['visitors'])} visitors") for r in funnel]
            notes = [f"({100 * _num(r['conversion']):.1f}%, {fmt(r['events'])} events)" for r in funnel]
            out.append(hbars("funnel", "Shop funnel (visitors per step, conversion from all visitors)",
                             items, notes, color="#7a5fb8"))
        else:
            out.append(_empty("funnel", "Shop funnel", "no shop log ingested"))
    elif name == "cdn":
        rows = s.get("by_cache_status", [])
        out.append(hbars("cache-status", "CDN cache status",
                         [(str(r["cache_status"]), _num(r["requests"]), f"{fmt(r['requests'])} ({100 * _num(r['share']):.1f}%)")
                          for r in rows], color="#2f8f9d") if rows else _empty("cache-status", "CDN cache status", "no CDN data"))
    elif name == "top":
        out.append(vbars("hourly", "Requests per hour of day (UTC)",
                         [(str(r["hour"]), _num(r["requests"])) for r in s.get("hourly", [])]))
    return out


def _cards(data: dict) -> str:
    reps = data["reports"]
    cards: list[tuple[str, str]] = []
    tot = (reps.get("summary", {}).get("sections", {}).get("totals") or [{}])[0]
    if tot:
        cards += [("requests", fmt(tot.get("requests"))), ("visitors", fmt(tot.get("visitors"))),
                  ("bytes sent", human_bytes(tot.get("bytes_sent"))), ("files", fmt(tot.get("files"))),
                  ("bad rows", fmt(tot.get("bad_rows")))]
    perf = (reps.get("performance", {}).get("sections", {}).get("overall") or [{}])[0]
    if perf.get("p50_ms") is not None:
        cards.append(("p50 / p99", f"{fmt(perf['p50_ms'])} / {fmt(perf['p99_ms'])} ms"))
    up = (reps.get("uptime", {}).get("sections", {}).get("totals") or [{}])[0]
    if up.get("availability_pct") is not None:
        cards.append(("availability", f"{fmt(up['availability_pct'])}%"))
    rev = (reps.get("shop", {}).get("sections", {}).get("revenue") or [{}])[0]
    if rev.get("orders"):
        cards.append(("revenue", fmt(rev.get("revenue"))))
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in cards
    ) + "</div>"


def render(data: dict, title: str = "logferry usage report") -> str:
    """The whole report as one HTML document (no external resources)."""
    params = data.get("params", {})
    filt = ", ".join(f"{k} {v}" for k, v in params.items() if k in ("since", "until", "site") and v)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1><p>generated {escape(str(data.get('generated_at', '')))}"
        f"{' - ' + escape(filt) if filt else ''}</p></header><main>",
    ]
    for w in data.get("warnings", []):
        parts.append(f'<div class="warn">{escape(w)}</div>')
    parts.append(_cards(data))
    for name, rep in data["reports"].items():
        parts.append(f'<section id="report-{escape(name)}"><h2>{escape(rep["title"])}</h2>')
        if rep.get("description"):
            parts.append(f'<p class="desc">{escape(rep["description"])}</p>')
        parts.extend(_charts_for(name, rep, params))
        for sec, rows in rep["sections"].items():
            if name == "uptime" and sec == "buckets":
                rows = [r for r in rows if r.get("down_reason") or (r.get("errors_5xx") or 0) > 0]
                sec = "buckets with 5xx or down"
            cols = rep["columns"].get(sec) or (list(rows[0]) if rows else [])
            parts.append(f"<h3>{escape(sec.replace('_', ' '))}</h3>{_table(cols, rows)}")
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write(data: dict, path: str, title: str = "logferry usage report") -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(data, title))
