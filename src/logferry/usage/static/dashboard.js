/* logferry dashboard: one front end for the report file and the served page.
   Every value from the logs goes into the page as text (textContent), never as markup. */
(function () {
  "use strict";
  var CONF = JSON.parse(document.getElementById("lf-conf").textContent);
  var DATA = JSON.parse(document.getElementById("lf-data").textContent);
  var ROW_CAP = 10000, PAGE = 100;
  var S = { data: DATA, range: null, panel: null, dirty: {}, charts: [], filters: initialFilters(DATA),
            history: [], fetching: 0 };

  // --- formatting ---------------------------------------------------------------------------
  var NF = new Intl.NumberFormat("en-US");
  function int(v) { return v == null ? "" : NF.format(Math.round(v)); }
  function num(v, d) { return v == null ? "" : new Intl.NumberFormat("en-US", { maximumFractionDigits: d == null ? 2 : d }).format(v); }
  function pct(v) { return v == null ? "" : num(v * 100, v * 100 >= 99.95 && v < 1 ? 2 : 1) + "%"; }
  function ms(v) {
    if (v == null) return "";
    if (Math.abs(v) >= 1000) return num(v / 1000, v >= 10000 ? 1 : 2) + " s";
    return num(v, v >= 100 ? 0 : 1) + " ms";
  }
  function bytes(v) {
    if (v == null) return "";
    var u = ["B", "KB", "MB", "GB", "TB"], i = 0, n = +v;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i ? num(n, n >= 100 ? 0 : n >= 10 ? 1 : 2) + " " + u[i] : int(n) + " B";
  }
  function money(v) { return v == null ? "" : new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(v); }
  var TZ = DATA.tz || "UTC";
  var DTF = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  function parts(t) {
    var o = {};
    DTF.formatToParts(new Date(t * 1000)).forEach(function (p) { o[p.type] = p.value; });
    return o;
  }
  function when(t, secs) {
    if (t == null) return "";
    var p = parts(t);
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + (secs ? ":" + p.second : "");
  }
  function tzName() { return TZ === "UTC" ? "UTC" : TZ; }
  function epoch(v) { if (v == null) return null; if (typeof v === "number") return v; var t = Date.parse(v); return isNaN(t) ? null : t / 1000; }
  function dur(s) {
    if (s == null) return "";
    if (s < 120) return int(s) + " s";
    if (s < 7200) return num(s / 60, 0) + " min";
    if (s < 172800) return num(s / 3600, 1) + " h";
    return num(s / 86400, 1) + " days";
  }
  var FMT = { int: int, pct: pct, ms: ms, bytes: bytes, money: money, time: function (v) { return when(epoch(v), true); },
              text: function (v) { return v == null ? "" : String(v); }, num: num };

  // --- DOM helpers -------------------------------------------------------------------------
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (attrs[k] == null) continue;
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null) continue;
      if (Array.isArray(c)) c.forEach(function (x) { if (x != null) e.appendChild(x.nodeType ? x : document.createTextNode(String(x))); });
      else e.appendChild(c.nodeType ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  var tip = null;
  function showTip(text, x, y) {
    tip.textContent = text; tip.style.display = "block";
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.min(window.innerWidth - w - 8, x + 14) + "px";
    tip.style.top = Math.max(4, Math.min(window.innerHeight - h - 8, y + 14)) + "px";
  }
  function hideTip() { tip.style.display = "none"; }
  function hoverTip(node, text) {
    node.setAttribute("data-tip", text);
    node.addEventListener("mousemove", function (ev) { showTip(text, ev.clientX, ev.clientY); });
    node.addEventListener("mouseleave", hideTip);
    return node;
  }

  // --- data: the range shown and re-aggregation --------------------------------------------
  function cube() { return S.data.cube || {}; }
  function fullRange() {
    var c = cube();
    return c.t0 == null ? null : [c.t0, c.t0 + c.n * c.step];
  }
  function curRange() { return S.range || fullRange(); }
  function isFull() { return S.range == null; }
  function bucketIdx() {  // [first, last) bucket indexes in range
    var c = cube(), r = curRange();
    if (!r) return [0, 0];
    return [Math.max(0, Math.round((r[0] - c.t0) / c.step)), Math.min(c.n, Math.round((r[1] - c.t0) / c.step))];
  }
  function seriesSum(name) {
    var a = (cube().series || {})[name] || [], b = bucketIdx(), s = 0;
    for (var i = b[0]; i < b[1]; i++) s += a[i] || 0;
    return s;
  }
  function seriesMax(name) {
    var a = (cube().series || {})[name] || [], b = bucketIdx(), m = null;
    for (var i = b[0]; i < b[1]; i++) if (a[i] != null && (m == null || a[i] > m)) m = a[i];
    return m;
  }
  // rows of a dimension in the range: [{key, attrs, metric: value...}], by requests
  function dimRows(name) {
    var d = (cube().dims || {})[name];
    if (!d) return [];
    var rows = [], i, j, m = d.metrics;
    if (isFull()) {
      for (i = 0; i < d.keys.length; i++) {
        var r = { key: d.keys[i], attrs: d.attrs ? d.attrs[i] : null, raw: d.raw ? d.raw[i] : null };
        for (j = 0; j < m.length; j++) r[m[j]] = d.tot[j][i];
        rows.push(r);
      }
      return rows;
    }
    var b = bucketIdx(), acc = {}, cells = d.cells;
    for (i = 0; i < cells.b.length; i++) {
      var bi = cells.b[i];
      if (bi < b[0] || bi >= b[1]) continue;
      var k = cells.k[i], row = acc[k];
      if (!row) {
        row = acc[k] = { key: k < 0 ? null : d.keys[k], other: k < 0, attrs: d.attrs && k >= 0 ? d.attrs[k] : null,
                         raw: d.raw && k >= 0 ? d.raw[k] : null };
        for (j = 0; j < m.length; j++) row[m[j]] = m[j].slice(-4) === "_max" ? null : 0;
      }
      for (j = 0; j < m.length; j++) {
        var v = cells.m[j][i];
        if (m[j].slice(-4) === "_max") { if (v != null && (row[m[j]] == null || v > row[m[j]])) row[m[j]] = v; }
        else row[m[j]] += v || 0;
      }
    }
    for (var kk in acc) if (acc[kk].requests > 0 || acc[kk].other) rows.push(acc[kk]);
    rows.sort(function (x, y) { return (y.requests - x.requests) || (x.other - y.other) || String(x.key).localeCompare(String(y.key)); });
    return rows;
  }
  // distinct visitors of the range shown: exact for the whole period (the summary), else
  // estimated from the buckets' HyperLogLog sketches (cube.visitor_sketch), merged
  function visitorsShown(exact) {
    if (isFull()) return int(exact);
    var sk = cube().visitor_sketch, b = bucketIdx();
    if (!sk || !sk.r) return "\u2014";
    var m = 1 << sk.p, reg = new Uint8Array(m), i, j;
    for (i = 0; i < sk.b.length; i++) {
      if (sk.b[i] < b[0] || sk.b[i] >= b[1]) continue;
      var str = sk.r[i];
      for (j = 0; j < m; j++) { var v = str.charCodeAt(j) - 48; if (v > reg[j]) reg[j] = v; }
    }
    var sum = 0, zeros = 0;
    for (j = 0; j < m; j++) { sum += Math.pow(2, -reg[j]); if (!reg[j]) zeros++; }
    var e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (e <= 2.5 * m && zeros) e = m * Math.log(m / zeros);
    return "\u2248 " + int(zeros === m ? 0 : e);
  }
  function group(rows, attr) {  // sum the requests of agent rows by one attribute
    var acc = {}, out = [];
    rows.forEach(function (r) {
      var k = r.other ? "Other agents" : (r.attrs ? (attr === 1 ? r.attrs[0] + " " + (r.attrs[1] || "") : r.attrs[attr]) : "None");
      if (attr === 4) k = r.other ? "Other agents" : (r.attrs && r.attrs[4] ? "bots" : "humans");
      k = String(k).trim();
      acc[k] = (acc[k] || 0) + r.requests;
    });
    for (var k in acc) out.push({ key: k, requests: acc[k] });
    out.sort(function (a, b) { return b.requests - a.requests || a.key.localeCompare(b.key); });
    return out;
  }
  function rep(name, sec) {
    var r = (S.data.reports || {})[name];
    return r && r.sections && r.sections[sec] ? r.sections[sec] : [];
  }
  function inRange(t) { var r = curRange(); t = epoch(t); return r && t != null && t >= r[0] && t < r[1]; }
  function withShares(rows) {
    var tot = rows.reduce(function (s, r) { return s + (r.requests || 0); }, 0);
    rows.forEach(function (r) { r.share = tot ? r.requests / tot : null; });
    return rows;
  }

  // --- components ---------------------------------------------------------------------------
  function card(label, value, id) { return el("div", { class: "card", "data-card": id }, el("b", { text: value }), el("span", { text: label })); }
  function empty(text) { return el("p", { class: "empty", text: text }); }

  // a sortable, filterable, paged table; cols: [key, label, format]
  function table(id, cols, rows, opts) {
    opts = opts || {};
    var capped = rows.length > ROW_CAP;
    rows = rows.slice(0, ROW_CAP);
    var st = { sort: null, asc: false, q: "", page: 0 };
    var box = el("div", { class: "tbl", "data-table": id });
    var input = el("input", { type: "search", placeholder: "Filter rows", "aria-label": "Filter rows" });
    var info = el("span", { class: "info" });
    var prev = el("button", { type: "button", class: "pager", text: "\u2039 Previous" });
    var next = el("button", { type: "button", class: "pager", text: "Next \u203a" });
    var thead = el("thead"), tbody = el("tbody");
    var htr = el("tr");
    cols.forEach(function (c, i) {
      var numeric = c[2] !== "text" && c[2] !== "time";
      var th = el("th", { class: numeric ? "num" : null, scope: "col", text: c[1] + (c[2] === "time" && c[1].indexOf("(") < 0 ? " (" + tzName() + ")" : ""),
                          "data-col": c[0], tabindex: "0" });
      th.addEventListener("click", function () {
        if (st.sort === i) st.asc = !st.asc; else { st.sort = i; st.asc = !numeric; }
        st.page = 0; draw();
      });
      htr.appendChild(th);
    });
    thead.appendChild(htr);
    box.appendChild(el("div", { class: "tools" }, input, info, prev, next));
    box.appendChild(el("div", { class: "wrap" }, el("table", null, thead, tbody)));
    input.addEventListener("input", function () { st.q = input.value.toLowerCase(); st.page = 0; draw(); });
    prev.addEventListener("click", function () { st.page--; draw(); });
    next.addEventListener("click", function () { st.page++; draw(); });
    function cell(r, c) { var v = r[c[0]]; return typeof v === "function" ? v() : v; }
    function text(r, c) { var v = cell(r, c); return (c[2] === "text" ? FMT.text : FMT[c[2]] || FMT.text)(v); }
    function draw() {
      var view = rows;
      if (st.q) view = view.filter(function (r) {
        return cols.some(function (c) { return text(r, c).toLowerCase().indexOf(st.q) >= 0; });
      });
      if (st.sort != null) {
        var c = cols[st.sort], dir = st.asc ? 1 : -1;
        view = view.slice().sort(function (a, b) {
          var x = cell(a, c), y = cell(b, c);
          if (c[2] === "time") { x = epoch(x); y = epoch(y); }
          if (x == null && y == null) return 0;
          if (x == null) return 1;
          if (y == null) return -1;
          if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
          return String(x).localeCompare(String(y)) * dir;
        });
      }
      htr.childNodes.forEach(function (th, i) {
        if (i === st.sort) th.setAttribute("aria-sort", st.asc ? "ascending" : "descending"); else th.removeAttribute("aria-sort");
      });
      var pages = Math.max(1, Math.ceil(view.length / PAGE));
      st.page = Math.max(0, Math.min(st.page, pages - 1));
      tbody.textContent = "";
      view.slice(st.page * PAGE, st.page * PAGE + PAGE).forEach(function (r) {
        var tr = el("tr");
        cols.forEach(function (c) {
          var t = text(r, c);
          if (r.other && c === cols[0]) t = opts.otherLabel || "Others";
          tr.appendChild(el("td", { class: c[2] !== "text" && c[2] !== "time" ? "num" : null, text: t,
                                    title: c === cols[0] && opts.tip && !r.other ? opts.tip(r) : null }));
        });
        tbody.appendChild(tr);
      });
      var first = view.length ? st.page * PAGE + 1 : 0, last = Math.min(view.length, (st.page + 1) * PAGE);
      info.textContent = (view.length ? "rows " + int(first) + "\u2013" + int(last) + " of " + int(view.length) : "no rows") +
        (view.length !== rows.length ? " (filtered from " + int(rows.length) + ")" : "") +
        (capped ? "; the first " + int(ROW_CAP) + " rows" : "") +
        (opts.total && opts.total > rows.length && isFull() ? "; the " + int(rows.length) + " with the most requests of " + int(opts.total) : "");
      prev.disabled = st.page === 0; next.disabled = st.page >= pages - 1;
      prev.style.display = next.style.display = pages > 1 ? "" : "none";
    }
    draw();
    return box;
  }

  function bars(id, rows, label, value, fmt, color) {
    var max = rows.reduce(function (m, r) { return Math.max(m, value(r) || 0); }, 0) || 1;
    var box = el("div", { class: "bars", "data-chart": id });
    rows.forEach(function (r) {
      var v = value(r) || 0, lab = label(r), t = lab + ": " + fmt(v, r);
      box.appendChild(hoverTip(el("div", { class: "lab", text: lab }), t));
      box.appendChild(hoverTip(el("div", { class: "bar", style: "width:" + (100 * v / max).toFixed(2) + "%;" +
        (color ? "background:" + color(r) : "") }), t));
      box.appendChild(el("div", { class: "val", text: fmt(v, r) }));
    });
    return box;
  }

  // a time chart (uPlot) over the cube's buckets in range; series: [[label, values, color, fmt]]
  function timeChart(id, title, series, opts) {
    opts = opts || {};
    var c = cube(), b = bucketIdx();
    var box = el("div", { class: "chart", "data-chart": id }, el("div", { class: "title", text: title }));
    if (c.t0 == null || b[1] <= b[0]) { box.appendChild(empty("No requests in this range.")); return box; }
    var xs = [];
    for (var i = b[0]; i < b[1]; i++) xs.push(c.t0 + i * c.step);
    var data = [xs].concat(series.map(function (s) { return s[1].slice(b[0], b[1]); }));
    var marks = incidentsIn(xs[0], xs[xs.length - 1] + c.step);
    if (marks.length) box.appendChild(el("div", { class: "incidents", text: "Alert incidents: " + marks.map(function (m) {
      return m.rule + " (" + m.severity + ") " + when(m.start) + " \u2013 " + (m.end == null ? "firing" : when(m.end)) + " " + tzName();
    }).join("; ") }));
    var grid = { stroke: css("--line"), width: 1 }, axis = { stroke: css("--muted"), grid: grid, ticks: grid };
    var plot = null;
    function mount() {
      var width = Math.max(200, (box.clientWidth || 900));
      var o = {
        width: width, height: opts.height || 220,
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), TZ); },
        cursor: { drag: { x: true, y: false, setScale: false }, points: { size: 6 } },
        select: { show: true },
        legend: { show: true, live: false },
        scales: { x: { time: true } },
        axes: [Object.assign({}, axis, { values: timeTicks }), Object.assign({}, axis, { size: 60, values: function (u, vals) { return vals.map(function (v) { return (opts.axisFmt || compact)(v); }); } })],
        series: [{}].concat(series.map(function (s) {
          return { label: s[0], stroke: s[2], width: 1.6, fill: opts.fill ? s[2] + "22" : undefined, points: { show: xs.length < 60 },
                   spanGaps: false };
        })),
        hooks: {
          setCursor: [function (u) {
            var idx = u.cursor.idx;
            if (idx == null || u.cursor.left < 0) { hideTip(); return; }
            var lines = [when(xs[idx]) + " \u2013 " + when(xs[idx] + c.step) + " " + tzName()];
            series.forEach(function (s, j) { lines.push(s[0] + ": " + (s[3] || int)(data[j + 1][idx])); });
            incidentsIn(xs[idx], xs[idx] + c.step).forEach(function (m) { lines.push("alert: " + m.rule + " (" + m.severity + ")"); });
            var rect = u.over.getBoundingClientRect();
            showTip(lines.join("\n"), rect.left + u.cursor.left, rect.top + u.cursor.top);
          }],
          setSelect: [function (u) {
            if (u.select.width < 3) return;
            var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
            zoom(lo, hi);
          }],
          draw: [function (u) {
            if (opts.bands) drawBands(u, opts.bands);
            if (marks.length) drawBands(u, marks.map(function (m) { return [m.start, m.end == null ? xs[xs.length - 1] + c.step : m.end]; }), "--alert");
          }]
        }
      };
      plot = new uPlot(o, data, box);
      plot.over.addEventListener("mouseleave", hideTip);
      S.charts.push(plot);
    }
    box._mount = mount;
    return box;
  }
  // x axis labels: to the second when the ticks are less than a minute apart (else a short
  // range repeats one minute under every tick), the day alone when they are days apart;
  // the labels drawn are kept on the chart (data-x-labels) for tests and tools
  function timeTicks(u, vals, axisIdx, space, incr) {
    var lastDay = null, secs = incr < 60, days = incr >= 86400;
    var out = vals.map(function (v) {
      var p = parts(v), day = p.year + "-" + p.month + "-" + p.day, t = p.hour + ":" + p.minute + (secs ? ":" + p.second : "");
      if (days) return day;
      if (day !== lastDay) { lastDay = day; return t + "\n" + day; }
      return t;
    });
    if (u.root && u.root.parentNode) u.root.parentNode.setAttribute("data-x-labels", out.join("|"));
    return out;
  }
  // the alert incidents (served by the console: data.incidents, epoch seconds) overlapping [lo, hi)
  function incidentsIn(lo, hi) {
    return (S.data.incidents || []).filter(function (m) { return m.start < hi && (m.end == null || m.end >= lo); });
  }
  function drawBands(u, bands, color) {
    var ctx = u.ctx; ctx.save(); ctx.fillStyle = css(color || "--down");
    bands.forEach(function (w) {
      var x0 = u.valToPos(w[0], "x", true), x1 = u.valToPos(w[1], "x", true);
      ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
    });
    ctx.restore();
  }
  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return num(v / 1e9, 1) + "G";
    if (a >= 1e6) return num(v / 1e6, 1) + "M";
    if (a >= 1e4) return num(v / 1e3, 0) + "k";
    return num(v, 1);
  }

  // --- zoom and server fetches ---------------------------------------------------------------
  // [lo, hi) widened to whole buckets within the data
  function aligned(lo, hi) {
    var c = cube(), fr = fullRange();
    lo = Math.max(fr[0], c.t0 + Math.floor((lo - c.t0) / c.step) * c.step);
    hi = Math.min(fr[1], c.t0 + Math.ceil((hi - c.t0) / c.step) * c.step);
    if (hi <= lo) hi = lo + c.step;
    return [lo, hi];
  }
  function zoom(lo, hi) {
    var fr = fullRange(), a = aligned(lo, hi);
    lo = a[0]; hi = a[1];
    if (CONF.api) {
      S.history.push(S.filters.since || S.filters.until ? [S.filters.since, S.filters.until] : null);
      S.filters.since = new Date(lo * 1000).toISOString(); S.filters.until = new Date(hi * 1000).toISOString();
      fetchData();
    } else {
      S.range = lo <= fr[0] && hi >= fr[1] ? null : [lo, hi];
      rerender();
    }
  }
  // --- the URL keeps what is shown: the panel in the hash; the served page's filters and
  // zoom in the query (the server reads them on a reload or a shared link); the report
  // file's zoom in the hash (#panel&since=EPOCH&until=EPOCH) ---------------------------------
  function hashPanel() { return decodeURIComponent(location.hash.slice(1).split("&")[0]); }
  function hashParams() {
    var o = {};
    location.hash.slice(1).split("&").slice(1).forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) o[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    return o;
  }
  function saveUrl() {
    var h = "#" + encodeURIComponent(S.panel || "");
    if (!CONF.api && S.range) h += "&since=" + S.range[0] + "&until=" + S.range[1];
    var q = CONF.api ? query() : null;
    var url = CONF.api ? location.pathname + (q ? "?" + q : "") + h : h;
    if (url === (CONF.api ? location.pathname + location.search : "") + location.hash) return;
    try { history.replaceState(null, "", url); } catch (e) { /* a page that may not change its URL */ }
  }
  function rangeFromUrl() {  // the report file: a zoom kept in the hash
    var h = hashParams(), lo = +h.since, hi = +h.until, fr = fullRange();
    if (CONF.api || !fr || !isFinite(lo) || !isFinite(hi) || !h.since || !h.until || hi <= lo) return;
    var a = aligned(lo, hi);
    S.range = a[0] <= fr[0] && a[1] >= fr[1] ? null : a;
  }
  function resetZoom() {
    if (CONF.api) { S.filters.since = S.filters.until = null; S.history = []; fetchData(); }
    else { S.range = null; rerender(); }
  }
  function initialFilters(d) {
    var f = d.filters || {};
    return { since: f.since || null, until: f.until || null, sites: f.sites || null, status_classes: f.status_classes || null,
             formats: f.formats || null, bots: f.bots !== false };
  }
  function query() {
    var f = S.filters, p = [];
    function add(k, v) { if (v != null && v !== "") p.push(encodeURIComponent(k) + "=" + encodeURIComponent(v)); }
    add("since", f.since); add("until", f.until);
    add("site", (f.sites || []).join(",")); add("status", (f.status_classes || []).join(","));
    add("format", (f.formats || []).join(",")); add("bots", f.bots ? "" : "0");
    return p.join("&");
  }
  function fetchData(quiet) {
    if (!CONF.api || (quiet && S.inflight)) return;  // a poll never queues behind another fetch
    var n = ++S.fetching;
    S.inflight = (S.inflight || 0) + 1;
    if (!quiet) document.body.setAttribute("data-loading", "1");
    return fetch(CONF.api + (CONF.api.indexOf("?") >= 0 ? "&" : "?") + query(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("the server answered " + r.status); return r.json(); })
      .then(function (d) { if (n !== S.fetching) return; S.data = d; S.range = null; rerender(); saveUrl(); })
      .catch(function (e) { if (n === S.fetching) setStatus("Could not load the report: " + e.message); })
      .then(function () { S.inflight--; if (n === S.fetching) document.body.removeAttribute("data-loading"); });
  }
  var statusNode = null;
  function setStatus(t) { if (statusNode) statusNode.textContent = t; }

  // --- panels ---------------------------------------------------------------------------------
  function statusColor(k) { return css({ 1: "--c1", 2: "--ok", 3: "--c3", 4: "--c4", 5: "--c5" }[String(k).charAt(0)] || "--c1"); }
  var PANELS = [
    ["summary", "Summary", panelSummary, function () { return true; }],
    ["status", "Status codes and errors", panelStatus, hasRequests],
    ["performance", "Performance", panelPerformance, function () { return seriesTotal("dur_n") > 0; }],
    ["missing", "Unavailable links", panelMissing, function () { return dimTotal("missing") > 0; }],
    ["uptime", "Uptime", panelUptime, function () { return rep("uptime", "buckets").length > 0; }],
    ["cdn", "CDN", panelCdn, function () { return dimTotal("cache") > 0; }],
    ["shop", "Shop", panelShop, function () { var f = rep("shop", "funnel"); return f.length && f[0].events > 0; }],
    ["snowplow", "Snowplow events", panelSnowplow, function () { return snowplowReports().length > 0; }],
    ["pages", "Top pages", panelPages, hasRequests],
    ["referrers", "Referrers", panelReferrers, function () { return dimTotal("referer") > 0; }],
    ["agents", "User agents", panelAgents, hasRequests],
    ["browsers", "Browsers, systems, devices, bots", panelBrowsers, hasRequests],
    ["visitors", "Visitors", panelVisitors, hasRequests],
    ["hours", "Hours of the day", panelHours, hasRequests],
    ["sites", "Sites", panelSites, function () { return ((cube().dims || {}).site || { keys: [] }).keys.length > 1; }]
  ];
  function hasRequests() { return seriesTotal("requests") > 0; }
  function seriesTotal(n) { return ((cube().series || {})[n] || []).reduce(function (s, v) { return s + (v || 0); }, 0); }
  function keysOf(n) { var d = (cube().dims || {})[n]; return d ? d.total_keys : 0; }
  function dimTotal(n) { var d = (cube().dims || {})[n]; return d && d.tot.length ? d.tot[0].reduce(function (s, v) { return s + v; }, 0) : 0; }
  function snowplowReports() {
    return Object.keys(S.data.reports || {}).filter(function (k) { return k.indexOf("snowplow_") === 0; });
  }
  function fullOnly() { return isFull() ? null : el("p", { class: "note", text: "These figures are for the whole period of the report." }); }

  function panelSummary(p) {
    var t = rep("summary", "totals")[0] || {};
    var req = isFull() ? t.requests : seriesSum("requests");
    var s5 = seriesSum("s5"), s4 = seriesSum("s4"), n = seriesSum("requests");
    var r = curRange();
    p.appendChild(el("div", { class: "cards" },
      card("requests", int(req), "requests"),
      card("visitors", visitorsShown(t.visitors), "visitors"),
      card("data sent", bytes(isFull() ? t.bytes_sent : seriesSum("bytes")), "bytes"),
      card("client errors (4xx)", n ? pct(s4 / n) : "\u2014", "e4"),
      card("server errors (5xx)", n ? pct(s5 / n) : "\u2014", "e5"),
      card("period", r ? dur(r[1] - r[0]) : "\u2014", "span"),
      isFull() && t.bad_rows != null ? card("unreadable lines", int(t.bad_rows), "bad") : null));
    if (!isFull()) p.appendChild(el("p", { class: "note", text: "Visitors of a zoomed range are estimated (\u2248, within a few per cent)." }));
    var se = cube().series || {};
    p.appendChild(timeChart("requests", "Requests", [["requests", se.requests || [], css("--accent"), int],
      ["server errors (5xx)", se.s5 || [], css("--c5"), int]], { fill: true }));
    var f = rep("summary", "formats");
    if (f.length) {
      p.appendChild(el("h3", { text: "Log formats" }));
      p.appendChild(table("formats", [["format", "format", "text"], ["files", "files", "int"], ["lines", "lines", "int"],
        ["records", "records", "int"], ["bad_rows", "unreadable lines", "int"], ["first_request", "first request", "time"],
        ["last_request", "last request", "time"]], f));
    }
    var files = rep("summary", "files");
    if (files.length) {
      p.appendChild(el("h3", { text: "Files" }));
      p.appendChild(table("files", [["path", "file", "text"], ["format", "format", "text"], ["lines", "lines", "int"],
        ["records", "records", "int"], ["bad_rows", "unreadable lines", "int"]], files));
    }
  }

  function panelStatus(p) {
    var se = cube().series || {};
    var n = seriesSum("requests");
    var classes = [["1xx", "s1", "--c1"], ["2xx", "s2", "--ok"], ["3xx", "s3", "--c3"], ["4xx", "s4", "--c4"], ["5xx", "s5", "--c5"]];
    var mix = el("div", { class: "mix", "data-chart": "status-mix" }), leg = el("div", { class: "legend" });
    classes.forEach(function (c) {
      var v = seriesSum(c[1]);
      if (!v) return;
      var t = c[0] + ": " + int(v) + " (" + pct(v / n) + ")";
      mix.appendChild(hoverTip(el("div", { style: "width:" + (100 * v / n).toFixed(3) + "%;background:" + css(c[2]) }), t));
      leg.appendChild(el("span", null, el("i", { style: "background:" + css(c[2]) }), t));
    });
    p.appendChild(el("div", { class: "chart" }, el("div", { class: "title", text: "Status mix" }), mix, leg));
    p.appendChild(timeChart("status-over-time", "Requests by status class", classes.filter(function (c) { return seriesTotal(c[1]) > 0; })
      .map(function (c) { return [c[0], se[c[1]] || [], css(c[2]), int]; })));
    var codes = withShares(dimRows("status"));
    p.appendChild(el("h3", { text: "Status codes" }));
    p.appendChild(bars("status-codes", codes.slice(0, 15), function (r) { return String(r.key); }, function (r) { return r.requests; },
      function (v, r) { return int(v) + " (" + pct(r.share) + ")"; }, function (r) { return statusColor(r.key); }));
    p.appendChild(table("status_codes", [["key", "status", "text"], ["requests", "requests", "int"], ["share", "share", "pct"]], codes));
    var paths = dimRows("path").filter(function (r) { return r.e4 + r.e5 > 0; }).map(function (r) {
      return { key: r.key, other: r.other, requests: r.requests, e4: r.e4, e5: r.e5, r4: r.e4 / r.requests, r5: r.e5 / r.requests };
    }).sort(function (a, b) { return (b.e4 + b.e5) - (a.e4 + a.e5); });
    p.appendChild(el("h3", { text: "Errors by path" }));
    p.appendChild(table("errors_by_path", [["key", "path", "text"], ["requests", "requests", "int"], ["e4", "4xx", "int"],
      ["e5", "5xx", "int"], ["r4", "4xx rate", "pct"], ["r5", "5xx rate", "pct"]], paths, { otherLabel: "Other paths" }));
  }

  var LAT_LABELS = ["< 10 ms", "10\u201325 ms", "25\u201350 ms", "50\u2013100 ms", "100\u2013250 ms", "250\u2013500 ms",
    "0.5\u20131 s", "1\u20132.5 s", "2.5\u20135 s", "5\u201310 s", "\u2265 10 s"];
  var LAT_LO = [0, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
  function histQuantile(h, q) {  // from binned counts: linear inside the bin
    var tot = h.reduce(function (s, v) { return s + v; }, 0), want = q * tot, acc = 0;
    for (var i = 0; i < h.length; i++) {
      if (acc + h[i] >= want && h[i] > 0) {
        var hi = i + 1 < LAT_LO.length ? LAT_LO[i + 1] : LAT_LO[i] * 2;
        return LAT_LO[i] + (hi - LAT_LO[i]) * (want - acc) / h[i];
      }
      acc += h[i];
    }
    return null;
  }
  function panelPerformance(p) {
    var o = rep("performance", "overall")[0] || {};
    var hist = new Array(11).fill(0);
    dimRows("latency").forEach(function (r) { if (!r.other) hist[r.key] = r.requests; });
    var n = seriesSum("dur_n"), avg = n ? seriesSum("dur_sum") / n : null;
    function q(v, qq) { return isFull() ? ms(v) : "\u2248 " + ms(histQuantile(hist, qq)); }
    p.appendChild(el("div", { class: "cards" },
      card("timed requests", int(n), "timed"), card("median", q(o.p50_ms, .5), "p50"), card("90th percentile", q(o.p90_ms, .9), "p90"),
      card("99th percentile", q(o.p99_ms, .99), "p99"), card("average", ms(avg), "avg"), card("slowest", ms(seriesMax("dur_max")), "max")));
    var se = cube().series || {};
    var avgs = (se.dur_n || []).map(function (c, i) { return c ? se.dur_sum[i] / c : null; });
    p.appendChild(timeChart("latency-over-time", "Average and slowest response time", [["average", avgs, css("--accent"), ms],
      ["slowest", se.dur_max || [], css("--c4"), ms]], { axisFmt: ms }));
    p.appendChild(el("h3", { text: "Latency histogram" }));
    p.appendChild(bars("latency", hist.map(function (v, i) { return { i: i, v: v }; }), function (r) { return LAT_LABELS[r.i]; },
      function (r) { return r.v; }, function (v) { return int(v) + " (" + pct(n ? v / n : 0) + ")"; }));
    p.appendChild(el("h3", { text: "Slowest paths" }));
    if (isFull()) {
      p.appendChild(table("slowest_paths", [["path", "path", "text"], ["requests", "requests", "int"], ["p50_ms", "median", "ms"],
        ["p90_ms", "90th pct.", "ms"], ["p99_ms", "99th pct.", "ms"], ["max_ms", "slowest", "ms"]], rep("performance", "slowest_paths")));
    } else {
      var rows = dimRows("path").filter(function (r) { return r.dur_n > 0; }).map(function (r) {
        return { key: r.key, other: r.other, requests: r.dur_n, avg: r.dur_sum / r.dur_n, max: r.dur_max };
      }).sort(function (a, b) { return b.max - a.max; });
      p.appendChild(table("slowest_paths", [["key", "path", "text"], ["requests", "requests", "int"], ["avg", "average", "ms"],
        ["max", "slowest", "ms"]], rows, { otherLabel: "Other paths" }));
    }
    p.appendChild(el("h3", { text: "Slowest requests" }));
    p.appendChild(table("slowest_requests", [["timestamp", "time", "time"], ["method", "method", "text"], ["path", "path", "text"],
      ["status", "status", "int"], ["duration_ms", "time taken", "ms"], ["client_ip", "client", "text"]],
      rep("performance", "slowest_requests").filter(function (r) { return inRange(r.timestamp); })));
  }

  function panelMissing(p) {
    var rows = dimRows("missing");
    p.appendChild(bars("missing", rows.slice(0, 12), function (r) { return r.other ? "Other paths" : r.key; }, function (r) { return r.requests; }, int,
      function () { return css("--c4"); }));
    p.appendChild(table("missing", [["key", "path", "text"], ["requests", "requests", "int"], ["n404", "404 not found", "int"],
      ["n410", "410 gone", "int"]], rows, { otherLabel: "Other paths", total: keysOf("missing") }));
    var refs = rep("not_found", "referers");
    if (refs.length) {
      p.appendChild(el("h3", { text: "Where the broken links are" }));
      if (!isFull()) p.appendChild(fullOnly());
      p.appendChild(table("missing_referers", [["path", "path", "text"], ["referer", "linked from", "text"], ["hits", "requests", "int"]], refs));
    }
  }

  function panelUptime(p) {
    var all = rep("uptime", "buckets"), step = (S.data.uptime_bucket_minutes || 5) * 60;
    var bk = all.filter(function (b) { return inRange(b.bucket); });
    var req = 0, e5 = 0, down = 0;
    bk.forEach(function (b) { req += b.requests; e5 += b.errors_5xx; if (b.down_reason) down++; });
    var windows = [], cur = null;
    bk.forEach(function (b) {
      var t = epoch(b.bucket);
      if (b.down_reason) {
        if (cur && Math.abs(cur.t1 - t) < 1) { cur.t1 = t + step; cur.buckets++; cur.requests += b.requests; cur.errors_5xx += b.errors_5xx; cur.reasons[b.down_reason] = 1; }
        else { cur = { t0: t, t1: t + step, buckets: 1, requests: b.requests, errors_5xx: b.errors_5xx, reasons: {} }; cur.reasons[b.down_reason] = 1; windows.push(cur); }
      } else cur = null;
    });
    windows.forEach(function (w) { w.reason = Object.keys(w.reasons).sort().join(", "); w.start = w.t0; w.end = w.t1; w.minutes = (w.t1 - w.t0) / 60; });
    p.appendChild(el("div", { class: "cards" },
      card("uptime", bk.length ? pct(1 - down / bk.length) : "\u2014", "uptime"),
      card("availability (requests without 5xx)", req ? pct(1 - e5 / req) : "\u2014", "availability"),
      card("down windows", int(windows.length), "windows"),
      card("time down", dur(down * step), "downtime")));
    var tl = el("div", { class: "timeline", "data-chart": "uptime" });
    var stride = Math.max(1, Math.ceil(bk.length / 600));
    for (var i = 0; i < bk.length; i += stride) {
      var grp = bk.slice(i, i + stride), d = grp.filter(function (b) { return b.down_reason; }).length;
      var r = grp.reduce(function (s, b) { return s + b.requests; }, 0), e = grp.reduce(function (s, b) { return s + b.errors_5xx; }, 0);
      var color = d ? css("--c5") : r === 0 ? css("--line") : e ? css("--c4") : css("--ok");
      var text = when(epoch(grp[0].bucket)) + " \u2013 " + when(epoch(grp[grp.length - 1].bucket) + step) + " " + tzName() + "\n" +
        (d ? "down (" + grp.filter(function (b) { return b.down_reason; })[0].down_reason + ")" : "up") +
        "\nrequests: " + int(r) + "\n5xx: " + int(e);
      tl.appendChild(hoverTip(el("div", { style: "background:" + color, "data-down": d ? "1" : null }), text));
    }
    var key = el("div", { class: "legend", "data-legend": "uptime" });
    [["--ok", "up"], ["--c4", "up, with server errors (5xx)"], ["--c5", "down"], ["--line", "no requests"]].forEach(function (c) {
      key.appendChild(el("span", { "data-color": css(c[0]) }, el("i", { style: "background:" + css(c[0]) }), c[1]));
    });
    p.appendChild(el("div", { class: "chart" }, el("div", { class: "title", text: "Timeline" }), tl, key));
    var se = cube().series || {};
    var av = (se.requests || []).map(function (n, i) { return n ? 1 - (se.s5[i] || 0) / n : null; });
    p.appendChild(timeChart("availability", "Availability", [["availability", av, css("--ok"), pct]],
      { axisFmt: pct, bands: windows.map(function (w) { return [w.t0, w.t1]; }) }));
    p.appendChild(el("h3", { text: "Down windows" }));
    p.appendChild(windows.length ? table("down_windows", [["start", "from", "time"], ["end", "until", "time"], ["minutes", "minutes", "int"],
      ["requests", "requests", "int"], ["errors_5xx", "5xx", "int"], ["reason", "reason", "text"]], windows) : empty("No down windows in this range."));
  }

  // the values a grouped key stands for, most requests first ("FRA56-C1: 1,234")
  function rawTip(r) {
    return (r.raw || []).map(function (x) { return x[0] + ": " + int(+x[1]); }).join("\n") || null;
  }
  function panelCdn(p) {
    // cache statuses regardless of case, each shown as its most frequent spelling
    var cs = withShares(dimRows("cache").map(function (r) { r.key = r.raw && r.raw.length ? r.raw[0][0] : r.key; return r; }));
    var edges = dimRows("edge");
    var n = 0, h = 0, b = 0;
    cs.forEach(function (r) { n += r.requests; h += r.hits; b += r.bytes; });
    var o = rep("cdn", "overall")[0] || {};
    p.appendChild(el("div", { class: "cards" }, card("requests with a cache status", int(n), "cdn-requests"), card("cache hit ratio", n ? pct(h / n) : "\u2014", "hit"),
      card("data sent", bytes(b), "cdn-bytes"), isFull() ? card("median time to first byte", ms(o.ttfb_p50_ms), "ttfb") : null));
    p.appendChild(el("h3", { text: "Cache status" }));
    p.appendChild(bars("cache-status", cs.slice(0, 12), function (r) { return r.other ? "Other" : r.key; }, function (r) { return r.requests; },
      function (v, r) { return int(v) + " (" + pct(r.share) + ")"; }));
    p.appendChild(table("cache_status", [["key", "cache status", "text"], ["requests", "requests", "int"], ["share", "share", "pct"],
      ["hits", "hits", "int"], ["bytes", "data sent", "bytes"]], cs, { tip: rawTip }));
    p.appendChild(el("h3", { text: "Edge locations" }));
    p.appendChild(el("p", { class: "note", text: "Grouped by place (airport code); point at one for the edge names in it." }));
    p.appendChild(table("edges", [["key", "place", "text"], ["requests", "requests", "int"], ["hit", "hit ratio", "pct"], ["bytes", "data sent", "bytes"],
      ["ttfb", "average time to first byte", "ms"]], edges.map(function (r) {
      return { key: r.key, other: r.other, raw: r.raw, requests: r.requests, hit: r.hits / r.requests, bytes: r.bytes,
               ttfb: r.ttfb_n ? r.ttfb_sum / r.ttfb_n : null };
    }), { otherLabel: "Other edges", tip: rawTip }));
  }

  function panelShop(p) {
    if (!isFull()) p.appendChild(fullOnly());
    var f = rep("shop", "funnel"), rv = rep("shop", "revenue")[0] || {};
    p.appendChild(el("div", { class: "cards" }, card("orders", int(rv.orders), "orders"), card("revenue", money(rv.revenue), "revenue"),
      card("margin", money(rv.margin), "margin"), card("average order", money(rv.average_order), "aov"), card("customers", int(rv.customers), "customers")));
    p.appendChild(el("h3", { text: "Funnel" }));
    p.appendChild(bars("funnel", f, function (r) { return r.stage; }, function (r) { return r.visitors; }, function (v, r) {
      return int(v) + " visitors" + (r.step > 1 ? " (" + pct(r.conversion) + " of all, " + pct(r.step_conversion) + " of the step before)" : "");
    }, function () { return css("--ok"); }));
    p.appendChild(table("funnel", [["stage", "step", "text"], ["visitors", "visitors", "int"], ["events", "events", "int"],
      ["conversion", "conversion", "pct"], ["step_conversion", "from the step before", "pct"]], f));
    [["top_products", "Products", [["product_id", "product", "text"], ["product_name", "name", "text"], ["views", "views", "int"],
      ["added_to_basket", "added to basket", "int"], ["units", "units sold", "int"], ["revenue", "revenue", "money"], ["margin", "margin", "money"]]],
     ["top_searches", "Searches", [["search", "search", "text"], ["searches", "searches", "int"], ["visitors", "visitors", "int"]]],
     ["top_categories", "Categories", [["category", "category", "text"], ["units", "units", "int"], ["revenue", "revenue", "money"], ["margin", "margin", "money"]]],
     ["payment", "Payment", [["payment", "payment", "text"], ["orders", "orders", "int"], ["revenue", "revenue", "money"], ["share", "share", "pct"]]],
     ["shipping", "Shipping", [["shipping", "shipping", "text"], ["orders", "orders", "int"], ["revenue", "revenue", "money"], ["share", "share", "pct"]]]
    ].forEach(function (s) {
      var rows = rep("shop", s[0]);
      if (!rows.length) return;
      p.appendChild(el("h3", { text: s[1] }));
      p.appendChild(table(s[0], s[2], rows));
    });
  }

  function panelSnowplow(p) {
    if (!isFull()) p.appendChild(fullOnly());
    snowplowReports().forEach(function (name) {
      var r = S.data.reports[name];
      Object.keys(r.sections).forEach(function (sec) {
        var rows = r.sections[sec], cols = r.columns[sec] || (rows[0] ? Object.keys(rows[0]) : []);
        p.appendChild(el("h3", { text: r.title.replace(/^Snowplow: /, "") }));
        p.appendChild(rows.length ? table(name + "_" + sec, cols.map(function (c) {
          var v = rows[0] && rows[0][c];
          return [c, c.replace(/_/g, " "), typeof v === "number" ? "int" : "text"];
        }), rows) : empty("No events."));
      });
    });
  }

  function panelPages(p) {
    var rows = dimRows("path");
    p.appendChild(bars("pages", rows.slice(0, 10), function (r) { return r.other ? "Other paths" : r.key; }, function (r) { return r.requests; }, int));
    p.appendChild(table("pages", [["key", "path", "text"], ["requests", "requests", "int"], ["bytes", "data sent", "bytes"],
      ["e4", "4xx", "int"], ["e5", "5xx", "int"], ["avg", "average time", "ms"]], rows.map(function (r) {
      return { key: r.key, other: r.other, requests: r.requests, bytes: r.bytes, e4: r.e4, e5: r.e5, avg: r.dur_n ? r.dur_sum / r.dur_n : null };
    }), { otherLabel: "Other paths", total: keysOf("path") }));
  }

  function panelReferrers(p) {
    var rows = withShares(dimRows("referer"));
    p.appendChild(bars("referrers", rows.slice(0, 10), function (r) { return r.other ? "Other referrers" : r.key; }, function (r) { return r.requests; }, int));
    p.appendChild(table("referrers", [["key", "referrer", "text"], ["requests", "requests", "int"], ["share", "share", "pct"]], rows,
      { otherLabel: "Other referrers", total: keysOf("referer") }));
  }

  function agentRows() {
    return dimRows("agent").map(function (r) {
      var a = r.attrs || [];
      return { key: r.key === "" ? "(none)" : r.key, other: r.other, requests: r.requests, browser: a[0], version: a[1], os: a[2], device: a[3],
               bot: a[4] == null ? null : a[4] ? "bot" : "human" };
    });
  }
  function panelAgents(p) {
    var rows = withShares(agentRows());
    p.appendChild(table("agents", [["key", "user agent", "text"], ["browser", "browser", "text"], ["version", "version", "text"], ["os", "system", "text"],
      ["device", "device", "text"], ["bot", "kind", "text"], ["requests", "requests", "int"], ["share", "share", "pct"]], rows,
      { otherLabel: "Other agents", total: keysOf("agent") }));
  }
  function panelBrowsers(p) {
    var rows = dimRows("agent");
    [["browsers", "Browsers", 0], ["browser_versions", "Browser versions", 1], ["systems", "Operating systems", 2], ["devices", "Devices", 3],
     ["bots", "Bots and humans", 4]].forEach(function (g) {
      var gr = withShares(group(rows, g[2]));
      p.appendChild(el("h3", { text: g[1] }));
      p.appendChild(bars(g[0], gr.slice(0, 10), function (r) { return r.key; }, function (r) { return r.requests; },
        function (v, r) { return int(v) + " (" + pct(r.share) + ")"; }));
      p.appendChild(table(g[0], [["key", g[1].toLowerCase(), "text"], ["requests", "requests", "int"], ["share", "share", "pct"]], gr));
    });
    var bots = withShares(agentRows().filter(function (r) { return r.bot === "bot"; }));
    if (bots.length) {
      p.appendChild(el("h3", { text: "Bot agents" }));
      p.appendChild(table("bot_agents", [["browser", "bot", "text"], ["key", "user agent", "text"], ["requests", "requests", "int"]], bots));
    }
  }
  function panelVisitors(p) {
    var t = rep("summary", "totals")[0] || {};
    p.appendChild(el("div", { class: "cards" }, card("visitors (client and user agent per day)", visitorsShown(t.visitors), "visitors2"),
      card("requests", int(seriesSum("requests")), "requests2")));
    var se = cube().series || {}, c = cube(), b = bucketIdx();
    p.appendChild(timeChart("visitors", "Visitors per interval", [["visitors", se.visitors || [], css("--ok"), int], ["requests", se.requests || [], css("--accent"), int]]));
    var rows = [];
    for (var i = b[0]; i < b[1]; i++) rows.push({ t: c.t0 + i * c.step, requests: se.requests[i], visitors: se.visitors[i], bytes: se.bytes[i] });
    p.appendChild(table("intervals", [["t", "from (" + tzName() + ")", "time"], ["requests", "requests", "int"], ["visitors", "visitors", "int"],
      ["bytes", "data sent", "bytes"]], rows));
  }
  function panelHours(p) {
    var h = new Array(24).fill(0);
    dimRows("hour").forEach(function (r) { if (!r.other) h[r.key] = r.requests; });
    var tot = h.reduce(function (s, v) { return s + v; }, 0);
    var rows = h.map(function (v, i) { return { key: i, label: (i < 10 ? "0" : "") + i + ":00", requests: v, share: tot ? v / tot : null }; });
    p.appendChild(bars("hourly", rows, function (r) { return r.label; }, function (r) { return r.requests; },
      function (v, r) { return int(v) + " (" + pct(r.share) + ")"; }));
    p.appendChild(table("hours", [["label", "hour (" + tzName() + ")", "text"], ["requests", "requests", "int"], ["share", "share", "pct"]], rows));
  }
  function panelSites(p) {
    var rows = withShares(dimRows("site"));
    p.appendChild(bars("sites", rows.slice(0, 12), function (r) { return r.other ? "Other sites" : r.key; }, function (r) { return r.requests; }, int));
    p.appendChild(table("sites", [["key", "site", "text"], ["requests", "requests", "int"], ["share", "share", "pct"], ["bytes", "data sent", "bytes"],
      ["e5", "5xx", "int"]], rows, { otherLabel: "Other sites" }));
  }

  // --- layout -----------------------------------------------------------------------------------
  var nav, main, rangeNode, resetBtn, liveNode, panelsOn = [];
  function build() {
    var app = document.getElementById("app");
    app.textContent = "";
    tip = el("div", { id: "tip", role: "tooltip" });
    rangeNode = el("span", { class: "range", id: "range" });
    resetBtn = el("button", { type: "button", id: "reset", text: "Show the whole period", onclick: resetZoom });
    liveNode = el("span", { class: "live", id: "live" });
    statusNode = el("span", { class: "note", id: "status" });
    var theme = el("button", { type: "button", id: "theme", onclick: cycleTheme });
    var head = el("header", { class: "top" }, el("h1", { text: CONF.title || "logferry report" }), rangeNode, resetBtn, liveNode, statusNode,
      el("span", { class: "spacer" }), CONF.api ? filtersBox() : scopeNote(), theme);
    nav = el("nav", { class: "side", "aria-label": "Reports" });
    main = el("main");
    app.appendChild(head);
    app.appendChild(el("div", { class: "layout" }, nav, main));
    document.body.appendChild(tip);
    applyTheme(themePref(), theme);
    window.addEventListener("hashchange", function () { show(hashPanel()); });
    // a resize draws the shown panel again at its new width (the others when next shown);
    // the navigation stays as it is (rebuilding it could swallow a click)
    window.addEventListener("resize", function () {
      clearTimeout(S.rs);
      S.rs = setTimeout(function () {
        panelsOn.forEach(function (id) { S.dirty[id] = true; });
        if (S.panel) renderPanel(S.panel);
      }, 200);
    });
    function renderAll() { panelsOn.forEach(function (id) { if (S.dirty[id] !== false) renderPanel(id); }); }
    window.addEventListener("beforeprint", renderAll);
    if (window.matchMedia) {
      var mq = window.matchMedia("print");
      if (mq.addEventListener) mq.addEventListener("change", function (e) { if (e.matches) renderAll(); });
      if (mq.matches) setTimeout(renderAll, 0);
    }
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") hideTip(); });
  }
  function scopeNote() {
    // a report file has no filter controls: it says what its data was filtered to (--site ...)
    var f = S.filters, parts = [];
    if (f.sites) parts.push((f.sites.length > 1 ? "sites " : "site ") + f.sites.join(", "));
    if (f.formats) parts.push((f.formats.length > 1 ? "formats " : "format ") + f.formats.join(", "));
    if (f.status_classes) parts.push("status " + f.status_classes.map(function (c) { return c + "xx"; }).join(", "));
    if (!f.bots) parts.push("no bots");
    return parts.length ? el("span", { class: "note", id: "scope", text: parts.join(" \u00b7 ") }) : null;
  }
  function filtersBox() {
    var f = S.filters, ch = S.data.choices || {};
    var site = el("select", { "aria-label": "Site", id: "f-site" }, el("option", { value: "", text: "all sites" }),
      (ch.sites || []).map(function (s) { return el("option", { value: s, text: s }); }));
    if (f.sites && f.sites.length === 1) site.value = f.sites[0];
    var fmt = el("select", { "aria-label": "Format", id: "f-format" }, el("option", { value: "", text: "all formats" }),
      (ch.formats || []).map(function (s) { return el("option", { value: s, text: s }); }));
    if (f.formats && f.formats.length === 1) fmt.value = f.formats[0];
    var classes = [1, 2, 3, 4, 5].map(function (c) {
      var cb = el("input", { type: "checkbox", value: String(c), "data-class": c });
      cb.checked = !f.status_classes || f.status_classes.indexOf(c) >= 0;
      return el("label", null, cb, c + "xx");
    });
    var bots = el("input", { type: "checkbox", id: "f-bots" });
    bots.checked = f.bots !== false;
    function changed() {
      f.sites = site.value ? [site.value] : null;
      f.formats = fmt.value ? [fmt.value] : null;
      var on = classes.map(function (l) { return l.firstChild; }).filter(function (x) { return x.checked; }).map(function (x) { return +x.value; });
      f.status_classes = on.length === 5 ? null : on;
      f.bots = bots.checked;
      fetchData();
    }
    [site, fmt, bots].concat(classes.map(function (l) { return l.firstChild; })).forEach(function (x) { x.addEventListener("change", changed); });
    return el("div", { class: "filters" }, site, fmt, classes, el("label", null, bots, "bots"));
  }
  function themePref() { try { return localStorage.getItem("logferry-theme") || "auto"; } catch (e) { return "auto"; } }
  function applyTheme(t, btn) {
    if (t === "auto") document.documentElement.removeAttribute("data-theme"); else document.documentElement.setAttribute("data-theme", t);
    (btn || document.getElementById("theme")).textContent = { auto: "Theme: system", light: "Theme: light", dark: "Theme: dark" }[t];
  }
  function cycleTheme() {
    var t = { auto: "light", light: "dark", dark: "auto" }[themePref()] || "auto";
    try { localStorage.setItem("logferry-theme", t); } catch (e) { /* a file page may have no storage */ }
    applyTheme(t); rerender();
  }
  function headerText() {
    var r = curRange();
    rangeNode.textContent = r ? when(r[0]) + " \u2013 " + when(r[1]) + " " + tzName() : "no requests";
    if (r) { rangeNode.setAttribute("data-since", r[0]); rangeNode.setAttribute("data-until", r[1]); }
    var zoomed = !isFull() || (CONF.api && (S.filters.since || S.filters.until));
    resetBtn.style.display = zoomed ? "" : "none";
    liveNode.textContent = CONF.live ? "live \u00b7 last request " + (S.data.last_request ? when(epoch(S.data.last_request), true) + " " + tzName() : "\u2014") : "";
  }
  function rerender() {
    S.charts.forEach(function (c) { c.destroy(); });
    S.charts = [];
    hideTip();
    headerText();
    nav.textContent = ""; main.textContent = "";
    panelsOn = [];
    var none = [];
    (S.data.warnings || []).forEach(function (w) { main.appendChild(el("div", { class: "warn", text: w })); });
    PANELS.forEach(function (pd) {
      if (!pd[3]()) { none.push(pd[1]); return; }
      panelsOn.push(pd[0]);
      nav.appendChild(el("a", { href: "#" + pd[0], "data-panel": pd[0], text: pd[1] }));
      main.appendChild(el("section", { class: "panel", id: "panel-" + pd[0], "data-panel": pd[0], "aria-label": pd[1] }));
      S.dirty[pd[0]] = true;
    });
    if (none.length) nav.appendChild(el("p", { class: "none", text: "No data for: " + none.join(", ") + "." }));
    var want = hashPanel();
    show(panelsOn.indexOf(want) >= 0 ? want : S.panel && panelsOn.indexOf(S.panel) >= 0 ? S.panel : panelsOn[0]);
  }
  function renderPanel(id) {
    var pd = PANELS.filter(function (x) { return x[0] === id; })[0], sec = document.getElementById("panel-" + id);
    if (!pd || !sec) return;
    S.charts = S.charts.filter(function (c) { if (sec.contains(c.root)) { c.destroy(); return false; } return true; });
    sec.textContent = "";
    sec.appendChild(el("h2", { text: pd[1] }));
    pd[2](sec);
    S.dirty[id] = false;
    var wasOn = sec.classList.contains("on");
    sec.classList.add("on");
    sec.querySelectorAll(".chart").forEach(function (c) { if (c._mount) c._mount(); });
    if (!wasOn && id !== S.panel) sec.classList.remove("on");
  }
  function show(id) {
    if (panelsOn.indexOf(id) < 0) id = panelsOn[0];
    S.panel = id;
    nav.querySelectorAll("a").forEach(function (a) { a.classList.toggle("on", a.getAttribute("data-panel") === id); });
    main.querySelectorAll("section.panel").forEach(function (s) { s.classList.toggle("on", s.getAttribute("data-panel") === id); });
    window.scrollTo(0, 0);
    if (S.dirty[id] !== false) renderPanel(id);
    document.body.setAttribute("data-panel", id);
    saveUrl();
  }

  build();
  rangeFromUrl();
  rerender();
  // live: a cheap look at the follower's status every second (the lake's snapshot every
  // 5 s); the data are fetched again when it has stored lines since (a new snapshot was
  // committed), at most every LIVE_GAP ms or twice as long as the last fetch took (a large
  // database is not recomputed back to back while lines stream in)
  if (CONF.api && CONF.live) {
    var LIVE_GAP = 2000, lake = !!CONF.lake, seen = lake ? String(CONF.snapshot) : null, lastAt = 0, took = 0,
      polled = 0;
    var refetch = function () {
      var t0 = lastAt = Date.now();
      var done = fetchData(true);
      if (done) done.then(function () { took = Date.now() - t0; });
    };
    setInterval(function () {
      if (document.hidden || S.inflight) return;
      if (!CONF.status) { if (Date.now() - lastAt >= 5000) refetch(); return; }
      if (lake && Date.now() - polled < 4900) return;
      polled = Date.now();
      fetch(CONF.status, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (st) {
          if (!st) return;  // (the console did not answer: the next look tries again)
          var f = st.follower, s = st.store;
          // (a lake whose catalog cannot be read now has no snapshot_id: nothing to do)
          // (the follower commits each time it stores lines: what a site-scoped token sees of it)
          var mark = f ? String(f.commits) : lake && s && s.snapshot_id !== undefined ? String(s.snapshot_id) : seen;
          if (mark === seen || Date.now() - lastAt < Math.max(LIVE_GAP, 2 * took)) return;
          seen = mark;
          // (a new snapshot of the lake: the page again, its header naming that snapshot; the
          // panel, range and filters are in the URL)
          if (lake && !f) { location.reload(); return; }
          refetch();
        })
        .catch(function () { /* the next second tries again */ });
    }, 1000);
  }
  document.body.setAttribute("data-ready", "1");
})();
