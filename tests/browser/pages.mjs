// Drives one of the daemon's pages (the prompter, the status page) in headless Chromium for the
// end-to-end tests: open the URL, optionally skew the page's clock, wait until a JavaScript
// condition holds, print a JavaScript value as JSON on stdout, and keep a screenshot.
//
//   node pages.mjs URL [--skew-ms N] [--until JS] [--print JS] [--timeout S]
//                      [--screenshot FILE] [--width W --height H] [--then-until JS --then-print JS]
//
// Exit codes: 0 done, 1 the condition never held (the last printed value says where it got),
// 2 Chromium did not start, 3 the page did not load or threw.

import { launch, fail } from './lib.mjs';

const args = process.argv.slice(2);
const url = args[0];
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
if (!url) fail('usage: pages.mjs URL [--until JS] [--print JS] …');
const skew = Number(opt('--skew-ms', '0'));
const timeout = Number(opt('--timeout', '30')) * 1000;
const width = Number(opt('--width', '1280'));
const height = Number(opt('--height', '720'));

const browser = await launch();
const context = await browser.newContext({ viewport: { width, height } });
if (skew) {
  // The dealer's monitor has a wrong clock: every Date in the page is off by `skew` ms.
  await context.addInitScript((skewMs) => {
    const RealDate = Date;
    class SkewedDate extends RealDate {
      constructor(...a) {
        if (a.length === 0) super(RealDate.now() + skewMs);
        else super(...a);
      }
      static now() {
        return RealDate.now() + skewMs;
      }
    }
    window.Date = SkewedDate;
  }, skew);
}
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
let res;
try {
  res = await page.goto(url, { waitUntil: 'load', timeout: 15000 });
} catch (e) {
  fail(`cannot open ${url}: ${e.message.split('\n')[0]}`, 3);
}
if (!res || !res.ok()) fail(`${url} answered HTTP ${res ? res.status() : 'nothing'}`, 3);

async function stage(untilJs, printJs) {
  const started = Date.now();
  let ok = !untilJs;
  while (!ok && Date.now() - started < timeout) {
    if (errors.length) fail(`the page threw: ${errors.join('; ')}`, 3);
    try {
      ok = Boolean(await page.evaluate(untilJs));
    } catch (e) {
      ok = false;
    }
    if (!ok) await page.waitForTimeout(20);
  }
  const value = printJs ? await page.evaluate(printJs) : null;
  process.stdout.write(JSON.stringify({ ok, value }) + '\n');
  return ok;
}

let ok = await stage(opt('--until'), opt('--print'));
if (ok && opt('--then-until')) ok = await stage(opt('--then-until'), opt('--then-print'));
const shot = opt('--screenshot');
if (shot) await page.screenshot({ path: shot });
await browser.close();
process.exit(ok ? 0 : 1);
