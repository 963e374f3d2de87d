// The musicians' page in real headless Chromium (Debian's chromium, driven by playwright-core;
// no browser is ever downloaded), against the operator's page on the local control plane.
//
//   node page.mjs URL OUTDIR EXPECTATIONS-JSON
//
// EXPECTATIONS: {"hub": listed hub, "participant": a participant in it, "latency": their last
// round trip as shown (e.g. "20.0 ms"), "zone": the hub's time zone, "markup": a participant's
// name that looks like markup and must show as text, "unlisted": a hub that must
// not appear, "absent": texts that must appear nowhere (participants' addresses, the unlisted
// hub's participants)}.
//
// It checks the page as loaded, copies a room's address, takes a desktop screenshot, then
// prints "ready" and waits on stdin for "joined NAME": from then on NAME must appear within
// 2 s, without a reload. Then a phone-width screenshot, and the page with JavaScript off.
// It prints "ok ..." lines and exits 0, or prints "FAIL: why" on stderr and exits 1.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [url, outdir, expectationsJson] = process.argv.slice(2);
if (!url || !outdir || !expectationsJson) {
  console.error('usage: node page.mjs URL OUTDIR EXPECTATIONS-JSON');
  process.exit(2);
}
const expected = JSON.parse(expectationsJson);
const executablePath = process.env.MIDIHUB_CHROMIUM || '/usr/bin/chromium';
const JOIN_LIMIT_MS = 2000;

class Failure extends Error {}
function check(condition, why) {
  if (!condition) throw new Failure(why);
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function nextLine() {
  const { value, done } = await lines.next();
  check(!done, 'stdin closed before the test said who joined');
  return value.trim();
}

// Nothing the page says may name an address or an unlisted hub.
async function checkNothingLeaks(page, where) {
  const html = await page.content();
  for (const text of [...expected.absent, expected.unlisted]) {
    check(!html.includes(text), `${where}: the page shows "${text}", which it must never show`);
  }
}

async function checkHubShown(page, where) {
  const hubs = page.locator('#hubs');
  for (const text of [expected.hub, expected.participant, expected.latency, expected.markup]) {
    await hubs.getByText(text, { exact: false }).first().waitFor({ timeout: 5000 })
      .catch(() => { throw new Failure(`${where}: "${text}" is not on the page`); });
  }
  const title = await page.title();
  check(title === 'MIDI hubs', `${where}: a participant's name ran as a script (title "${title}")`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // As root (a CI container) Chromium refuses its sandbox.
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
try {
  mkdirSync(outdir, { recursive: true });
  const screenshots = {
    desktop: join(outdir, 'page-desktop.png'),
    phone: join(outdir, 'page-phone.png'),
    noScript: join(outdir, 'page-no-javascript.png'),
  };

  // ---- desktop, JavaScript on: the live page
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await desktop.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin });
  const page = await desktop.newPage();
  const refused = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(new URL(url).origin)) refused.push(request.url());
  });
  await page.goto(url);
  await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 5000 })
    .catch(() => { throw new Failure('the page never said it is live (no server-sent events)'); });
  await checkHubShown(page, 'desktop');
  await checkNothingLeaks(page, 'desktop');
  // The latency chart draws: its dot for the round trip now has a size on screen.
  const dot = await page.locator('#hubs svg.chart circle').first().boundingBox();
  check(dot !== null && dot.width > 0 && dot.height > 0, 'the latency chart draws nothing');
  check(
    (await page.locator('#hubs time').first().textContent()).includes('your time'),
    'times are not shown in the viewer\'s own zone',
  );

  // One click copies a room's address.
  const copy = page.locator('button.copy').first();
  const address = await copy.getAttribute('data-copy');
  await copy.click();
  await page.locator('button.copy', { hasText: 'Copied' }).first().waitFor({ timeout: 2000 })
    .catch(() => { throw new Failure('the copy button did not say Copied'); });
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === address, `the clipboard holds "${copied}", not the address "${address}"`);
  console.log(`ok copied ${address}`);

  await page.screenshot({ path: screenshots.desktop, fullPage: true });
  console.log(`ok screenshot ${screenshots.desktop}`);

  // ---- a participant joins: on the page within 2 s, without a reload
  await page.evaluate(() => { window.midihubSameDocument = true; });
  console.log('ready');
  const line = await nextLine();
  check(line.startsWith('joined '), `expected "joined NAME" on stdin, got "${line}"`);
  const joined = line.slice('joined '.length);
  const started = Date.now();
  await page.locator('#hubs .participant .name', { hasText: joined }).first()
    .waitFor({ timeout: JOIN_LIMIT_MS })
    .catch(() => { throw new Failure(`${joined} did not appear within ${JOIN_LIMIT_MS} ms of joining`); });
  const took = Date.now() - started;
  check(await page.evaluate(() => window.midihubSameDocument === true),
    'the page was reloaded to show the new participant');
  console.log(`ok ${joined} appeared after ${took} ms without a reload`);
  await checkNothingLeaks(page, 'after the update');
  check(refused.length === 0, `the page requested other origins: ${refused.join(', ')}`);

  // Where the clipboard is refused (plain HTTP), the click selects the address instead.
  const fallback = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await fallback.addInitScript(() => {
    Object.defineProperty(navigator, 'clipboard', { value: undefined });
  });
  const plain = await fallback.newPage();
  await plain.goto(url);
  await plain.locator('button.copy').first().click();
  const selected = await plain.evaluate(() => window.getSelection().toString());
  check(selected === address, `without a clipboard the address is not selected (selected: "${selected}")`);
  console.log('ok without a clipboard the address is selected');
  await fallback.close();

  // ---- phone width
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  });
  const small = await phone.newPage();
  await small.goto(url);
  await checkHubShown(small, 'phone');
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page is ${overflow} px wider than a phone`);
  await small.screenshot({ path: screenshots.phone, fullPage: true });
  console.log(`ok screenshot ${screenshots.phone}`);
  await phone.close();

  // ---- JavaScript off: the state when loaded, times in UTC and the hub's zone
  const noScript = await browser.newContext({ viewport: { width: 1280, height: 900 }, javaScriptEnabled: false });
  const still = await noScript.newPage();
  await still.goto(url);
  await checkHubShown(still, 'JavaScript off');
  await checkNothingLeaks(still, 'JavaScript off');
  const firstTime = await still.locator('#hubs time').first().textContent();
  check(firstTime.endsWith(' UTC'), `with JavaScript off a time reads "${firstTime}", not UTC`);
  const zoned = await still.locator('#hubs .next .hub-zone').first().textContent();
  check(zoned.includes(expected.zone), `the next transition is not shown in the hub's zone: "${zoned}"`);
  await still.screenshot({ path: screenshots.noScript, fullPage: true });
  console.log(`ok screenshot ${screenshots.noScript}`);
  await noScript.close();
  await desktop.close();
  console.log('ok done');
} catch (error) {
  console.error(`FAIL: ${error instanceof Failure ? error.message : error.stack}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
process.exit(process.exitCode ?? 0);
