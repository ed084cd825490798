"use strict";
// The wallboard: renders the figures of /api/v1/stats/stream (server-sent events). No
// libraries, nothing from the network but this service.
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let csrf = "";
  let role = "viewer";
  let thresholds = { amber_s: 20, red_s: 30 };
  const scheduled = new Set(JSON.parse(sessionStorage.getItem("hl-scheduled") || "[]"));

  const pct = (x) => (x === null || x === undefined ? "–" : Math.round(x * 1000) / 10 + " %");
  const secs = (x) => {
    if (x === null || x === undefined) return "–";
    x = Math.round(x);
    return x < 60 ? x + " s" : Math.floor(x / 60) + ":" + String(x % 60).padStart(2, "0");
  };
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function waitClass(s, t) { return s >= t.red_s ? "bad" : s >= t.amber_s ? "warn" : "good"; }
  function slClass(sl, goal) { return sl === null ? "" : sl >= goal ? "good" : sl >= goal - 0.1 ? "warn" : "bad"; }

  async function start() {
    const r = await fetch("/api/v1/session", { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/login"; return; }
    const s = await r.json();
    csrf = s.csrf_token; role = s.role;
    $("who").textContent = s.user + " (" + s.role + ")";
    $("sign-out").addEventListener("click", signOut);
    connect();
  }

  async function signOut() {
    await fetch("/logout", { method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } });
    location.href = "/login";
  }

  function connect() {
    const source = new EventSource("/api/v1/stats/stream");
    source.addEventListener("open", () => { $("conn").textContent = "live"; $("conn").className = "conn on"; });
    source.addEventListener("error", () => {
      $("conn").textContent = "reconnecting…"; $("conn").className = "conn off";
      fetch("/api/v1/session", { credentials: "same-origin" }).then((r) => {
        if (r.status === 401) { source.close(); location.href = "/login"; }
      }, () => {});
    });
    source.addEventListener("stats", (ev) => {
      const f = JSON.parse(ev.data);
      render(f);
      document.body.dataset.eventId = ev.lastEventId;
    });
  }

  function render(f) {
    const c = f.centre, t = f.thresholds;
    $("updated").textContent = "updated " + new Date(f.at_ms).toLocaleTimeString();
    $("c-waiting").textContent = c.waiting;
    $("c-longest").textContent = secs(c.longest_wait_s);
    $("c-longest").className = "value " + waitClass(c.longest_wait_s, t);
    $("c-sl").textContent = pct(c.service_level);
    $("c-asa").textContent = secs(c.asa_s);
    $("c-abandon").textContent = c.abandoned + " · " + pct(c.abandon_rate);
    $("c-offered").textContent = c.offered + " · " + c.answered;
    $("c-aht").textContent = secs(c.aht_s);
    $("c-occ").textContent = pct(c.occupancy);
    renderQueues(f);
    renderChart(f);
    thresholds = f.thresholds;
    renderWaiting(f.waiting_calls);
    renderAgents(f.agents);
    renderAbandoned(f.abandoned_today);
  }

  function renderQueues(f) {
    const box = $("queues");
    box.replaceChildren();
    for (const [name, q] of Object.entries(f.queues)) {
      const card = el("article", { class: "queue " + ({ bad: "red", warn: "amber", good: "" })[waitClass(q.longest_wait_s, f.thresholds)], "data-queue": name });
      card.append(el("h3", {}, name));
      const big = el("div", { class: "big" });
      const w = el("div"); w.append(el("span", { class: "label" }, "Waiting"), el("span", { class: "value", "data-field": "waiting" }, String(q.waiting)));
      const l = el("div"); l.append(el("span", { class: "label" }, "Longest"), el("span", { class: "value " + waitClass(q.longest_wait_s, f.thresholds), "data-field": "longest" }, secs(q.longest_wait_s)));
      const s = el("div"); s.append(el("span", { class: "label" }, "SL / goal " + Math.round(q.goal * 100) + "/" + q.target_s), el("span", { class: "value " + slClass(q.service_level, q.goal), "data-field": "sl" }, pct(q.service_level)));
      big.append(w, l, s);
      card.append(big);
      const dl = el("dl");
      const rows = [["Offered", q.offered], ["Answered", q.answered], ["Abandoned", q.abandoned + " (" + pct(q.abandon_rate) + ")"],
        ["ASA", secs(q.asa_s)], ["AHT", secs(q.aht_s)], ["EWT new caller", q.ewt_new_caller_s === null ? "no agent" : secs(q.ewt_new_caller_s)]];
      for (const [k, v] of rows) { dl.append(el("dt", {}, k), el("dd", { "data-field": k.toLowerCase() }, String(v))); }
      card.append(dl);
      const prios = Object.entries(q.waiting_by_priority).sort((a, b) => b[0] - a[0]);
      if (prios.length) {
        const byPrio = el("div", { class: "chips", "data-field": "by-priority" });
        for (const [p, n] of prios) byPrio.append(el("span", { class: "chip prio" }, "P" + p + " waiting " + n));
        card.append(byPrio);
      }
      const chips = el("div", { class: "chips" });
      for (const [state, n] of Object.entries(q.agents_by_state)) {
        if (n > 0) chips.append(el("span", { class: "chip " + state }, state.replace("_", " ") + " " + n));
      }
      card.append(chips);
      const more = q.staffing.agents_more;
      card.append(el("div", { class: "advice" + (more ? " short" : ""), "data-field": "advice" }, q.staffing.advice));
      box.append(card);
    }
  }

  function renderChart(f) {
    const svg = $("chart"), W = 960, H = 220, L = 36, R = 36, T = 10, B = 22;
    svg.replaceChildren();
    const day0 = Date.parse(f.day + "T00:00:00Z"), span = 86400000;
    const x = (ms) => L + ((ms - day0) / span) * (W - L - R);
    const y = (v) => T + (1 - v) * (H - T - B);
    const add = (tag, attrs, text) => { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
    for (const v of [0, 0.5, 1]) { add("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }); add("text", { class: "axis", x: 2, y: y(v) + 4 }, Math.round(v * 100) + "%"); }
    for (let h = 0; h <= 24; h += 3) { add("text", { class: "axis", x: x(day0 + h * 3600000) - 8, y: H - 6 }, String(h).padStart(2, "0") + "h"); }
    const waits = [];
    f.history.waiting_per_minute.forEach((n, m) => { if (n !== null) waits.push([day0 + m * 60000, n]); });
    const maxWait = Math.max(5, ...waits.map((p) => p[1]));
    add("text", { class: "axis", x: W - R + 4, y: T + 8 }, String(maxWait));
    if (waits.length) {
      let d = "M" + x(waits[0][0]) + "," + (H - B);
      for (const [t, n] of waits) d += " L" + x(t) + "," + (H - B - (n / maxWait) * (H - T - B));
      d += " L" + x(waits[waits.length - 1][0]) + "," + (H - B) + " Z";
      add("path", { class: "wait", d: d });
    }
    const goal = Math.max(...Object.values(f.queues).map((q) => q.goal), 0.8);
    add("line", { class: "goal", x1: L, x2: W - R, y1: y(goal), y2: y(goal) });
    for (const [key, cls] of [["service_level", "sl"], ["service_level_cumulative", "cum"]]) {
      let d = "";
      for (const p of f.history.intervals) {
        if (p[key] === null) continue;
        d += (d ? " L" : "M") + x(p.t_ms + 450000) + "," + y(p[key]);
      }
      if (d) add("path", { class: cls, d: d });
    }
  }

  function renderWaiting(calls) {
    const body = $("waiting").tBodies[0];
    body.replaceChildren();
    $("wait-count").textContent = String(calls.length);
    for (const c of calls.slice(0, 50)) {
      const tr = el("tr");
      tr.append(el("td", {}, c.number || "–"), el("td", {}, c.queue), el("td", {}, String(c.priority)),
        el("td", { class: waitClass(c.wait_s, thresholds) }, secs(c.wait_s)));
      body.append(tr);
    }
  }

  function renderAgents(agents) {
    const body = $("agents").tBodies[0];
    body.replaceChildren();
    for (const a of agents) {
      if (a.state === "offline") continue;
      const tr = el("tr");
      const state = el("td");
      state.append(el("span", { class: "chip " + a.state }, a.state.replace("_", " ") + (a.reason ? " · " + a.reason : "")));
      tr.append(el("td", {}, a.name), state, el("td", {}, secs(a.time_in_state_s)), el("td", {}, String(a.calls_handled)));
      body.append(tr);
    }
  }

  function renderAbandoned(list) {
    const body = $("abandoned").tBodies[0];
    body.replaceChildren();
    $("aband-count").textContent = String(list.length);
    for (const c of list) {
      const tr = el("tr", { "data-call": c.call_sid });
      const cell = el("td");
      if (role === "supervisor" && c.phone) {
        const done = scheduled.has(c.call_sid);
        const b = el("button", { type: "button", class: "callback", "data-call": c.call_sid }, done ? "Scheduled" : "Call back");
        b.disabled = done;
        b.addEventListener("click", () => callBack(c, b));
        cell.append(b);
      }
      tr.append(el("td", {}, c.number || "–"), el("td", {}, c.queue), el("td", {}, secs(c.waited_s)), el("td", {}, clock(c.at_ms)), cell);
      body.append(tr);
    }
  }

  async function callBack(c, button) {
    button.disabled = true;
    // another supervisor may have scheduled it already: look before adding a second call
    const live = "scheduled,retry_scheduled,dialling,in_progress";
    const q = await fetch("/api/v1/callbacks?limit=5&status=" + live + "&phone=" + encodeURIComponent(c.phone),
      { credentials: "same-origin" });
    if (q.ok && (await q.json()).items.length) {
      scheduled.add(c.call_sid);
      sessionStorage.setItem("hl-scheduled", JSON.stringify([...scheduled]));
      button.textContent = "Scheduled";
      $("cb-message").textContent = "A callback to " + c.number + " is already scheduled.";
      return;
    }
    const r = await fetch("/api/v1/callbacks", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ phone: c.phone, queue: c.queue, kind: "queue_callback",
        reason: "abandoned in queue", note: "from the wallboard; call " + c.call_sid }),
    });
    if (r.status === 201) {
      const job = await r.json();
      scheduled.add(c.call_sid);
      sessionStorage.setItem("hl-scheduled", JSON.stringify([...scheduled]));
      button.textContent = "Scheduled";
      $("cb-message").textContent = "Callback to " + c.number + " scheduled for " + new Date(job.due_at).toLocaleString() + ".";
    } else {
      button.disabled = false;
      let msg = "HTTP " + r.status;
      try { const e = await r.json(); msg = e.error + (e.fields ? ": " + JSON.stringify(e.fields) : ""); } catch (_) { /* not JSON */ }
      $("cb-message").textContent = "Could not schedule: " + msg;
    }
  }

  start();
})();
