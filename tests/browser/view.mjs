#!/usr/bin/env node
// Opens N headless viewers on a Croupier camera page and reports what they played.
//
//   node tests/browser/view.mjs --url http://10.1.2.1:8080/video/overhead \
//        [--pages N] [--seconds S] [--mode whep|hls|auto] [--screenshot out.png] [--chromium PATH]
//
// Every 500 ms for S seconds each page's window.croupierViewer.stats() is sampled. One JSON line
// goes to stdout (everything else to stderr):
//   {"pages":[{"mode","samples":[{t_ms,mode,...stats}],"framesDecoded","freezeCount",
//     "totalFreezesDuration","messages","lastMessage","latencyMs","errors":[...]}]}
// Exit status: 0 when the run completed (judging the numbers is the caller's job), 2 when
// Chromium cannot start, 3 when the page does not load, 1 on bad arguments.

import { parseArgs } from 'node:util';
import { launch, withMode, openViewer, fail, sleep, CHROMIUM } from './lib.mjs';

let opts;
try {
  opts = parseArgs({
    options: {
      url: { type: 'string' },
      pages: { type: 'string', default: '1' },
      seconds: { type: 'string', default: '10' },
      mode: { type: 'string' },
      screenshot: { type: 'string' },
      chromium: { type: 'string', default: CHROMIUM },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (e) {
  fail(e.message);
}
if (opts.help) {
  process.stdout.write('usage: view.mjs --url URL [--pages N] [--seconds S] [--mode whep|hls|auto] [--screenshot PNG] [--chromium PATH]\n');
  process.exit(0);
}
if (!opts.url) fail('--url is required (the viewer page, e.g. http://HOST:PORT/video/<camera>)');
const pages = Number(opts.pages);
const seconds = Number(opts.seconds);
if (!Number.isInteger(pages) || pages < 1) fail('--pages must be a positive integer');
if (!(seconds > 0)) fail('--seconds must be a positive number');
if (opts.mode && !['whep', 'hls', 'auto'].includes(opts.mode)) fail('--mode must be whep, hls or auto');

const url = withMode(opts.url, opts.mode);
const browser = await launch(opts.chromium);
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const viewers = await Promise.all(Array.from({ length: pages }, () => openViewer(context, url)));
  const samples = viewers.map(() => []);
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    const tick = Date.now();
    await Promise.all(
      viewers.map(async ({ page }, i) => {
        const s = await page.evaluate(async () => {
          const v = window.croupierViewer;
          return { ...(await v.stats()), mode: v.mode };
        });
        samples[i].push({ t_ms: tick - t0, ...s });
      }),
    );
    await sleep(Math.max(0, 500 - (Date.now() - tick)));
  }
  if (opts.screenshot) await viewers[0].page.screenshot({ path: opts.screenshot });
  const out = await Promise.all(
    viewers.map(async ({ page, pageErrors }, i) => {
      const v = await page.evaluate(() => {
        const c = window.croupierViewer;
        return {
          mode: c.mode,
          messages: c.messages.length,
          lastMessage: c.messages.length ? c.messages[c.messages.length - 1] : null,
          latencyMs: c.hls.latencyMs,
          hls: c.hls,
          errors: c.errors,
        };
      });
      const last = samples[i][samples[i].length - 1] || {};
      return {
        mode: v.mode,
        samples: samples[i],
        framesDecoded: last.framesDecoded ?? 0,
        freezeCount: last.freezeCount ?? 0,
        totalFreezesDuration: last.totalFreezesDuration ?? 0,
        messages: v.messages,
        lastMessage: v.lastMessage,
        latencyMs: v.latencyMs,
        hls: v.hls,
        errors: [...v.errors, ...pageErrors],
      };
    }),
  );
  process.stdout.write(JSON.stringify({ url, pages: out }) + '\n');
  // Close like a user would, so the viewer's pagehide handler ends its WHEP sessions (DELETE)
  // and a test can check that the daemon freed them.
  await Promise.all(viewers.map(({ page }) => page.close({ runBeforeUnload: true })));
  await sleep(300);
} finally {
  await browser.close();
}
