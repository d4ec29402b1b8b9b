// Croupier status page for the technician: every component's health, live from /live.
"use strict";

const $ = (id) => document.getElementById(id);
const st = { table: null, events: [], components: {}, lastTick: 0, zones: {} };
window.croupierStatus = { devices: {} };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

function dl(target, pairs) {
  const box = $(target);
  box.replaceChildren();
  for (const [k, v] of pairs) box.append(el("dt", {}, k), el("dd", {}, v));
}

function stateCell(state) {
  return el("td", { class: "state" }, el("span", { class: state }, state));
}

function ago(utc) {
  if (!utc) return "never";
  const t = Date.parse(utc.replace(/(\.\d{3})\d*Z$/, "$1Z"));
  const s = Math.max(0, (Date.now() - t) / 1000);
  return s < 120 ? s.toFixed(1) + " s ago" : Math.round(s / 60) + " min ago";
}

function renderDevices() {
  const body = $("devices").querySelector("tbody");
  body.replaceChildren();
  const seen = {};
  for (const [name, c] of Object.entries(st.components)) {
    if (c.kind !== "device") continue;
    seen[name] = c.state;
    const f = c.facts || {};
    const n = c.counters || {};
    const row = el(
      "tr",
      { "data-device": name, "data-state": c.state },
      el("td", {}, name),
      el("td", {}, f.role || ""),
      stateCell(c.state),
      el("td", {}, ago(f.last_frame_at)),
      el("td", {}, n.frames || 0),
      el("td", {}, n.errors || 0),
      el("td", {}, c.restarts || 0),
      el("td", {}, c.detail || ""),
    );
    body.append(row);
  }
  window.croupierStatus.devices = seen;
}

function renderOthers() {
  const body = $("others").querySelector("tbody");
  body.replaceChildren();
  for (const [name, c] of Object.entries(st.components)) {
    if (c.kind === "device" || c.kind === "camera") continue;
    body.append(el("tr", { "data-component": name }, el("td", {}, name), stateCell(c.state), el("td", {}, c.detail || ""), el("td", {}, c.restarts || 0)));
  }
}

async function loadZones(camera) {
  if (camera in st.zones) return;
  st.zones[camera] = null;
  try {
    const r = await fetch("/vision/" + encodeURIComponent(camera), { cache: "no-store" });
    if (r.ok) st.zones[camera] = await r.json();
  } catch (e) {
    /* no vision on this camera */
  }
  renderCameras(true);
}

function overlay(v) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + v.image.width + " " + v.image.height);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  for (const z of v.zones || []) {
    const p = document.createElementNS(ns, "polygon");
    p.setAttribute("points", z.polygon_px.map((q) => q[0].toFixed(1) + "," + q[1].toFixed(1)).join(" "));
    svg.append(p);
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", z.polygon_px[0][0] + 8);
    t.setAttribute("y", z.polygon_px[0][1] + 32);
    t.textContent = z.name;
    svg.append(t);
  }
  if (v.wheel) {
    for (const r of [v.wheel.inner, v.wheel.outer]) {
      const c = document.createElementNS(ns, "circle");
      c.setAttribute("cx", v.wheel.centre_px[0]);
      c.setAttribute("cy", v.wheel.centre_px[1]);
      c.setAttribute("r", r);
      svg.append(c);
    }
  }
  return svg;
}

const built = {};
function renderCameras(force) {
  const box = $("cameras");
  for (const [name, c] of Object.entries(st.components)) {
    if (c.kind !== "camera") continue;
    const cam = name.replace(/^camera:/, "");
    loadZones(cam);
    let card = built[cam];
    if (!card || force) {
      const view = el("div", { class: "view" }, el("iframe", { src: "/video/" + encodeURIComponent(cam) + "?mode=hls", title: cam }));
      if (st.zones[cam]) view.append(overlay(st.zones[cam]));
      const facts = el("dl", { class: "facts" });
      card = el("div", { class: "camera", "data-camera": cam }, el("h3", {}, cam), view, facts);
      if (built[cam]) built[cam].replaceWith(card);
      else box.append(card);
      built[cam] = card;
    }
    const f = c.facts || {};
    const vision = st.components["vision:" + cam];
    const pairs = [
      ["state", c.state + (c.detail ? " — " + c.detail : "")],
      ["fps", f.fps || "–"],
      ["bitrate", (f.bitrate_kbps || "–") + " kbit/s"],
      ["viewers", f.viewers || "0"],
      ["encoders", f.encoders || "–"],
      ["reconnects", (c.counters || {}).reconnects || 0],
    ];
    if (vision) {
      const vf = vision.facts || {};
      const vc = vision.counters || {};
      pairs.push(["vision", vision.state + " · " + (vf.reads || "") + " · " + (vf.read_ms || "–") + " ms/frame"]);
      pairs.push(["calibration", "version " + (vf.calibration_version || "?") + " · " + (vf.calibration || "")]);
      pairs.push(["sightings", (vc.sightings || 0) + " (rejected " + (vc.rejected || 0) + ")"]);
    }
    const d = card.querySelector("dl.facts");
    d.replaceChildren();
    for (const [k, v] of pairs) d.append(el("dt", {}, k), el("dd", {}, v));
  }
}

function renderEvents() {
  const events = $("events");
  const alerts = $("alerts");
  events.replaceChildren();
  alerts.replaceChildren();
  const last = st.events.slice(-40).reverse();
  for (const e of last) {
    events.append(el("li", { class: "mono" }, "#" + e.seq + " " + e.utc.slice(11, 23) + " " + e.type + " " + (e.round_id || "") + " " + JSON.stringify(e.payload).slice(0, 120)));
  }
  for (const e of st.events.filter((x) => x.type.startsWith("alert.") || x.type === "device.down").slice(-20).reverse()) {
    alerts.append(el("li", {}, e.utc.slice(11, 19) + " " + e.type + " — " + (e.payload.reason || e.payload.detail || e.payload.action || "")));
  }
}

function applyTick(t) {
  st.components = t.components || {};
  st.lastTick = Date.now();
  document.body.dataset.link = "live";
  $("link").textContent = "live";
  $("ready").textContent = t.ready ? "ready" : "not ready";
  $("ready").className = "pill " + (t.ready ? "up" : "down");
  const r = t.round || {};
  if (st.table) {
    $("title").textContent = "Croupier · " + st.table.studio + "/" + st.table.id;
    dl("table", [
      ["name", st.table.name || "–"],
      ["game", st.table.game],
      ["phase", r.phase || "idle"],
      ["round", r.round_id || "–"],
      ["deadline", r.deadline_utc || "–"],
      ["held because", r.pending_reason || "–"],
    ]);
  }
  const clock = t.clock || {};
  dl("clock", [
    ["synchronised", clock.synchronized ? "yes" : "NO"],
    ["estimated error", (clock.est_error_us ?? "?") + " µs"],
    ["timecode", t.timecode],
  ]);
  const up = st.components.uplink || {};
  const table = st.components.table || {};
  const f = up.facts || {};
  const oldest = (table.facts || {}).outbox_oldest_utc;
  dl("uplink", [
    ["state", (up.state || "absent") + (up.detail ? " — " + up.detail : "")],
    ["broker", f.broker || "–"],
    ["outbox depth", (table.facts || {}).outbox_depth || "0"],
    ["oldest unacknowledged", oldest ? ago(oldest) : "none"],
    ["acknowledged seq", f.acked_seq || "–"],
  ]);
  renderDevices();
  renderCameras(false);
  renderOthers();
}

function connect() {
  const es = new EventSource("/live");
  es.addEventListener("hello", (m) => {
    const h = JSON.parse(m.data);
    st.table = h.table;
    st.events = h.events || [];
    fetch("/status?format=json").then((r) => r.json()).then((s) => {
      $("version").textContent = "croupier " + s.version + " (" + String(s.commit).slice(0, 10) + ")";
    });
    applyTick(h);
    renderEvents();
  });
  es.addEventListener("tick", (m) => applyTick(JSON.parse(m.data)));
  es.addEventListener("event", (m) => {
    st.events.push(JSON.parse(m.data));
    if (st.events.length > 400) st.events.splice(0, st.events.length - 400);
    renderEvents();
  });
  es.onerror = () => {
    document.body.dataset.link = "lost";
    $("link").textContent = "no contact — reconnecting";
  };
}

setInterval(() => {
  if (st.lastTick && Date.now() - st.lastTick > 3500) {
    document.body.dataset.link = "lost";
    $("link").textContent = "no contact — reconnecting";
  }
}, 1000);
connect();
