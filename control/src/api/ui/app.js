// serin's status page. Everything shown comes from the admin API this page
// is served by; nothing is fetched from anywhere else. Text from the API is
// set with textContent only, never parsed as HTML.
"use strict";

const STATS_WINDOW = "10s";
const HISTORY = "span=3m&step=3s";
const MAX_EVENTS = 200;

const state = {
  token: null,        // kept in this page's memory only
  routes: new Map(),  // name -> { card, versions: [names], dirty }
  eventsSince: 0,
  events: [],
  lastOk: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, options) {
  const headers = { "accept": "application/json" };
  if (state.token) headers["authorization"] = "Bearer " + state.token;
  const init = Object.assign({ headers }, options || {});
  if (init.body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const resp = await fetch(path, init);
  let json = null;
  try { json = await resp.json(); } catch (_) { /* not JSON */ }
  if (!resp.ok) {
    const why = json && json.error ? json.error : resp.statusText;
    const err = new Error(resp.status + ": " + why);
    err.status = resp.status;
    throw err;
  }
  return json;
}

// ---- formatting

const pct = (x) => (x === null || x === undefined ? "–" : (x * 100).toFixed(x < 0.001 && x > 0 ? 3 : 1) + "%");
const ms = (x) => (x === null || x === undefined ? "–" : x.toFixed(x < 10 ? 2 : 1) + " ms");
const num = (x) => (x === null || x === undefined ? "–" : x < 10 ? x.toFixed(1) : Math.round(x).toString());
const clock = (iso) => {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleTimeString([], { hour12: false });
};
const weights = (w) => (w && typeof w === "object"
  ? Object.entries(w).map(([v, x]) => v + " " + x).join(" · ") : w === undefined || w === null ? "" : String(w));
const secs = (x) => (x === null || x === undefined ? null : x.toFixed(2) + " s");

function badge(text, extra) {
  return el("span", { class: "badge " + text + (extra ? " " + extra : "") }, text.replace("_", " "));
}

// ---- charts

const SVG = "http://www.w3.org/2000/svg";

function spark(series, label) {
  // series: [{ values: [number|null], cls }], drawn on one scale from 0.
  const w = 160, h = 34, top = 10;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  const n = Math.max(...series.map((s) => s.values.length), 2);
  for (const s of series) {
    const pts = [];
    s.values.forEach((v, i) => {
      if (v === null) return;
      const x = (i / (n - 1)) * (w - 2) + 1;
      const y = max > 0 ? h - 1 - (v / max) * (h - top - 1) : h - 1;
      pts.push(x.toFixed(1) + "," + y.toFixed(1));
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", s.cls);
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  const t = document.createElementNS(SVG, "text");
  t.setAttribute("x", "2");
  t.setAttribute("y", "8");
  t.textContent = label(max);
  svg.append(t);
  return svg;
}

// ---- one route

function routeCard(route) {
  const name = route.name;
  const card = el("section", { class: "route", "data-route": name });
  const title = el("h2", {}, el("span", { class: "name" }, name),
    el("span", { "data-field": "state" }), el("span", { class: "muted", "data-field": "verdict" }));
  const head = el("tr", {}, ...["version", "weight", "share", "req/s", "errors", "p50", "p99",
    "breaker", "health", "latency p50/p99, 3 min", "error rate, 3 min", "req/s, 3 min"]
    .map((h) => el("th", {}, h)));
  const body = el("tbody");
  for (const v of route.versions) {
    const cells = ["weight", "share", "rps", "error_rate", "p50", "p99", "breaker", "health"]
      .map((f) => el("td", { "data-field": f }));
    const charts = ["latency", "errors", "traffic"].map((f) => el("td", { class: "chart", "data-chart": f }));
    body.append(el("tr", { "data-version": v.name }, el("td", {}, v.name), ...cells, ...charts));
  }
  const table = el("table", {}, el("thead", {}, head), body);

  // Actions: weights, rollback, promote, pause, resume.
  const entry = { card, versions: route.versions.map((v) => v.name), dirty: false };
  const inputs = route.versions.map((v) => {
    const input = el("input", { type: "number", min: 0, step: "any", "data-weight": v.name });
    input.addEventListener("input", () => { entry.dirty = true; });
    return el("label", {}, v.name + " ", input);
  });
  const reason = el("input", { type: "text", placeholder: "reason (audited)", "data-field": "reason" });
  const result = el("p", { class: "result", "data-field": "result" });
  const act = (action, armed) => {
    const b = el("button", { type: "button", "data-action": action, disabled: true,
      class: armed ? "danger" : "" }, action);
    b.addEventListener("click", () => onAction(name, action, b, armed));
    return b;
  };
  const actions = el("div", { class: "actions" }, ...inputs, act("set weights"),
    act("rollback", true), act("promote", true), act("pause"), act("resume"), reason);
  card.append(title, table, actions, result);
  entry.inputs = inputs.map((l) => l.querySelector("input"));
  return entry;
}

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function renderRoute(route, stats) {
  let entry = state.routes.get(route.name);
  if (!entry || !same(entry.versions, route.versions.map((v) => v.name))) {
    const fresh = routeCard(route);
    if (entry) entry.card.replaceWith(fresh.card);
    else $("routes").append(fresh.card);
    entry = fresh;
    state.routes.set(route.name, entry);
    enableActions();
  }
  const card = entry.card;
  card.querySelector('[data-field="state"]').replaceChildren(badge(route.state));
  card.querySelector('[data-field="verdict"]').textContent = route.verdict ? "verdict: " + route.verdict : "";
  for (const v of route.versions) {
    const row = card.querySelector(`tr[data-version="${CSS.escape(v.name)}"]`);
    const s = (stats && stats.versions[v.name]) || {};
    const set = (f, value) => { row.querySelector(`[data-field="${f}"]`).textContent = value; };
    const bar = el("span", { class: "weightbar" }, el("span"));
    bar.firstChild.style.width = Math.round(v.share * 100) + "%";
    row.querySelector('[data-field="weight"]').replaceChildren(bar, String(v.weight));
    set("share", pct(v.share));
    set("rps", num(s.rps));
    set("error_rate", pct(s.error_rate));
    set("p50", ms(s.p50_ms));
    set("p99", ms(s.p99_ms));
    row.querySelector('[data-field="breaker"]').replaceChildren(badge(v.breaker));
    row.querySelector('[data-field="health"]').replaceChildren(badge(v.health));
  }
  if (!entry.dirty) {
    for (const input of entry.inputs) {
      if (document.activeElement !== input) input.value = route.weights[input.dataset.weight];
    }
  }
}

function renderHistory(name, history) {
  const entry = state.routes.get(name);
  if (!entry) return;
  // Charts start at the route's first traffic in the span (at least the
  // last 20 steps), so a young route's lines are not squeezed to the right.
  const total = history.route_total;
  const first = total.findIndex((p) => p.requests > 0);
  const from = Math.max(0, Math.min(first < 0 ? total.length : first, total.length - 20));
  for (const [version, all] of Object.entries(history.versions)) {
    const points = all.slice(from);
    const row = entry.card.querySelector(`tr[data-version="${CSS.escape(version)}"]`);
    if (!row) continue;
    const cell = (f) => row.querySelector(`[data-chart="${f}"]`);
    cell("latency").replaceChildren(spark([
      { values: points.map((p) => p.p50_ms), cls: "p50" },
      { values: points.map((p) => p.p99_ms), cls: "p99" },
    ], (max) => (max > 0 ? "≤ " + ms(max) : "no traffic")));
    cell("errors").replaceChildren(spark([
      { values: points.map((p) => p.error_rate), cls: "err" },
    ], (max) => "≤ " + pct(max)));
    cell("traffic").replaceChildren(spark([
      { values: points.map((p) => p.rps), cls: "rps" },
    ], (max) => "≤ " + num(max) + "/s"));
  }
}

// ---- actions

function enableActions() {
  for (const b of document.querySelectorAll("button[data-action]")) b.disabled = !state.token;
}

async function onAction(route, action, button, needsConfirm) {
  const entry = state.routes.get(route);
  const result = entry.card.querySelector('[data-field="result"]');
  if (needsConfirm && !button.classList.contains("armed")) {
    // First click arms, a second within 4 s acts.
    button.classList.add("armed");
    button.textContent = "confirm " + action;
    setTimeout(() => { button.classList.remove("armed"); button.textContent = action; }, 4000);
    return;
  }
  button.classList.remove("armed");
  button.textContent = action;
  const reason = entry.card.querySelector('[data-field="reason"]').value.trim() || "from the status page";
  const path = "/api/v1/routes/" + encodeURIComponent(route) + "/";
  let call;
  if (action === "set weights") {
    const w = {};
    for (const input of entry.inputs) w[input.dataset.weight] = Number(input.value);
    call = api(path + "weights", { method: "PUT", body: { weights: w, reason } });
  } else {
    call = api(path + action, { method: "POST", body: { reason } });
  }
  result.className = "result";
  result.textContent = action + "…";
  try {
    const done = await call;
    entry.dirty = false;
    result.className = "result ok";
    result.textContent = done.event.kind + ": " + weights(done.event.after || done.route.weights);
    poll();
  } catch (e) {
    result.className = "result bad";
    result.textContent = action + " refused: " + e.message;
  }
}

// ---- events and incidents

function renderEvents() {
  const list = $("events");
  list.replaceChildren(...state.events.slice().reverse().map((e) => el("li", { "data-kind": e.kind },
    el("span", { class: "when" }, clock(e.time)),
    el("span", { class: "kind" }, e.kind),
    (e.route ? e.route + " · " : "") + (e.actor || "") + (e.reason ? ": " + e.reason : ""),
    el("span", { class: "weights" }, e.after ? "→ " + weights(e.after) : ""))));
}

function renderIncidents(incidents) {
  const items = incidents.slice().reverse().map((i) => el("li", { "data-incident": i.id },
    el("span", { class: "when" }, clock(i.opened)),
    el("span", { class: "kind" }, i.id + " " + (i.closed ? "closed" : "open")),
    i.route + ": " + i.trigger,
    el("span", { class: "weights" }, [
      secs(i.detection_s) && "detection " + secs(i.detection_s),
      secs(i.decision_s) && "decision " + secs(i.decision_s),
      secs(i.rollback_s) && "rollback " + secs(i.rollback_s),
      i.client_requests ? i.client_errors + " of " + i.client_requests + " client requests failed" : null,
    ].filter(Boolean).join(" · "))));
  $("incidents").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "none")]));
}

// ---- polling

function showError(message) {
  const banner = $("error");
  banner.hidden = !message;
  banner.textContent = message || "";
}

async function poll() {
  try {
    const status = await api("/api/v1/status");
    const stats = await Promise.all(status.routes.map((r) =>
      api("/api/v1/routes/" + encodeURIComponent(r.name) + "/stats?window=" + STATS_WINDOW).catch(() => null)));
    status.routes.forEach((r, i) => renderRoute(r, stats[i]));
    for (const [name, entry] of state.routes) {
      if (!status.routes.some((r) => r.name === name)) {
        entry.card.remove();
        state.routes.delete(name);
      }
    }
    $("summary").textContent = "revision " + status.revision + " · " + status.routes.length +
      " route" + (status.routes.length === 1 ? "" : "s") + (status.maintenance ? " · MAINTENANCE" : "");
    state.lastOk = Date.now();
    showError(null);
  } catch (e) {
    showError(e.status === 401
      ? "This serin protects reads: enter the admin token."
      : "Cannot read the admin API: " + e.message);
  }
}

async function pollEvents() {
  try {
    const got = await api("/api/v1/events?since=" + state.eventsSince);
    if (got.events.length) {
      state.events.push(...got.events);
      state.events.splice(0, Math.max(0, state.events.length - MAX_EVENTS));
      state.eventsSince = got.events[got.events.length - 1].seq;
      renderEvents();
    }
  } catch (_) { /* the banner says it */ }
}

async function pollSlow() {
  try {
    renderIncidents((await api("/api/v1/incidents")).incidents);
  } catch (_) { /* the banner says it */ }
  for (const name of state.routes.keys()) {
    try {
      renderHistory(name, await api("/api/v1/routes/" + encodeURIComponent(name) + "/history?" + HISTORY));
    } catch (_) { /* the banner says it */ }
  }
}

function tickUpdated() {
  $("updated").textContent = state.lastOk
    ? "updated " + ((Date.now() - state.lastOk) / 1000).toFixed(0) + " s ago" : "";
}

function every(ms, f) {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try { await f(); } finally { running = false; }
  };
  run();
  setInterval(run, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (!t) return;
    state.token = t;
    $("token").value = "";
    $("token").hidden = true;
    $("use-token").hidden = true;
    $("forget-token").hidden = false;
    $("auth-state").textContent = "token set: actions enabled";
    enableActions();
    poll();
  });
  $("forget-token").addEventListener("click", () => {
    state.token = null;
    $("token").hidden = false;
    $("use-token").hidden = false;
    $("forget-token").hidden = true;
    $("auth-state").textContent = "read-only: enter the admin token to act";
    enableActions();
  });
  // The routes first, so the charts have rows to go in.
  poll().then(() => {
    every(1000, poll);
    every(2000, pollEvents);
    every(5000, pollSlow);
    setInterval(tickUpdated, 1000);
  });
});
