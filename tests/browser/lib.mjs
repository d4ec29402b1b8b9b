// Shared by view.mjs and glass.mjs: how Chromium is started, and the --mode switch of the viewer.
//
// Debian's Chromium is driven through playwright-core with executablePath, so nothing is
// downloaded at run time. The end-to-end tests run these scripts inside a network namespace
// (tests/common/netns.rs): Chromium offers ICE host candidates only on the interface of the
// default route, and libnice on the daemon's side gathers none on loopback.

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CROUPIER_CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox', // we run as root in CI and inside `ip netns exec`
  '--autoplay-policy=no-user-gesture-required',
  // Real host candidates (the veth address) instead of <uuid>.local names the daemon cannot resolve.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // N viewers in one browser: pages that are not in front must not be throttled or paused.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** Launches headless Chromium, or exits 2 with a message that says what to check. */
export async function launch(executablePath = CHROMIUM) {
  try {
    return await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  } catch (e) {
    const first = String(e && e.message ? e.message : e).split('\n').slice(0, 6).join('\n');
    process.stderr.write(
      `error: cannot launch Chromium at ${executablePath}: ${first}\n` +
        'hint: apt-get install chromium (Debian 12), or set CROUPIER_CHROMIUM / --chromium\n',
    );
    process.exit(2);
  }
}

/** The viewer URL with ?mode= set (left alone when mode is not given). */
export function withMode(url, mode) {
  const u = new URL(url);
  if (mode) u.searchParams.set('mode', mode);
  return u.href;
}

export function fail(message, code = 1) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}

/** Opens the viewer; exits 3 when the page or its script does not load. */
export async function openViewer(context, url) {
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  let res;
  try {
    res = await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  } catch (e) {
    fail(`cannot open ${url}: ${e.message.split('\n')[0]}`, 3);
  }
  if (!res || !res.ok()) fail(`${url} answered HTTP ${res ? res.status() : 'nothing'}`, 3);
  try {
    await page.waitForFunction(() => window.croupierViewer, null, { timeout: 5000 });
  } catch (_) {
    fail(`${url} loaded, but window.croupierViewer never appeared (is /web/viewer.js served?)`, 3);
  }
  return { page, pageErrors };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
