// The wrpn coordinator's web page: plain JS, no libraries. Reads the read-only JSON API under
// /api/v1 (the gRPC answers in protobuf's JSON mapping: int64 fields arrive as strings, unset
// optional fields are absent). Views by URL fragment: #/ sweeps and workers, #/sweep/ID the grid,
// the Pareto plot and the trials, #/trial/ID the learning curves. A viewer token is asked for
// when the API answers 401/403 and kept in sessionStorage; "#...&token=T" in the URL stores T and
// is removed from the address bar. Views showing something unfinished refresh every 3 s.
"use strict";

const TOKEN_KEY = "wrpn.token";
const REFRESH_MS = 3000;
const SVGNS = "http://www.w3.org/2000/svg";
const SERIES_COLOURS = ["#2458c6", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285",
                        "#e67700", "#5c940d", "#364fc7", "#a61e4d"];
let generation = 0;  // bumped by each navigation; a stale refresh timer does nothing
let costMode = "uniform";  // which of the cells' two compute costs the page shows

// ---- plumbing ----
class AuthNeeded extends Error {}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined)
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) e.setAttribute(k, v);
  for (const c of children.flat()) if (c) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch("/api/v1" + path, { headers, cache: "no-store" });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401 || r.status === 403) throw new AuthNeeded((body && body.error) || r.statusText);
  if (!r.ok) throw new Error((body && body.error) || (r.status + " " + r.statusText));
  return body;
}

function takeTokenFromUrl() {
  const m = location.hash.match(/[#&]token=([^&]*)/);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  const rest = location.hash.replace(/[#&]token=[^&]*/, "").replace(/^#?&?/, "#");
  history.replaceState(null, "", location.pathname + (rest === "#" ? "#/" : rest));
}

function showLogin(message) {
  document.getElementById("main").replaceChildren();
  document.getElementById("main").dataset.view = "login";
  const form = document.getElementById("login");
  form.hidden = false;
  document.getElementById("login-error").textContent =
      sessionStorage.getItem(TOKEN_KEY) ? "The token was refused: " + message : "";
  document.getElementById("signout").hidden = true;
  document.getElementById("token").focus();
}

const num = (v) => (v === undefined || v === null ? NaN : Number(v));
const has = (v) => v !== undefined && v !== null && !Number.isNaN(Number(v));
const fixed = (v, d) => (has(v) ? Number(v).toFixed(d) : "–");
const signed = (v, d) => (has(v) ? (Number(v) >= 0 ? "+" : "−") + Math.abs(Number(v)).toFixed(d) : "–");
const short = (s) => String(s || "").replace(/^(SWEEP|TRIAL|ATTEMPT)_/, "");
const stateTag = (s) => el("span", { class: "state " + short(s), text: short(s) });
const when = (ms) => (num(ms) > 0 ? new Date(num(ms)).toLocaleString() : "–");
const isDone = (s) => ["SUCCEEDED", "FAILED", "CANCELLED", "PRUNED"].includes(short(s));
const cellKey = (c) => [c.network, num(c.width), c.wbits, c.abits, c.scheme].join("|");
const costOf = (c) => num(costMode === "uniform" ? c.cost_uniform : c.cost_first_last_fp32);

function progressBar(counts) {
  const total = num(counts.total) || 1;
  const part = (n, cls) => {
    const s = el("span", { class: cls });
    s.style.width = (100 * num(n || 0) / total) + "%";
    return s;
  };
  return el("span", { class: "progress" }, part(counts.succeeded, "ok"),
            part(num(counts.failed || 0) + num(counts.cancelled || 0), "bad"), part(counts.running, "run"));
}
function countsText(c) {
  const done = num(c.succeeded || 0) + num(c.failed || 0) + num(c.cancelled || 0) + num(c.pruned || 0);
  let t = `${done}/${num(c.total || 0)} done`;
  if (num(c.running || 0)) t += `, ${num(c.running)} running`;
  if (num(c.failed || 0)) t += `, ${num(c.failed)} failed`;
  if (num(c.pruned || 0)) t += `, ${num(c.pruned)} pruned`;
  return t;
}

// ---- views ----
async function viewHome(main) {
  const [sw, wk] = await Promise.all([api("/sweeps?page_size=100"), api("/workers")]);
  const sweeps = sw.sweeps || [];
  main.append(el("section", { class: "card" }, el("h1", { text: "Sweeps" }),
    sweeps.length === 0 ? el("p", { class: "muted", text: "No sweeps yet: wrpn submit SPEC." }) :
    el("table", { id: "sweeps" },
      el("tr", {}, ["ID", "Name", "State", "Progress", "Created"].map((h) => el("th", { text: h }))),
      sweeps.map((s) => el("tr", { "data-sweep": s.id },
        el("td", {}, el("a", { href: "#/sweep/" + s.id, text: s.id })),
        el("td", {}, el("a", { href: "#/sweep/" + s.id, text: s.name || "(unnamed)" })),
        el("td", {}, stateTag(s.state)),
        el("td", {}, progressBar(s.counts || {}), countsText(s.counts || {})),
        el("td", { text: when(s.created_ms) })))),
    sw.next_page_token ? el("p", { class: "muted", text: "Showing the first 100 sweeps." }) : null));
  main.append(workersCard(wk.workers || []));
  return sweeps.some((s) => !isDone(s.state));
}

function workersCard(workers) {
  const now = Date.now();
  return el("section", { class: "card" }, el("h2", { text: "Workers" }),
    workers.length === 0 ? el("p", { class: "muted", text: "No worker has registered." }) :
    el("table", { id: "workers" },
      el("tr", {}, ["Name", "ID", "State", "GPUs (free)", "CPUs", "Running trials", "Last heartbeat"]
        .map((h) => el("th", { text: h }))),
      workers.map((w) => el("tr", {},
        el("td", { text: w.name }), el("td", { class: "muted", text: w.id }),
        el("td", {}, el("span", { class: "state " + (w.state === "alive" ? "SUCCEEDED" : w.state === "lost" ? "FAILED" : "QUEUED"), text: w.state })),
        el("td", { class: "num", text: `${(w.gpus || []).length} (${w.free_gpus || 0})` }),
        el("td", { class: "num", text: w.cpus }),
        el("td", {}, (w.running_trials || []).flatMap((t, i) => [i ? ", " : "", el("a", { href: "#/trial/" + t, text: t })])),
        el("td", { text: num(w.last_heartbeat_ms) > 0 ? Math.max(0, Math.round((now - num(w.last_heartbeat_ms)) / 1000)) + " s ago" : "–" })))));
}

function deltaColour(d) {
  if (!has(d)) return "";
  const t = Math.min(1, Math.abs(d) / 10);
  return d >= 0 ? `rgba(34,197,94,${0.08 + 0.5 * t})` : `rgba(239,68,68,${0.08 + 0.55 * t})`;
}

const tableName = (t) => (/^table\d$/.test(t || "") ? "Table " + t.slice(5) : t);

// Where the block's cells come from in the paper: "alexnet 2x, Table 2", as the CLI's note.
function paperCaption(group) {
  const ref = group.find((c) => c.paper_network);
  if (!ref) return "no paper reference";
  const table = group.find((c) => c.paper_table);
  return `paper: ${ref.paper_network} ${num(ref.width)}x, ` +
         (table ? tableName(table.paper_table) : "not in the paper at this width");
}

// One table per (network, width, scheme); our change and the paper's change as the coordinator
// computes them (our_delta, paper_delta).
function gridTables(cells) {
  const groups = new Map();
  for (const c of cells) {
    const k = [c.network, num(c.width), c.scheme].join("|");
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(c);
  }
  const out = [];
  for (const [k, group] of groups) {
    const [network, width, scheme] = k.split("|");
    const wb = [...new Set(group.map((c) => c.wbits))].sort((a, b) => b - a);
    const ab = [...new Set(group.map((c) => c.abits))].sort((a, b) => b - a);
    const at = new Map(group.map((c) => [c.wbits + "/" + c.abits, c]));
    out.push(el("table", { class: "grid", "data-network": network, "data-width": width, "data-scheme": scheme },
      el("caption", { text: `${network} ${width}x ${scheme} · ${paperCaption(group)} · cost: ${costMode}` }),
      el("tr", {}, el("th", { class: "corner", text: "weights ↓ / acts →" }), ab.map((a) => el("th", { class: "num", text: "a" + a }))),
      wb.map((w) => el("tr", {}, el("th", { text: "w" + w }), ab.map((a) => {
        const c = at.get(w + "/" + a);
        if (!c) return el("td", { class: "cell missing", text: "" });
        const td = el("td", {
          class: "cell" + (has(c.final_top1) ? "" : " missing"),
          "data-network": c.network, "data-width": num(c.width), "data-wbits": c.wbits, "data-abits": c.abits,
          "data-scheme": c.scheme,
          "data-top1": has(c.final_top1) ? String(c.final_top1) : "",
          "data-our-delta": has(c.our_delta) ? String(c.our_delta) : "",
          "data-paper-top1": has(c.paper_top1) ? String(c.paper_top1) : "",
          "data-paper-delta": has(c.paper_delta) ? String(c.paper_delta) : "",
          title: `${c.network} ${num(c.width)}x w${c.wbits}/a${c.abits} ${c.scheme} · ${short(c.state)} · ${(c.seeds || []).length} seed(s)` +
                 (has(c.final_top1_std) ? ` · std ${fixed(c.final_top1_std, 2)}` : "") +
                 (has(c.paper_top1) ? ` · paper ${c.paper_network} ${fixed(c.paper_top1, 2)} (${tableName(c.paper_table)})` : ""),
        },
          el("div", { class: "top1" }, has(c.final_top1) ? fixed(c.final_top1, 2)
              : has(c.pruned_top1) ? `pruned at epoch ${num(c.pruned_epoch)}: ${fixed(c.pruned_top1, 2)}`
              : short(c.state).toLowerCase()),
          el("div", { class: "deltas" }, signed(c.our_delta, 2), " ",
             el("span", { class: "paper", text: "[" + signed(c.paper_delta, 2) + "]" })),
          el("div", { class: "deltas muted", text: "cost " + fixed(costOf(c), 3) }));
        td.style.background = deltaColour(num(c.our_delta));
        return td;
      })))));
  }
  return out;
}

function paretoPlot(cells) {
  const W = 720, H = 380, L = 56, R = 170, T = 16, B = 44;
  const pts = cells.filter((c) => has(c.final_top1) && costOf(c) > 0);
  const root = svg("svg", { id: "pareto", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
                            "aria-label": "top-1 against compute cost" });
  if (pts.length === 0) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no finished cell yet"));
    return root;
  }
  const xs = pts.map(costOf), ys = pts.map((c) => num(c.final_top1));
  let x0 = Math.log10(Math.min(...xs)), x1 = Math.log10(Math.max(...xs));
  if (x1 - x0 < 0.2) { x0 -= 0.1; x1 += 0.1; }
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
  const px = (c) => L + (Math.log10(c) - x0) / (x1 - x0) * (W - L - R);
  const py = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const axis = svg("g", { class: "axis" });
  for (let e = Math.floor(x0); e <= Math.ceil(x1); e++) for (const m of [1, 2, 5]) {
    const v = m * Math.pow(10, e);
    if (Math.log10(v) < x0 - 1e-9 || Math.log10(v) > x1 + 1e-9) continue;
    axis.append(svg("line", { class: "gridline", x1: px(v), x2: px(v), y1: T, y2: H - B }),
                svg("text", { x: px(v), y: H - B + 16, "text-anchor": "middle" }, String(+v.toPrecision(2))));
  }
  const step = niceStep((y1 - y0) / 6);
  for (let v = Math.ceil(y0 / step) * step; v <= y1; v += step)
    axis.append(svg("line", { class: "gridline", x1: L, x2: W - R, y1: py(v), y2: py(v) }),
                svg("text", { x: L - 6, y: py(v) + 4, "text-anchor": "end" }, tick(v, step)));
  axis.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B }), svg("line", { x1: L, x2: L, y1: T, y2: H - B }),
    svg("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, `compute cost vs 1x 32/32 (${costMode}, log scale)`),
    svg("text", { x: 14, y: (T + H - B) / 2, transform: `rotate(-90 14 ${(T + H - B) / 2})`, "text-anchor": "middle" }, "top-1 (%)"));
  root.append(axis);
  // Pareto frontier: cheapest first, each point more accurate than every cheaper one.
  const sorted = [...pts].sort((a, b) => costOf(a) - costOf(b) || num(b.final_top1) - num(a.final_top1));
  const front = [];
  for (const c of sorted) if (!front.length || num(c.final_top1) > num(front[front.length - 1].final_top1)) front.push(c);
  root.append(svg("polyline", { class: "frontier", points: front.map((c) => `${px(costOf(c))},${py(num(c.final_top1))}`).join(" ") }));
  const series = [...new Set(pts.map((c) => c.network + " " + num(c.width) + "x"))];
  for (const c of pts) {
    const s = c.network + " " + num(c.width) + "x";
    root.append(svg("circle", { class: "pt", "data-key": cellKey(c), cx: px(costOf(c)), cy: py(num(c.final_top1)), r: 5,
                                fill: SERIES_COLOURS[series.indexOf(s) % SERIES_COLOURS.length] },
      svg("title", {}, `${s} w${c.wbits}/a${c.abits}: top-1 ${fixed(c.final_top1, 2)}, cost ${fixed(costOf(c), 3)}`)));
  }
  series.forEach((s, i) => root.append(
    svg("circle", { cx: W - R + 18, cy: T + 10 + i * 18, r: 5, fill: SERIES_COLOURS[i % SERIES_COLOURS.length] }),
    svg("text", { x: W - R + 28, y: T + 14 + i * 18 }, s)));
  root.append(svg("line", { class: "frontier", x1: W - R + 12, x2: W - R + 24, y1: T + 14 + series.length * 18, y2: T + 14 + series.length * 18 }),
              svg("text", { x: W - R + 28, y: T + 18 + series.length * 18 }, "Pareto frontier"));
  return root;
}

// A tick label with as many decimals as the tick step needs.
const tick = (v, step) => v.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))));

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

async function viewSweep(main, id) {
  const [sw, grid, trials] = await Promise.all([api("/sweeps/" + id), api("/sweeps/" + id + "/grid"),
                                                api("/sweeps/" + id + "/trials?page_size=1000")]);
  const s = sw.sweep;
  const cells = grid.cells || [];
  const select = el("select", { id: "cost-mode", onchange: (e) => { costMode = e.target.value; render(); } },
    ["uniform", "first-last-fp32"].map((v) => el("option", { value: v, text: v })));
  select.value = costMode;
  main.append(el("section", { class: "card" },
    el("h1", {}, `Sweep ${s.id}: ${s.name || "(unnamed)"} `, stateTag(s.state)),
    el("p", {}, progressBar(s.counts || {}), countsText(s.counts || {}), el("span", { class: "muted", text: " · created " + when(s.created_ms) })),
    el("div", { class: "controls" }, el("label", {}, "Compute cost ", select))));
  main.append(el("section", { class: "card" }, el("h2", { text: "Grid (top-1 %)" }),
    el("p", { class: "legend", text: "Rows: weight bits; columns: activation bits (the paper's layout). Each cell: our top-1 (mean over seeds); our change from this sweep's 1x w32/a32 cell; [the paper's change from its 1x 32/32 baseline at the same width and bits, for the reference network in the table's caption; – where the paper has no number]; compute cost. Colour: our change (green up, red down)." }),
    el("div", { class: "grids", id: "grid" }, gridTables(cells))));
  main.append(el("section", { class: "card" }, el("h2", { text: "Accuracy against compute cost" }), paretoPlot(cells)));
  const ts = trials.trials || [];
  main.append(el("section", { class: "card" }, el("h2", { text: "Trials" }),
    el("table", { id: "trials" },
      el("tr", {}, ["Trial", "Cell", "Seed", "State", "Attempts", "Top-1", "Progress / error"].map((h) => el("th", { text: h }))),
      ts.map((t) => el("tr", {},
        el("td", {}, el("a", { href: "#/trial/" + t.id, text: t.id })),
        el("td", { text: `${t.network} ${num(t.width)}x w${t.wbits}/a${t.abits}` }),
        el("td", { class: "num", text: t.seed }), el("td", {}, stateTag(t.state)),
        el("td", { class: "num", text: t.attempts }), el("td", { class: "num", text: fixed(t.final_top1, 2) }),
        el("td", { class: t.error ? "error" : "muted",
                   text: t.error || t.pending_reason || (short(t.state) === "RUNNING" ? `epoch ${t.progress_epoch || 0} (${Math.round(100 * (t.progress_fraction || 0))} %)` : "") }))))));
  return !isDone(s.state);
}

function lineChart(title, series, yLabel) {
  const W = 560, H = 260, L = 52, R = 120, T = 24, B = 36;
  const all = series.flatMap((s) => s.points);
  const root = svg("svg", { class: "curves", width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-title": title });
  root.append(svg("text", { x: L, y: 14 }, title));
  if (!all.length) return root;
  let x0 = Math.min(...all.map((p) => num(p.step))), x1 = Math.max(...all.map((p) => num(p.step)));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  let y0 = Math.min(...all.map((p) => p.value)), y1 = Math.max(...all.map((p) => p.value));
  if (y1 - y0 < 1e-9) { const d = Math.max(Math.abs(y0) * 0.1, 1e-3); y0 -= d; y1 += d; }
  const px = (v) => L + (v - x0) / (x1 - x0) * (W - L - R);
  const py = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const axis = svg("g", { class: "axis" });
  const ys = niceStep((y1 - y0) / 5);
  for (let v = Math.ceil(y0 / ys) * ys; v <= y1 + 1e-12; v += ys)
    axis.append(svg("line", { class: "gridline", x1: L, x2: W - R, y1: py(v), y2: py(v) }),
                svg("text", { x: L - 6, y: py(v) + 4, "text-anchor": "end" }, tick(v, ys)));
  const xs = Math.max(1, niceStep((x1 - x0) / 8));
  for (let v = Math.ceil(x0 / xs) * xs; v <= x1; v += xs)
    axis.append(svg("text", { x: px(v), y: H - B + 14, "text-anchor": "middle" }, v));
  axis.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B }), svg("line", { x1: L, x2: L, y1: T, y2: H - B }),
              svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, "epoch"),
              svg("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle" }, yLabel));
  root.append(axis);
  series.forEach((s, i) => {
    const colour = SERIES_COLOURS[i % SERIES_COLOURS.length];
    root.append(svg("polyline", { class: "curve", "data-metric": s.name, stroke: colour,
                                  points: s.points.map((p) => `${px(num(p.step))},${py(p.value)}`).join(" ") }),
                svg("text", { x: W - R + 10, y: T + 10 + i * 16, fill: colour }, s.name));
    for (const p of s.points) root.append(svg("circle", { cx: px(num(p.step)), cy: py(p.value), r: 2.5, fill: colour },
                                              svg("title", {}, `${s.name} @ ${p.step}: ${+p.value.toPrecision(5)}`)));
  });
  return root;
}

async function viewTrial(main, id) {
  const [tr, m] = await Promise.all([api("/trials/" + id), api("/trials/" + id + "/metrics")]);
  const t = tr.trial;
  const byName = new Map();
  for (const p of m.points || []) {
    if (!byName.has(p.name)) byName.set(p.name, []);
    byName.get(p.name).push(p);
  }
  for (const pts of byName.values()) pts.sort((a, b) => num(a.step) - num(b.step));
  const names = [...byName.keys()].sort();
  const pick = (f) => names.filter(f).map((n) => ({ name: n, points: byName.get(n) }));
  const acc = pick((n) => /top[15]|acc/.test(n)), loss = pick((n) => /loss/.test(n));
  const rest = names.filter((n) => !/top[15]|acc|loss/.test(n));
  main.append(el("section", { class: "card" },
    el("h1", {}, `Trial ${t.id}: ${t.network} ${num(t.width)}x w${t.wbits}/a${t.abits} seed ${t.seed} `, stateTag(t.state)),
    el("p", {}, el("a", { href: "#/sweep/" + t.sweep_id, text: "← sweep " + t.sweep_id })),
    el("table", { class: "kv" },
      [["final top-1", fixed(t.final_top1, 2)], ["best top-1", fixed(t.best_top1, 2)], ["final top-5", fixed(t.final_top5, 2)],
       ["images/s", fixed(t.images_per_sec, 0)], ["cost (uniform / first-last FP32)", `${fixed(t.cost_uniform, 4)} / ${fixed(t.cost_first_last_fp32, 4)}`],
       ["attempts", t.attempts], ["started", when(t.started_ms)], ["finished", when(t.finished_ms)], ["error", t.error || "–"]]
        .map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: v }))))));
  const charts = el("div", { class: "grids", id: "curves" });
  if (acc.length) charts.append(lineChart("Accuracy", acc, "%"));
  if (loss.length) charts.append(lineChart("Loss", loss, "loss"));
  for (const n of rest) charts.append(lineChart(n, [{ name: n, points: byName.get(n) }], n));
  main.append(el("section", { class: "card" }, el("h2", { text: "Learning curves" }),
    names.length ? charts : el("p", { class: "muted", text: "No metrics reported yet." })));
  const attempts = tr.attempts || [];
  if (attempts.length) main.append(el("section", { class: "card" }, el("h2", { text: "Attempts" }),
    el("table", {}, el("tr", {}, ["#", "Outcome", "Workers", "Started", "Ended", "Reason"].map((h) => el("th", { text: h }))),
      attempts.map((a) => el("tr", {}, el("td", { text: a.attempt }), el("td", {}, stateTag(a.outcome)),
        el("td", { text: (a.worker_ids || []).join(", ") }), el("td", { text: when(a.started_ms) }),
        el("td", { text: when(a.ended_ms) }), el("td", { text: a.reason || "" }))))));
  return !isDone(t.state);
}

// ---- routing ----
async function render() {
  const gen = ++generation;
  const main = document.getElementById("main");
  const route = location.hash.replace(/^#\/?/, "").split("/");
  const fresh = el("main", { id: "main" });
  let active = false;
  try {
    if (route[0] === "sweep" && route[1]) { fresh.dataset.view = "sweep"; active = await viewSweep(fresh, route[1]); }
    else if (route[0] === "trial" && route[1]) { fresh.dataset.view = "trial"; active = await viewTrial(fresh, route[1]); }
    else { fresh.dataset.view = "home"; active = await viewHome(fresh); }
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof AuthNeeded) return showLogin(e.message);
    fresh.replaceChildren(el("section", { class: "card" }, el("p", { class: "error", text: "Error: " + e.message })));
    active = true;  // try again: the coordinator may be restarting
  }
  if (gen !== generation) return;
  document.getElementById("login").hidden = true;
  document.getElementById("signout").hidden = !sessionStorage.getItem(TOKEN_KEY);
  fresh.dataset.ready = "1";
  main.replaceWith(fresh);
  document.getElementById("refreshed").textContent =
      "updated " + new Date().toLocaleTimeString() + (active ? " · refreshing every 3 s" : "");
  if (active) setTimeout(() => { if (gen === generation) render(); }, REFRESH_MS);
}

document.getElementById("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  render();
});
document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  render();
});
window.addEventListener("hashchange", () => { takeTokenFromUrl(); render(); });
takeTokenFromUrl();
render();
