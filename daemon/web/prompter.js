// Croupier dealer prompter. Runs on /live (Server-Sent Events; the browser reconnects by itself)
// and /time. The daemon's clock is the truth: the page measures its own clock's offset against
// /time (the sample with the shortest round trip wins) and counts down against the daemon's
// deadline, so a dealer's monitor with a wrong clock still shows the right countdown.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  table: null,
  round: null,
  events: [],
  components: {},
  clock: null,
  lastTick: 0,
  offset: 0, // server clock minus this page's clock, ms
  rtt: null,
};
// For tests and for a technician's console: what the page believes.
window.croupierPrompter = { offset: 0, rtt: null, zeroAt: {}, phase: null, alerts: [], hellos: 0, link: "connecting", losses: 0 };

const PHASE_TEXT = {
  idle: ["WAITING", "Press the pedal to open betting"],
  open: ["PLACE YOUR BETS", "Betting is open"],
  closed: ["NO MORE BETS", { roulette: "Launch the ball", baccarat: "Deal the cards", blackjack: "Deal the cards" }],
  play: [{ roulette: "BALL IN PLAY", baccarat: "DEALING", blackjack: "DEALING" }, "Wait for the result"],
  result_pending: ["RESULT ON HOLD", "Stop the game: follow the alert below"],
  result: ["RESULT", "Pay out, clear the layout, then press the pedal for the next round"],
  settled: ["SETTLED", "Press the pedal for the next round"],
};

// What the dealer should do, for alerts whose event carries no `action`.
const ACTIONS = {
  mismatch: "Stop the game. A supervisor confirms the result (two approvals) or voids the round.",
  unexpected_card: "Take the card back; it is not part of a round. Call the supervisor if unsure.",
  unexpected_pedal: "Finish the round in progress first.",
  unexpected_open: "A round is in progress: finish or void it first.",
  outbox_full: "Do not open a new round. Call the technician: the studio link is down.",
  device_down: "Call the technician. Do not guess results.",
};

const SUIT = { S: "♠", H: "♥", D: "♦", C: "♣" };
const RANK = { T: "10" };

function serverNow() {
  return Date.now() + state.offset;
}

function parseUtcMs(text) {
  if (!text) return null;
  // "2026-11-21T14:23:12.000123Z": keep milliseconds, which Date.parse reads everywhere.
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(text);
  if (!m) return Date.parse(text);
  const frac = m[2] ? Number(m[2]) * 1000 : 0;
  return Date.parse(m[1] + "Z") + frac;
}

async function measureOffset() {
  let best = null;
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    const p0 = performance.now();
    try {
      const r = await fetch("/time", { cache: "no-store" });
      const body = await r.json();
      const rtt = performance.now() - p0;
      const sample = body.server_ms - (t0 + rtt / 2);
      if (!best || rtt < best.rtt) best = { rtt, sample };
    } catch (e) {
      return;
    }
  }
  if (best) {
    state.offset = best.sample;
    state.rtt = best.rtt;
    window.croupierPrompter.offset = best.sample;
    window.croupierPrompter.rtt = best.rtt;
  }
}

function currentRoundId() {
  if (state.round && state.round.round_id) return state.round.round_id;
  for (let i = state.events.length - 1; i >= 0; i--) {
    if (state.events[i].type === "round.open") return state.events[i].round_id;
  }
  return null;
}

function lastSeqOf(type) {
  for (let i = state.events.length - 1; i >= 0; i--) {
    if (state.events[i].type === type) return state.events[i].seq;
  }
  return 0;
}

function cardGlyph(code, hole, seen) {
  const el = document.createElement("div");
  el.className = "card";
  if (hole) {
    el.classList.add("hole");
    el.textContent = "?";
    return el;
  }
  const rank = code.slice(0, -1);
  const suit = code.slice(-1);
  if (suit === "H" || suit === "D") el.classList.add("red");
  el.textContent = (RANK[rank] || rank) + SUIT[suit];
  el.dataset.card = code;
  if (seen) {
    const s = document.createElement("span");
    s.className = "seen";
    s.textContent = "✓";
    s.title = "confirmed by " + seen;
    el.appendChild(s);
  }
  return el;
}

function handName(payload) {
  if (payload.side) return payload.side;
  const p = payload.position || {};
  if (p.zone === "box") return "box " + p.box_no + (p.hand > 1 ? " hand " + p.hand : "");
  if (p.zone) return "dealer";
  return "cards";
}

function renderPlay(roundId) {
  const hands = new Map();
  const seen = new Map();
  let number = null;
  for (const e of state.events) {
    if (e.round_id !== roundId) continue;
    if (e.type === "card.seen") seen.set(e.payload.card, e.source);
    if (e.type === "wheel.result") number = e.payload;
  }
  for (const e of state.events) {
    if (e.round_id !== roundId || e.type !== "card.dealt") continue;
    const name = handName(e.payload);
    if (!hands.has(name)) hands.set(name, []);
    hands.get(name).push(e.payload);
  }
  const box = $("hands");
  box.replaceChildren();
  for (const [name, cards] of hands) {
    const hand = document.createElement("div");
    hand.className = "hand";
    const h = document.createElement("h2");
    h.textContent = name;
    const row = document.createElement("div");
    row.className = "cards";
    for (const c of cards) row.appendChild(cardGlyph(c.card, c.hole, seen.get(c.card)));
    hand.append(h, row);
    box.appendChild(hand);
  }
  const n = $("number");
  if (number) {
    n.hidden = false;
    n.textContent = number.label || String(number.number);
    n.className = colourOf(number.number);
  } else {
    n.hidden = true;
  }
}

const REDS = new Set([1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36]);
function colourOf(n) {
  if (n === 0 || n === 37) return "green";
  return REDS.has(n) ? "red" : "black";
}

function renderResult(roundId) {
  const el = $("result");
  let result = null;
  for (const e of state.events) {
    if (e.round_id === roundId && e.type === "round.result") result = e.payload.result;
    if (e.round_id === roundId && e.type === "round.void") result = { void: e.payload.reason };
  }
  if (!result) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  if (result.void !== undefined) {
    el.textContent = "ROUND VOID — " + result.void;
  } else if (result.winner) {
    const w = result.winner.toUpperCase();
    el.textContent = (w === "TIE" ? "TIE" : w + " WINS") + " · " + result.player_total + " – " + result.banker_total;
  } else if (result.number !== undefined) {
    el.textContent = result.label + " " + (result.colour || "").toUpperCase();
  } else if (result.dealer) {
    el.textContent = "DEALER " + (result.dealer.value.bust ? "BUST" : result.dealer.value.total);
  } else if (result.manual) {
    el.textContent = "MANUAL RESULT · approved by " + (result.approved_by || []).join(", ");
  } else {
    el.textContent = JSON.stringify(result);
  }
}

function activeAlerts() {
  const alerts = [];
  const lastOpen = lastSeqOf("round.open");
  const settledAfter = (seq, roundId) =>
    state.events.some(
      (e) => e.seq > seq && e.round_id === roundId && (e.type === "round.void" || e.type === "round.result"),
    );
  for (const e of state.events) {
    if (!e.type.startsWith("alert.") || e.seq < lastOpen) continue;
    if (e.round_id && settledAfter(e.seq, e.round_id)) continue;
    const kind = e.type.slice(6);
    const p = e.payload || {};
    let text = kind.replace(/_/g, " ").toUpperCase();
    if (p.reason && typeof p.reason === "string") text += ": " + p.reason.replace(/_/g, " ");
    if (kind === "mismatch" && p.detail && p.detail.card) {
      text += " — " + p.detail.source + " saw " + p.detail.card;
    }
    if (kind === "mismatch" && p.detail && Array.isArray(p.detail.missing) && p.detail.missing.length) {
      text += " — no confirmation from " + p.detail.missing.join(", ");
      const unseen = (p.detail.unconfirmed || []).filter((u) => u.cards && u.cards.length);
      if (unseen.length) {
        text += " (not seen: " + unseen.map((u) => u.cards.join(" ")).join("; ") + ")";
      }
    }
    alerts.push({ kind, text, action: p.action || ACTIONS[kind] || "Call the supervisor.", level: "error" });
  }
  for (const [name, c] of Object.entries(state.components)) {
    if (c.kind === "device" && c.state !== "up") {
      alerts.push({
        kind: "device_down",
        text: name.toUpperCase() + " IS DOWN" + (c.detail ? ": " + c.detail : ""),
        action: ACTIONS.device_down,
        level: "error",
      });
    }
    if (c.kind === "vision" && c.state === "down") {
      alerts.push({
        kind: "vision_down",
        text: "CAMERA CHECK (" + name + ") IS DOWN",
        action: "Results that need the camera will be held. Call the technician.",
        level: "warning",
      });
    }
  }
  const uplink = state.components.uplink;
  if (uplink && uplink.state !== "up") {
    alerts.push({
      kind: "uplink",
      text: "STUDIO LINK DOWN — events are kept and sent later",
      action: "Carry on. If it lasts, call the technician.",
      level: "warning",
    });
  }
  if (state.clock && !state.clock.synchronized) {
    alerts.push({
      kind: "clock_unsynchronised",
      text: "CLOCK NOT SYNCHRONISED",
      action: "Carry on; tell the technician (time stamps may be off).",
      level: "warning",
    });
  }
  return alerts;
}

function renderAlerts() {
  const alerts = activeAlerts();
  window.croupierPrompter.alerts = alerts.map((a) => a.kind + ": " + a.text);
  const box = $("alerts");
  box.replaceChildren();
  for (const a of alerts.slice(0, 4)) {
    const el = document.createElement("div");
    el.className = "alert " + a.level;
    el.dataset.kind = a.kind;
    const t = document.createElement("strong");
    t.textContent = a.text;
    const act = document.createElement("span");
    act.className = "action";
    act.textContent = a.action;
    el.append(t, act);
    box.appendChild(el);
  }
}

function renderMessages() {
  const box = $("messages");
  box.replaceChildren();
  const now = serverNow();
  for (const e of state.events) {
    if (e.type !== "prompter.message") continue;
    const ttl = (e.payload.ttl_s || 60) * 1000;
    if (parseUtcMs(e.utc) + ttl < now) continue;
    const el = document.createElement("div");
    el.className = "message " + (e.payload.level || "info");
    el.textContent = e.payload.text;
    box.appendChild(el);
  }
}

function gameText(v) {
  if (typeof v === "string") return v;
  return v[(state.table && state.table.game) || "roulette"];
}

function render() {
  const phase = (state.round && state.round.phase) || "idle";
  const roundId = currentRoundId();
  document.body.dataset.phase = phase;
  window.croupierPrompter.phase = phase;
  const [title, hint] = PHASE_TEXT[phase] || [phase.toUpperCase(), ""];
  $("phase").textContent = gameText(title);
  $("instruction").textContent = gameText(hint);
  $("round").textContent = roundId || "";
  if (state.table) {
    $("table").textContent = (state.table.name || state.table.id) + " · " + state.table.game;
  }
  renderPlay(roundId);
  renderResult(roundId);
  renderAlerts();
  renderMessages();
}

function openWindowMs() {
  const id = state.round && state.round.round_id;
  for (let i = state.events.length - 1; i >= 0; i--) {
    const e = state.events[i];
    if (e.type === "round.open" && e.round_id === id) return e.payload.bet_window_ms;
  }
  return null;
}

// The countdown runs on every frame, against the daemon's deadline and clock.
function frame() {
  const box = $("countdown-box");
  const r = state.round;
  const deadline = r && r.phase === "open" ? parseUtcMs(r.deadline_utc) : null;
  if (deadline) {
    box.hidden = false;
    const left = Math.max(0, deadline - serverNow());
    $("countdown").textContent = (left / 1000).toFixed(1);
    const total = openWindowMs();
    $("bar-fill").style.transform = "scaleX(" + (total ? Math.min(1, left / total) : 1) + ")";
    document.body.dataset.urgent = left < 5000 ? "1" : "0";
    if (left === 0 && !(r.round_id in window.croupierPrompter.zeroAt)) {
      // The daemon's time at which this page showed zero.
      window.croupierPrompter.zeroAt[r.round_id] = serverNow();
    }
  } else {
    box.hidden = true;
  }
  if (state.lastTick && Date.now() - state.lastTick > 3500) markLost();
  requestAnimationFrame(frame);
}

// The phase moves with the events at once; the next tick brings the engine's own snapshot.
function followPhase(e) {
  const r = state.round || {};
  switch (e.type) {
    case "round.open":
      state.round = { phase: "open", round_id: e.round_id, deadline_utc: e.payload.deadline_utc };
      break;
    case "round.close":
      // The close can arrive a few milliseconds before this page's own countdown reaches zero:
      // either way, this is when the dealer saw betting end.
      if (e.round_id && !(e.round_id in window.croupierPrompter.zeroAt)) {
        window.croupierPrompter.zeroAt[e.round_id] = serverNow();
      }
      state.round = { ...r, phase: "closed" };
      break;
    case "round.play":
      state.round = { ...r, phase: "play" };
      break;
    case "round.result":
      state.round = { ...r, phase: "result" };
      break;
    case "alert.mismatch":
      state.round = { ...r, phase: "result_pending" };
      break;
    case "round.settled":
      state.round = { ...r, phase: "settled" };
      break;
    default:
  }
}

function markLost() {
  if (window.croupierPrompter.link !== "lost") window.croupierPrompter.losses += 1;
  window.croupierPrompter.link = "lost";
  document.body.dataset.link = "lost";
  $("link").textContent = "no contact with the table — reconnecting";
}

function applyTick(t) {
  state.round = t.round;
  state.components = t.components || {};
  state.clock = t.clock;
  state.lastTick = Date.now();
  document.body.dataset.link = "live";
  window.croupierPrompter.link = "live";
  $("link").textContent = "live · " + t.timecode;
}

function connect() {
  const es = new EventSource("/live");
  es.addEventListener("hello", (m) => {
    const h = JSON.parse(m.data);
    window.croupierPrompter.hellos += 1;
    state.table = h.table;
    state.events = h.events || [];
    applyTick(h);
    render();
  });
  es.addEventListener("tick", (m) => {
    applyTick(JSON.parse(m.data));
    render();
  });
  es.addEventListener("event", (m) => {
    const e = JSON.parse(m.data);
    state.events.push(e);
    followPhase(e);
    if (state.events.length > 400) state.events.splice(0, state.events.length - 400);
    render();
  });
  es.onerror = () => {
    markLost();
    $("link").textContent = "no contact with the table — reconnecting";
  };
}

measureOffset().then(() => {
  connect();
  requestAnimationFrame(frame);
});
setInterval(measureOffset, 60000);
