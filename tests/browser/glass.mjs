#!/usr/bin/env node
// Glass-to-glass latency of a Croupier camera, measured in the browser.
//
//   node tests/browser/glass.mjs --url http://10.1.2.1:8080/video/overhead \
//        [--mode whep|hls|auto] [--seconds S] [--warmup S] [--qr-box x,y,w,h]
//        [--pts-offset-us N] [--chromium PATH]
//
// The daemon's test camera burns a QR code into every frame holding its capture time. Two
// payloads are read:
//   - decimal text: microseconds since the Unix epoch (qroverlay `data`, set per frame);
//   - debugqroverlay's JSON, {"TIMESTAMP": <buffer PTS, ns>, ...}: the capture time is
//     TIMESTAMP/1000 + --pts-offset-us (default 0, i.e. a pipeline on a realtime clock with base
//     time 0, whose PTS is UTC). GStreamer 1.22's qroverlay keeps showing the first `data` it was
//     given (its "data changed" flag is never cleared), so on Debian 12 debugqroverlay is the one
//     that changes per frame.
// Stamps more than an hour away from now are ignored (counted in "implausible"). For every frame the page
// presents, requestVideoFrameCallback gives its expected display time; the frame is drawn on a
// canvas, jsQR reads the code, and latency = display time − capture time. Both clocks are this
// machine's CLOCK_REALTIME (performance.timeOrigin + the frame's expectedDisplayTime), so run the
// daemon and this script on the same host.
//
// A captured value is counted once, at its first presentation (a repeated frame is not a new
// sample). Decoding the whole frame with jsQR costs tens of milliseconds and makes the page skip
// frames; --qr-box limits it to a rectangle in the video's own pixels (not the window's), e.g.
// --qr-box 480,40,160,160 for a 640x360 picture with qroverlay x=80 y=20 pixel-size=4.
// Default: the whole frame.
//
// Prints one JSON line:
//   {"mode","samples","p50_ms","p95_ms","p99_ms","min_ms","max_ms","decoded_qr","frames",
//    "receive_p50_ms","format","implausible","errors"}
// samples: distinct capture stamps measured; decoded_qr: frames whose QR was read; frames: frames
// the page saw presented (requestVideoFrameCallback skips some while jsQR is busy);
// receive_p50_ms (WebRTC only): capture → packet arrival, the rest being jitter buffer, decode
// and render. Exit status 4 when no QR code was read at all.

import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { launch, withMode, openViewer, fail, CHROMIUM } from './lib.mjs';

let opts;
try {
  opts = parseArgs({
    options: {
      url: { type: 'string' },
      mode: { type: 'string', default: 'whep' },
      seconds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      'qr-box': { type: 'string' },
      'pts-offset-us': { type: 'string', default: '0' },
      chromium: { type: 'string', default: CHROMIUM },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (e) {
  fail(e.message);
}
if (opts.help) {
  process.stdout.write('usage: glass.mjs --url URL [--mode whep|hls|auto] [--seconds S] [--warmup S] [--qr-box x,y,w,h] [--pts-offset-us N] [--chromium PATH]\n');
  process.exit(0);
}
if (!opts.url) fail('--url is required (the viewer page, e.g. http://HOST:PORT/video/<camera>)');
if (!['whep', 'hls', 'auto'].includes(opts.mode)) fail('--mode must be whep, hls or auto');
const seconds = Number(opts.seconds);
const warmup = Number(opts.warmup);
if (!(seconds > 0) || !(warmup >= 0)) fail('--seconds must be > 0 and --warmup >= 0');
const ptsOffsetUs = Number(opts['pts-offset-us']);
if (!Number.isFinite(ptsOffsetUs)) fail('--pts-offset-us must be a number (microseconds)');
let box = null;
if (opts['qr-box']) {
  box = opts['qr-box'].split(',').map(Number);
  if (box.length !== 4 || box.some((n) => !Number.isInteger(n) || n < 0) || box[2] === 0 || box[3] === 0) {
    fail('--qr-box must be x,y,w,h: four non-negative integers in video pixels, w and h > 0');
  }
}

const jsqrPath = createRequire(import.meta.url).resolve('jsqr/dist/jsQR.js');
const browser = await launch(opts.chromium);
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const { page, pageErrors } = await openViewer(context, withMode(opts.url, opts.mode));
  await page.addScriptTag({ path: jsqrPath });
  // Measure only once the viewer plays the requested path (auto: whatever it settled on).
  const want = opts.mode === 'auto' ? ['whep', 'hls'] : [opts.mode];
  try {
    await page.waitForFunction((w) => w.includes(window.croupierViewer.mode), want, { timeout: 30000, polling: 100 });
  } catch (_) {
    const state = await page.evaluate(() => ({ mode: window.croupierViewer.mode, errors: window.croupierViewer.errors }));
    fail(`viewer never reached mode ${want.join('|')} within 30 s: ${JSON.stringify(state)}`, 3);
  }
  await page.waitForTimeout(warmup * 1000);
  const r = await page.evaluate(measure, { seconds, box, ptsOffsetUs });
  const sorted = r.latencies.slice().sort((a, b) => a - b);
  const round = (x) => (x == null ? null : Math.round(x * 10) / 10);
  const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
  const rec = r.receive.slice().sort((a, b) => a - b);
  const out = {
    mode: r.mode,
    samples: sorted.length,
    p50_ms: round(pct(50)),
    p95_ms: round(pct(95)),
    p99_ms: round(pct(99)),
    min_ms: round(sorted[0]),
    max_ms: round(sorted[sorted.length - 1]),
    decoded_qr: r.decoded,
    frames: r.frames,
    receive_p50_ms: rec.length ? round(rec[Math.ceil(rec.length / 2) - 1]) : null,
    format: r.format,
    implausible: r.implausible,
    errors: [...r.errors, ...pageErrors],
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  if (r.decoded >= 10 && sorted.length === 1) {
    process.stderr.write(
      'warning: every frame carries the same stamp: the QR code is frozen (GStreamer 1.22 qroverlay ' +
        'draws only the first `data` it gets; see tests/browser/README.md)\n',
    );
  }
  if (!r.decoded) {
    process.stderr.write('error: no QR code read: is the test camera stamping frames (qroverlay), and does --qr-box cover it?\n');
    process.exitCode = 4;
  }
} finally {
  await browser.close();
}

// Runs in the page.
function measure({ seconds, box, ptsOffsetUs }) {
  const viewer = window.croupierViewer;
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const seen = new Set();
  const latencies = [];
  const receive = [];
  let frames = 0;
  let decoded = 0;
  let implausible = 0;
  let format = null;
  let watched = null;

  // The capture time in µs since the epoch, or null if the code holds no stamp we know.
  const stampOf = (text) => {
    if (/^\d{13,17}$/.test(text)) {
      format = 'decimal';
      return Number(text);
    }
    try {
      const j = JSON.parse(text);
      const ts = j.TIMESTAMP ?? j.timestamp;
      if (typeof ts !== 'number') return null;
      format = 'debugqroverlay';
      return ts / 1000 + ptsOffsetUs;
    } catch (_) {
      return null;
    }
  };
  let lastCallback = performance.now();

  const onFrame = (now, md) => {
    lastCallback = performance.now();
    if (done) return;
    frames++;
    const video = watched;
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    const [x, y, w, h] = box ? [Math.min(box[0], vw - 1), Math.min(box[1], vh - 1), box[2], box[3]] : [0, 0, vw, vh];
    const cw = Math.min(w, vw - x);
    const ch = Math.min(h, vh - y);
    if (cw > 0 && ch > 0) {
      if (canvas.width !== cw || canvas.height !== ch) {
        canvas.width = cw;
        canvas.height = ch;
      }
      ctx.drawImage(video, x, y, cw, ch, 0, 0, cw, ch);
      const code = window.jsQR(ctx.getImageData(0, 0, cw, ch).data, cw, ch, { inversionAttempts: 'dontInvert' });
      const stampUs = code ? stampOf(code.data) : null;
      if (stampUs != null && Math.abs(stampUs / 1000 - Date.now()) > 3600e3) {
        implausible++;
      } else if (stampUs != null) {
        decoded++;
        if (!seen.has(stampUs)) {
          seen.add(stampUs);
          const capturedMs = stampUs / 1000;
          const shownMs = performance.timeOrigin + (md.expectedDisplayTime ?? now);
          latencies.push(shownMs - capturedMs);
          if (md.receiveTime != null) receive.push(performance.timeOrigin + md.receiveTime - capturedMs);
        }
      }
    }
    watch();
  };

  // Follows the viewer's <video>: on a fallback or reconnect it puts a new element on screen.
  const watch = () => {
    watched = viewer.video;
    if (watched) watched.requestVideoFrameCallback(onFrame);
  };

  let done = false;
  return new Promise((resolve) => {
    watch();
    const rewatch = setInterval(() => {
      if (viewer.video !== watched && performance.now() - lastCallback > 500) watch();
    }, 250);
    setTimeout(() => {
      done = true;
      clearInterval(rewatch);
      resolve({ mode: viewer.mode, latencies, receive, frames, decoded, implausible, format, errors: viewer.errors.slice() });
    }, seconds * 1000);
  });
}
