// Switchboard console behaviour: live fragment polling, uPlot charts, the playground stream,
// copy buttons and data-confirm prompts. Every page works without it (CSP: no inline script).
(() => {
  "use strict";

  const LOGIN = "/ui/login";
  const LIVE_MS = 2000;
  const CHART_MS = 5000;
  const CHART_HEIGHT = 180;
  let stopped = false; // set once the session has ended; every poller checks it

  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

  // The server answers an expired session with 401/403 or by redirecting to the login page;
  // fetch follows the redirect silently, so the final URL is the only clue.
  const sessionEnded = (r) =>
    r.status === 401 || r.status === 403 ||
    (r.redirected && !!r.url && new URL(r.url, location.href).pathname.endsWith(LOGIN));

  function endSession() {
    if (stopped) return;
    stopped = true;
    location.assign(LOGIN);
  }

  // ---- live updates -------------------------------------------------------------------

  // An element is left alone while the user is working in it: it holds the focus, or a
  // control in it has been edited but not submitted (replacing it would lose the edit).
  function busy(el) {
    const active = document.activeElement;
    if (active && active !== document.body && el.contains(active)) return true;
    for (const c of el.querySelectorAll("input, textarea, select")) {
      if (c.type === "hidden") continue;
      if (c.type === "checkbox" || c.type === "radio") { if (c.checked !== c.defaultChecked) return true; }
      else if (c.tagName === "SELECT") { if ([...c.options].some((o) => o.selected !== o.defaultSelected)) return true; }
      else if (c.value !== c.defaultValue) return true;
    }
    return false;
  }

  async function refreshLive() {
    const live = document.querySelectorAll("[data-live][id]");
    if (!live.length || document.hidden || document.body.dataset.refresh === "off") return;
    const r = await fetch(location.pathname + location.search, {
      headers: { "X-Console-Fragment": "1" }, credentials: "same-origin", cache: "no-store",
    });
    if (sessionEnded(r)) return endSession();
    if (!r.ok) return; // transient server trouble: keep the old content, try again later
    // Full page or just <main>: DOMParser copes with both.
    const fresh = new DOMParser().parseFromString(await r.text(), "text/html");
    let newCharts = false;
    for (const el of live) {
      if (!el.isConnected || busy(el)) continue; // detached: an outer live element was replaced
      const next = fresh.getElementById(el.id);
      if (!next || withoutCharts(next) === withoutCharts(el)) continue;
      // replaceWith (not innerHTML) so attributes such as meter/progress value update too.
      const incoming = document.importNode(next, true);
      // A chart inside a live region keeps its drawn element (and uPlot instance).
      for (const c of incoming.querySelectorAll(".chart[id]")) {
        const old = document.getElementById(c.id);
        if (old && el.contains(old)) c.replaceWith(old);
        else newCharts = true;
      }
      el.replaceWith(incoming);
    }
    if (newCharts) drawCharts(); // draw them from the cached series at once
  }

  // Markup to compare old and new live elements by; drawn charts would always differ.
  function withoutCharts(node) {
    const copy = node.cloneNode(true);
    for (const c of copy.querySelectorAll(".chart")) c.replaceChildren();
    return copy.outerHTML;
  }

  // ---- charts -------------------------------------------------------------------------

  const charts = new Map(); // chart element -> uPlot instance
  const seriesCache = new Map(); // series URL -> last JSON answer

  // data-src names a series of its own (an admin's view of one key); data-scope="key" asks
  // for the caller's own series, which is all a client session can ever mean.
  const chartUrl = (el) =>
    el.dataset.src ? el.dataset.src
      : el.dataset.scope === "key" || document.body.dataset.role === "client"
      ? "/ui/api/series?key=1" : "/ui/api/series";

  const chartEls = () => [...document.querySelectorAll(".chart[data-series]")];

  async function refreshCharts() {
    const els = chartEls();
    if (!els.length || document.hidden) return;
    for (const url of new Set(els.map(chartUrl))) {
      const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
      if (sessionEnded(r)) return endSession();
      if (r.ok) seriesCache.set(url, await r.json());
    }
    drawCharts();
  }

  // Canvas can't read CSS, so take the colours from the stylesheet's custom properties.
  function palette() {
    const s = getComputedStyle(document.documentElement);
    const v = (name, fallback) => s.getPropertyValue(name).trim() || fallback;
    return { fg: v("--muted", "#555"), grid: v("--chart-grid", "#e3e8ee"), lines: [v("--chart-1", "#0b57d0"), v("--chart-2", "#c2410c")] };
  }

  function drawCharts() {
    for (const [el, u] of charts) { // drop instances whose element a live update replaced
      if (!el.isConnected) { u.destroy(); charts.delete(el); }
    }
    for (const el of chartEls()) {
      const data = seriesCache.get(chartUrl(el));
      if (data) drawChart(el, data);
    }
  }

  function drawChart(el, data) {
    const names = el.dataset.series.split(",").map((s) => s.trim()).filter(Boolean);
    const t = Array.isArray(data.t) ? data.t : [];
    const cols = names.map((n) => (Array.isArray(data.series?.[n]) ? data.series[n] : t.map(() => null)));
    const empty = !t.length || cols.every((c) => c.every((x) => x == null));
    // "no data yet" goes under an empty plot instead of replacing it: the axes and the
    // canvas stay (tests wait for it) and the note goes as soon as a value arrives.
    let note = el.querySelector(".chart-empty");
    if (empty && !note) {
      note = document.createElement("p");
      note.className = "chart-empty";
      note.textContent = "no data yet";
    }
    if (!window.uPlot) { if (empty) el.replaceChildren(note); return; } // else keep server fallback
    const u = charts.get(el);
    if (u) u.setData([t, ...cols]);
    else charts.set(el, createChart(el, names, [t, ...cols]));
    if (empty) el.append(note); else note?.remove();
  }

  function createChart(el, names, data) {
    // data-label names the line of a one-series chart; for two series it may hold two
    // comma-separated labels, otherwise the series keys are shown.
    const labels = (el.dataset.label || "").split(",").map((s) => s.trim());
    const label = (n, i) => (names.length === 1 ? labels.join(", ") || n : labels.length === names.length ? labels[i] : n);
    const c = palette();
    const axis = { stroke: c.fg, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } };
    el.replaceChildren();
    return new window.uPlot({
      width: Math.max(el.clientWidth, 200),
      height: CHART_HEIGHT,
      scales: { x: { time: true } }, // t is unix seconds, uPlot's default unit
      series: [{}, ...names.map((n, i) => ({ label: label(n, i), stroke: c.lines[i % c.lines.length], width: 2 }))],
      axes: [{ ...axis }, { ...axis, size: 56 }],
    }, data, el);
  }

  let resizeQueued = false;
  window.addEventListener("resize", () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => { // at most one relayout per frame while dragging
      resizeQueued = false;
      for (const [el, u] of charts) {
        if (el.isConnected) u.setSize({ width: Math.max(el.clientWidth, 200), height: CHART_HEIGHT });
      }
    });
  });

  // ---- playground ---------------------------------------------------------------------

  async function errorText(r) {
    const body = await r.text().catch(() => "");
    try {
      const e = JSON.parse(body).error;
      if (typeof e === "string") return e;
      if (e?.message) return e.message;
    } catch { /* not JSON: fall through */ }
    return body.trim().slice(0, 200) || `HTTP ${r.status}`;
  }

  async function play(form) {
    const send = form.querySelector("#send");
    const answer = document.getElementById("answer");
    const status = document.getElementById("playground-status");
    const say = (s) => { if (status) status.textContent = s; };
    if (send) send.disabled = true;
    answer.textContent = "";
    say("streaming…");
    try {
      const r = await fetch("/ui/api/chat", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRF-Token": csrf() },
        body: JSON.stringify({
          model: form.elements.model.value, stream: true,
          messages: [{ role: "user", content: form.elements.prompt.value }],
        }),
      });
      // A 403 here can be the gateway refusing the model, so only 401/login ends the session.
      if (r.status === 401 || (r.redirected && sessionEnded(r))) return endSession();
      if (!r.ok) return say(`error: ${await errorText(r)}`);
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      let failed = null;
      // One SSE event = lines up to a blank line; a network chunk may end mid-event, so
      // only complete events leave the buffer. The gateway ends with [DONE] or an error event.
      const handle = (block) => {
        const data = block.split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (!data || data === "[DONE]") return;
        const msg = JSON.parse(data);
        if (msg.error) { failed = msg.error.message || String(msg.error); return; }
        const piece = msg.choices?.[0]?.delta?.content;
        if (typeof piece === "string") answer.append(piece);
      };
      for (;;) {
        const { value, done } = await reader.read();
        buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
        buf = buf.replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) { handle(buf.slice(0, i)); buf = buf.slice(i + 2); }
        if (done) break;
      }
      if (buf.trim()) handle(buf); // a last event without its blank line
      say(failed ? `error: ${failed}` : "done");
    } catch (e) {
      say(`error: ${e.message || e}`);
    } finally {
      if (send) send.disabled = false;
    }
  }

  // ---- delegated events (survive live replacement of the elements) --------------------

  document.addEventListener("submit", (ev) => {
    if (ev.target.id === "playground") { ev.preventDefault(); play(ev.target); }
  });

  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest?.("button");
    if (!btn) return;
    if (btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) { ev.preventDefault(); return; }
    if (btn.classList.contains("copy") && btn.dataset.copy) {
      ev.preventDefault();
      const src = document.getElementById(btn.dataset.copy);
      if (!src) return;
      try {
        await navigator.clipboard.writeText(src.textContent);
        btn.textContent = "Copied";
      } catch {
        btn.textContent = "Copy failed"; // e.g. plain-HTTP origin without clipboard access
      }
    }
  });

  // ---- polling loops: setTimeout after each round, so slow answers never overlap ----------

  function loop(fn, ms) {
    const tick = async () => {
      if (stopped) return;
      try { await fn(); } catch { /* network blip or bad payload: try again next round */ }
      if (!stopped) setTimeout(tick, ms);
    };
    return tick;
  }

  function start() {
    setTimeout(loop(refreshLive, LIVE_MS), LIVE_MS); // data-refresh="off" is checked every round
    if (chartEls().length) loop(refreshCharts, CHART_MS)(); // draw at once, then every 5 s
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
