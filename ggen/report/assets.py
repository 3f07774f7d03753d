"""The stylesheet and script inlined into every report page, so it needs no network at all.

The script reads the run data from ``<script id="run-data" type="application/json">``, draws
the timeline (one absolutely positioned ``div`` per task, carrying ``data-task`` and
``data-status``) and the sortable task table, then records how long that took in
``<body data-render-ms>``.
"""

from __future__ import annotations

CSS = """
:root {
  --bg: #f4f5f7; --card: #ffffff; --ink: #1f2328; --muted: #656d76; --line: #d8dee4;
  --soft: #eef1f4; --accent: #0969da;
  --ok: #2da44e; --cached: #3b82f6; --failed: #cf222e; --skipped: #afb8c1;
  --interrupted: #d4a72c; --timeout: #e16f24; --crit: #1f2328;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --card: #161b22; --ink: #e6edf3; --muted: #8d96a0; --line: #30363d;
    --soft: #21262d; --accent: #4493f8; --skipped: #6e7681; --crit: #f0f6fc;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif;
}
main { max-width: 1400px; margin: 0 auto; padding: 20px 24px 40px; }
header.top { display: flex; align-items: flex-start; justify-content: space-between; gap: 16px;
  margin-bottom: 16px; }
header.top h1 { font-size: 20px; margin: 0 0 4px; font-weight: 600; letter-spacing: -0.01em; }
header.top h1 .brand { color: var(--muted); font-weight: 500; }
.meta { color: var(--muted); font-size: 13px; display: flex; flex-wrap: wrap; gap: 4px 14px; }
.meta code, code { font-family: var(--mono); font-size: 12.5px; }
.badge { display: inline-block; padding: 3px 10px; border-radius: 999px; font-weight: 600;
  font-size: 12.5px; white-space: nowrap; color: #fff; }
.badge.pass { background: var(--ok); }
.badge.fail { background: var(--failed); }
.badge.stop { background: var(--interrupted); }
#totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(118px, 1fr)); gap: 10px;
  margin-bottom: 16px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; }
.stat .v { white-space: nowrap; font-size: 22px; font-weight: 600;
  font-variant-numeric: tabular-nums; letter-spacing: -0.02em; }
.stat .k { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: 0.04em; }
.stat.bad .v { color: var(--failed); }
.stat .bar-mini { height: 4px; border-radius: 2px; background: var(--soft); margin-top: 6px;
  overflow: hidden; }
.stat .bar-mini span { display: block; height: 100%; background: var(--cached); }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  margin-bottom: 16px; overflow: hidden; }
.card-head { display: flex; align-items: center; flex-wrap: wrap; gap: 8px 16px;
  padding: 10px 16px; border-bottom: 1px solid var(--line); }
.card-head h2 { font-size: 15px; margin: 0; font-weight: 600; }
.card-head .grow { flex: 1; }
.card-body { padding: 12px 16px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; color: var(--muted); font-size: 12.5px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; }
.s-ok { background: var(--ok); }
.s-cached { background: var(--cached); }
.s-failed { background: var(--failed); }
.s-skipped, .s-no-script { background: var(--skipped); }
.s-interrupted { background: var(--interrupted); }
.s-timeout { background: var(--timeout); }
.sw.crit { background: transparent; border: 2px solid var(--crit); }
.tools { display: inline-flex; gap: 6px; align-items: center; }
button, select, input[type=search] { font: inherit; font-size: 13px; color: var(--ink);
  background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 3px 9px; }
button { cursor: pointer; min-width: 28px; }
button:hover { background: var(--soft); }
label.check { display: inline-flex; gap: 5px; align-items: center; font-size: 13px;
  color: var(--muted); cursor: pointer; }
.tl { display: flex; font-size: 12px; }
.tl-labels { flex: 0 0 150px; border-right: 1px solid var(--line); background: var(--card);
  z-index: 1; }
.tl-labels div { height: 26px; line-height: 26px; padding: 0 10px 0 16px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; color: var(--muted); font-family: var(--mono);
  font-size: 11.5px; }
.tl-labels .tl-axis-gap { height: 24px; border-bottom: 1px solid var(--line); }
.tl-scroll { flex: 1; overflow-x: auto; overflow-y: hidden; }
.tl-inner { position: relative; min-width: 100%; padding-right: 12px; }
.tl-axis { position: relative; height: 24px; border-bottom: 1px solid var(--line); }
.tl-axis span { position: absolute; top: 5px; transform: translateX(-50%); color: var(--muted);
  font-variant-numeric: tabular-nums; white-space: nowrap; font-size: 11px; }
.tl-axis span.first { transform: none; }
.tl-axis span.last { transform: translateX(-100%); }
.tl-grid { position: absolute; top: 24px; bottom: 0; width: 1px; background: var(--soft); }
.tl-lane { position: relative; height: 26px; }
.tl-lane:nth-child(even) { background: color-mix(in srgb, var(--soft) 40%, transparent); }
.bar { position: absolute; top: 4px; height: 18px; min-width: 2px; border-radius: 3px;
  cursor: pointer; overflow: hidden; color: #fff; font-size: 11px; line-height: 18px;
  padding: 0 4px; white-space: nowrap; text-overflow: ellipsis;
  box-shadow: inset 0 0 0 1px rgba(0, 0, 0, 0.12); }
.bar.s-skipped, .bar.s-interrupted { color: #1f2328; }
.bar.s-cached { opacity: 0.9; }
.tl.show-crit .bar.crit { box-shadow: 0 0 0 2px var(--crit); z-index: 1; }
.tl.focus-crit .bar:not(.crit) { opacity: 0.25; }
.bar.dep { box-shadow: 0 0 0 2px var(--accent); z-index: 2; }
.bar.hover { filter: brightness(1.12); z-index: 3; }
.tl-empty { padding: 20px 16px; color: var(--muted); }
.crit-sum { font-size: 13px; color: var(--muted); }
.crit-sum b { color: var(--ink); font-variant-numeric: tabular-nums; }
.chain { display: flex; flex-wrap: wrap; gap: 6px 4px; align-items: center; padding: 10px 16px;
  border-top: 1px solid var(--line); font-size: 12px; max-height: 96px; overflow: auto; }
.chain .step { display: inline-flex; gap: 6px; align-items: center; padding: 2px 8px;
  border: 1px solid var(--line); border-radius: 999px; font-family: var(--mono);
  font-size: 11.5px; white-space: nowrap; }
.chain .step em { font-style: normal; color: var(--muted); }
.chain .arrow { color: var(--muted); }
#tip { position: fixed; z-index: 10; pointer-events: none; display: none; max-width: 420px;
  background: #1f2328; color: #f0f3f6; border-radius: 6px; padding: 8px 10px; font-size: 12px;
  box-shadow: 0 6px 20px rgba(0, 0, 0, 0.25); }
#tip .t { font-weight: 600; font-family: var(--mono); margin-bottom: 4px; word-break: break-all; }
#tip table { border-collapse: collapse; }
#tip td { padding: 0 10px 0 0; vertical-align: top; }
#tip td:first-child { color: #9ea7b3; }
#tip .err { margin-top: 4px; color: #ffaba8; font-family: var(--mono); white-space: pre-wrap;
  word-break: break-word; }
.failure { padding: 10px 16px; border-top: 1px solid var(--line); }
.failure:first-child { border-top: 0; }
.failure .t { font-family: var(--mono); font-weight: 600; }
.failure .m { color: var(--muted); font-size: 12.5px; margin-left: 8px; }
.failure pre { margin: 6px 0 0; padding: 8px 10px; background: var(--soft); border-radius: 6px;
  font-family: var(--mono); font-size: 12px; white-space: pre-wrap; word-break: break-word;
  max-height: 180px; overflow: auto; }
.history-body { display: flex; gap: 24px; align-items: center; flex-wrap: wrap; }
.history svg { display: block; flex: 1 1 520px; max-width: 760px; height: auto; }
.compare { display: grid; grid-template-columns: auto auto; gap: 6px 16px; margin: 0;
  font-size: 13px; font-variant-numeric: tabular-nums; }
.compare dt { color: var(--muted); }
.compare dd { margin: 0; font-weight: 600; text-align: right; }
.compare dd.worse { color: var(--failed); }
.compare dd.better { color: var(--ok); }
.history .axis { stroke: var(--line); }
.history text { fill: var(--muted); font-size: 11px; font-family: inherit; }
.history .wall { fill: none; stroke: var(--accent); stroke-width: 2; }
.history .hits { fill: none; stroke: var(--ok); stroke-width: 2; stroke-dasharray: 5 3; }
.history .pt-wall { fill: var(--accent); }
.history .pt-hits { fill: var(--ok); }
.history .now { fill: none; stroke: var(--ink); stroke-width: 1.5; }
.table-wrap { max-height: 560px; overflow: auto; }
#tasks { width: 100%; border-collapse: collapse; font-size: 12.5px;
  font-variant-numeric: tabular-nums; }
#tasks th { position: sticky; top: 0; background: var(--card); text-align: left;
  font-weight: 600; padding: 7px 10px; border-bottom: 1px solid var(--line); cursor: pointer;
  user-select: none; white-space: nowrap; z-index: 1; }
#tasks th:hover { color: var(--accent); }
#tasks th.num, #tasks td.num { text-align: right; }
#tasks th[aria-sort=ascending]::after { content: " \\25B4"; }
#tasks th[aria-sort=descending]::after { content: " \\25BE"; }
#tasks td { padding: 5px 10px; border-bottom: 1px solid var(--soft); white-space: nowrap; }
#tasks td.ws { font-family: var(--mono); font-size: 12px; max-width: 260px; overflow: hidden;
  text-overflow: ellipsis; }
#tasks td.err { color: var(--failed); max-width: 200px; overflow: hidden;
  text-overflow: ellipsis; }
#tasks tbody tr:hover { background: var(--soft); }
#tasks tr.flash { animation: flash 1.6s ease-out; }
@keyframes flash { from { background: color-mix(in srgb, var(--accent) 30%, transparent); } }
.pill { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 11.5px;
  line-height: 18px; color: #fff; font-weight: 500; }
.pill.s-skipped, .pill.s-interrupted { color: #1f2328; }
.crit-mark { color: var(--crit); font-weight: 700; margin-left: 4px; }
.muted { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 8px; }
"""

JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var tasks = data.tasks, wall = Math.max(1, data.wall), crit = {}, critOrder = {};
  data.crit.forEach(function (i, n) { crit[i] = true; critOrder[i] = n + 1; });
  var STATUS = ["ok", "cached", "failed", "skipped", "interrupted", "timeout", "no-script"];
  var LABEL = {ok: "ok", cached: "cached", failed: "failed", skipped: "skipped",
    interrupted: "interrupted", timeout: "timeout", "no-script": "no script"};
  var ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  function ms(v) {
    if (v === null || v === undefined) return "";
    if (v < 1000) return Math.round(v) + " ms";
    if (v < 60000) return (v / 1000).toFixed(v < 10000 ? 2 : 1) + " s";
    var s = Math.round(v / 1000);
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function kb(v) {
    if (!v) return "";
    if (v < 1024) return v + " KiB";
    if (v < 1048576) return (v / 1024).toFixed(1) + " MiB";
    return (v / 1048576).toFixed(2) + " GiB";
  }
  function axisStep(span) {
    var raw = span / 8, mins = [60000, 120000, 300000, 600000, 1200000, 1800000, 3600000], i;
    if (raw >= 45000) {
      for (i = 0; i < mins.length; i++) if (mins[i] >= raw) return mins[i];
      return Math.ceil(raw / 3600000) * 3600000;
    }
    var mag = Math.pow(10, Math.floor(Math.log(Math.max(raw, 1)) / Math.LN10));
    var steps = [1, 2, 5, 10];
    for (i = 0; i < steps.length; i++) if (steps[i] * mag >= raw) return steps[i] * mag;
    return 10 * mag;
  }
  function tick(t, step) {
    if (t === 0) return "0";
    if (step >= 60000) return t % 3600000 ? Math.round(t / 60000) + "m" : t / 3600000 + "h";
    if (step < 1000 && t < 1000) return Math.round(t) + " ms";
    return (t / 1000).toFixed(step >= 1000 ? 0 : step >= 100 ? 1 : 2) + " s";
  }

  /* ---------- timeline ---------- */
  var tl = document.getElementById("timeline");
  var zoom = 1, bars = [];
  function renderTimeline() {
    if (!data.lanes.length) {
      tl.innerHTML = '<div class="tl-empty">No task started in this run.</div>';
      return;
    }
    var labels = ['<div class="tl-axis-gap"></div>'], rows = [], axis = [], grid = [];
    var widthPx = Math.max(1, tl.clientWidth - 150) * zoom;
    var step = axisStep(wall / zoom), t, pct, n;
    for (n = 0; n * step <= wall; n++) {
      t = n * step;
      pct = (t / wall) * 100;
      var edge = t === 0 ? ' class="first"' : pct > 100 - 3000 / widthPx ?
        ' class="last"' : "";
      axis.push('<span' + edge + ' style="left:' + pct.toFixed(3) +
        '%">' + tick(t, step) + "</span>");
      if (t > 0) grid.push('<div class="tl-grid" style="left:' + pct.toFixed(3) + '%"></div>');
    }
    data.lanes.forEach(function (lane) {
      labels.push('<div title="' + esc(lane.name) + '">' + esc(lane.name) + "</div>");
      var html = [];
      lane.tasks.forEach(function (i) {
        var task = tasks[i], left = (task.s / wall) * 100, width = ((task.e - task.s) / wall) * 100;
        var cls = "bar s-" + task.st + (crit[i] ? " crit" : "");
        var text = (width / 100) * widthPx > 48 ? esc(task.id) : "";
        html.push('<div class="' + cls + '" data-task="' + esc(task.id) + '" data-status="' +
          esc(task.st) + '" data-i="' + i + '" style="left:' + left.toFixed(3) + "%;width:" +
          width.toFixed(3) + '%">' + text + "</div>");
      });
      rows.push('<div class="tl-lane" data-lane="' + esc(lane.name) + '">' + html.join("") +
        "</div>");
    });
    var scroll = tl.querySelector(".tl-scroll"), keep = scroll ? scroll.scrollLeft : 0;
    tl.innerHTML = '<div class="tl-labels">' + labels.join("") + '</div><div class="tl-scroll">' +
      '<div class="tl-inner" style="width:' + zoom * 100 + '%"><div class="tl-axis">' +
      axis.join("") + "</div>" + grid.join("") + rows.join("") + "</div></div>";
    tl.querySelector(".tl-scroll").scrollLeft = keep;
    bars = [];
    Array.prototype.forEach.call(tl.querySelectorAll(".bar"), function (el) {
      bars[+el.getAttribute("data-i")] = el;
    });
  }

  /* ---------- tooltip and dependency highlight ---------- */
  var tip = document.getElementById("tip"), hovered = null;
  function tipHtml(task, i) {
    var rows = [["status", LABEL[task.st] + (task.ex !== null ? " (exit " + task.ex + ")" : "")],
      ["cache", task.ca], ["worker", task.w], ["start", "+" + ms(task.s)],
      ["duration", ms(task.d)], ["cpu", ms(task.cpu)], ["peak rss", kb(task.rss)]];
    if (task.a > 1) rows.push(["attempts", task.a]);
    if (task.k) rows.push(["key", task.k.slice(0, 16) + "\u2026"]);
    if (task.deps.length) rows.push(["deps", task.deps.length + " (outlined)"]);
    if (crit[i]) rows.push(["critical path", "step " + critOrder[i] + " of " + data.crit.length]);
    var html = '<div class="t">' + esc(task.id) + "</div><table>";
    rows.forEach(function (r) {
      if (r[1] !== "" && r[1] !== null) html += "<tr><td>" + r[0] + "</td><td>" + esc(r[1]) +
        "</td></tr>";
    });
    html += "</table>";
    if (task.err) html += '<div class="err">' + esc(task.err.split("\n").slice(0, 6).join("\n")) +
      "</div>";
    return html;
  }
  function setDeps(i, on) {
    tasks[i].deps.forEach(function (d) { if (bars[d]) bars[d].classList.toggle("dep", on); });
  }
  function moveTip(ev) {
    var x = ev.clientX + 14, y = ev.clientY + 14, r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = ev.clientX - r.width - 14;
    if (y + r.height > window.innerHeight - 8) y = ev.clientY - r.height - 14;
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }
  tl.addEventListener("mouseover", function (ev) {
    var el = ev.target.closest ? ev.target.closest(".bar") : null;
    if (!el || el === hovered) return;
    if (hovered) {
      hovered.classList.remove("hover");
      setDeps(+hovered.getAttribute("data-i"), false);
    }
    hovered = el;
    var i = +el.getAttribute("data-i");
    el.classList.add("hover");
    setDeps(i, true);
    tip.innerHTML = tipHtml(tasks[i], i);
    tip.style.display = "block";
    moveTip(ev);
  });
  tl.addEventListener("mousemove", function (ev) { if (hovered) moveTip(ev); });
  tl.addEventListener("mouseout", function (ev) {
    if (!hovered || (ev.relatedTarget && hovered.contains(ev.relatedTarget))) return;
    var el = ev.relatedTarget && ev.relatedTarget.closest ? ev.relatedTarget.closest(".bar") : null;
    if (el === hovered) return;
    hovered.classList.remove("hover");
    setDeps(+hovered.getAttribute("data-i"), false);
    hovered = null;
    tip.style.display = "none";
  });
  tl.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest(".bar") : null;
    if (!el) return;
    var row = document.querySelector('#tasks tr[data-i="' + el.getAttribute("data-i") + '"]');
    if (!row) { filter.value = ""; status.value = ""; renderTable(); }
    row = document.querySelector('#tasks tr[data-i="' + el.getAttribute("data-i") + '"]');
    if (row) {
      row.scrollIntoView({block: "center", behavior: "smooth"});
      row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash");
    }
  });

  function setZoom(z) { zoom = Math.min(64, Math.max(1, z)); renderTimeline(); }
  document.getElementById("zoom-in").addEventListener("click", function () { setZoom(zoom * 2); });
  document.getElementById("zoom-out").addEventListener("click", function () { setZoom(zoom / 2); });
  document.getElementById("zoom-fit").addEventListener("click", function () { setZoom(1); });
  var showCrit = document.getElementById("show-crit");
  var focusCrit = document.getElementById("focus-crit");
  function critClasses() {
    tl.classList.toggle("show-crit", showCrit.checked);
    tl.classList.toggle("focus-crit", focusCrit.checked);
  }
  showCrit.addEventListener("change", critClasses);
  focusCrit.addEventListener("change", critClasses);

  /* ---------- task table ---------- */
  var COLS = [
    {k: "ws", t: "Workspace", v: function (x) { return x.ws; }},
    {k: "ph", t: "Phase", v: function (x) { return x.ph; }},
    {k: "st", t: "Status", v: function (x) { return STATUS.indexOf(x.st); }},
    {k: "ca", t: "Cache", v: function (x) { return x.ca; }},
    {k: "w", t: "Worker", v: function (x) { return x.w; }},
    {k: "s", t: "Start", n: 1, v: function (x) { return x.s === null ? Infinity : x.s; }},
    {k: "d", t: "Duration", n: 1, v: function (x) { return x.d; }},
    {k: "cpu", t: "CPU", n: 1, v: function (x) { return x.cpu; }},
    {k: "rss", t: "Peak RSS", n: 1, v: function (x) { return x.rss; }},
    {k: "a", t: "Attempts", n: 1, v: function (x) { return x.a; }},
    {k: "ex", t: "Exit", n: 1, v: function (x) { return x.ex === null ? -Infinity : x.ex; }},
    {k: "err", t: "Error", v: function (x) { return x.err || ""; }}
  ];
  var table = document.getElementById("tasks"), sortCol = 5, sortDir = 1;
  var filter = document.getElementById("filter"), status = document.getElementById("status-filter");
  var shown = document.getElementById("shown");
  table.querySelector("thead").innerHTML = "<tr>" + COLS.map(function (c, n) {
    return '<th data-col="' + n + '" class="' + (c.n ? "num" : "") + '" scope="col">' + c.t +
      "</th>";
  }).join("") + "</tr>";
  function cmp(a, b) {
    var col = COLS[sortCol], va = col.v(tasks[a]), vb = col.v(tasks[b]);
    if (va < vb) return -sortDir;
    if (va > vb) return sortDir;
    return a - b;
  }
  function renderTable() {
    var q = filter.value.trim().toLowerCase(), st = status.value, order = [], i;
    for (i = 0; i < tasks.length; i++) {
      var x = tasks[i];
      if (st && x.st !== st) continue;
      if (q && (x.id + " " + x.w + " " + x.ca + " " + (x.err || "")).toLowerCase().indexOf(q) < 0)
        continue;
      order.push(i);
    }
    order.sort(cmp);
    var html = order.map(function (i) {
      var x = tasks[i];
      return '<tr data-task="' + esc(x.id) + '" data-status="' + esc(x.st) + '" data-i="' + i +
        '"><td class="ws" title="' + esc(x.id) + '">' + esc(x.ws) +
        (crit[i] ? '<span class="crit-mark" title="on the critical path">\u25C6</span>' : "") +
        "</td><td>" + esc(x.ph) + '</td><td><span class="pill s-' + esc(x.st) + '">' +
        esc(LABEL[x.st] || x.st) + "</span></td><td>" + esc(x.ca) + "</td><td>" + esc(x.w) +
        '</td><td class="num">' + (x.s === null ? "" : "+" + ms(x.s)) + '</td><td class="num">' +
        ms(x.d) + '</td><td class="num">' + ms(x.cpu) + '</td><td class="num">' + kb(x.rss) +
        '</td><td class="num">' + x.a + '</td><td class="num">' + (x.ex === null ? "" : x.ex) +
        '</td><td class="err" title="' + esc(x.err || "") + '">' + esc(x.err || "") +
        "</td></tr>";
    });
    table.querySelector("tbody").innerHTML = html.join("");
    shown.textContent = order.length === tasks.length ? tasks.length + " tasks" :
      order.length + " of " + tasks.length + " tasks";
    Array.prototype.forEach.call(table.querySelectorAll("th"), function (th, n) {
      if (n === sortCol) th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }
  table.querySelector("thead").addEventListener("click", function (ev) {
    var th = ev.target.closest ? ev.target.closest("th") : null;
    if (!th) return;
    var n = +th.getAttribute("data-col");
    if (n === sortCol) sortDir = -sortDir;
    else { sortCol = n; sortDir = COLS[n].n ? -1 : 1; }
    renderTable();
  });
  filter.addEventListener("input", renderTable);
  status.addEventListener("change", renderTable);

  renderTimeline();
  critClasses();
  renderTable();
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(renderTimeline, 150);
  });
  document.body.setAttribute("data-render-ms", performance.now().toFixed(1));
})();
"""
