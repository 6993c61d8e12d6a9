// Drives the local console in a real headless Chromium (playwright-core over the DevTools
// protocol, with the system's browser), for tests/local_console.rs. One browser session:
// log in with the link, see the resources, invoke a function and see its log appear live,
// send a message to a queue and see the depth change, upload an object, send a request through
// the route form and follow its trace across the queue to the worker, edit a table's item, see
// the schedules. A screenshot per step in
// $OUT. Prints one JSON line of what it saw; exits non-zero, saying which step failed, otherwise.
//
// Environment: LINK (the login link), CHROMIUM, PW_MODULES (node_modules with playwright-core),
// OUT (screenshot folder).
import { createRequire } from 'node:module';
import fs from 'node:fs';

const require = createRequire(process.env.PW_MODULES + '/');
const { chromium } = require('playwright-core');
const { LINK, CHROMIUM, OUT } = process.env;
fs.mkdirSync(OUT, { recursive: true });

const seen = {};
let step = 'start';
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
page.setDefaultTimeout(20000);
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
const shot = (name) => page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
const text = (sel) => page.locator(sel).first().innerText();

try {
  step = 'log in with the link';
  const resp = await page.goto(LINK);
  seen.login_status = resp.status();
  if (!page.url().endsWith('/console/')) throw new Error(`after login the page is ${page.url()}`);
  const cookies = await page.context().cookies();
  seen.cookie_http_only = cookies.some((c) => c.name === 'skyform_console' && c.httpOnly && c.sameSite === 'Strict');

  step = 'see the resources';
  await page.waitForSelector('[data-resource="submit"]');
  await page.waitForSelector('#graph [data-node="jobs"]');
  seen.resources = await page.locator('[data-resource]').evaluateAll((els) => els.map((e) => e.dataset.resource));
  await shot('01-stack');

  step = 'invoke a function and see its log appear live: the event stream connected';
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live');
  step = 'invoke a function and see its log appear live';
  await page.click('#nav-functions');
  await page.click('[data-function="sweep"]');
  // The detail of the function clicked, not the one shown before the click.
  await page.waitForSelector('[data-detail="sweep"] #invoke-event');
  await page.fill('#invoke-event', '{"from": "the console test"}');
  await page.click('#invoke');
  step = 'invoke a function and see its log appear live: the result';
  await page.waitForFunction(() => (document.getElementById('invoke-result') || {}).textContent?.includes('"failed"'));
  step = 'invoke a function and see its log appear live: the live log';
  await page.waitForFunction(() => (document.getElementById('live-log') || {}).textContent?.includes('failed job(s) in jobs-failed'));
  step = 'invoke a function and see its log appear live: the invocation row';
  seen.live_log = await text('#live-log');
  const row0 = page.locator('#invocations tr[data-request]', { hasText: 'invoke' }).first();
  await row0.waitFor();
  seen.invocation_row = await row0.innerText();
  await shot('02-function');

  step = 'send a message to a queue and see the depth change';
  await page.click('#nav-queues');
  const row = '[data-queue="jobs-failed"]';
  await page.waitForSelector(row);
  const before = Number(await text(`${row} .visible`));
  await page.fill(`${row} input`, 'hello from the console');
  await page.click(`${row} button.send`);
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.textContent) === n, [`${row} .visible`, before + 1]);
  seen.depth = [before, Number(await text(`${row} .visible`))];
  await shot('03-queue');

  step = 'upload an object';
  await page.click('#nav-buckets');
  await page.waitForSelector('#upload-file');
  step = 'upload an object: the object listed';
  await page.setInputFiles('#upload-file', { name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello, bucket\n') });
  await page.click('#upload');
  await page.waitForSelector('#objects [data-key="hello.txt"]');
  seen.object_row = await text('#objects [data-key="hello.txt"]');
  await shot('04-bucket');

  step = "send a request through the route form and follow its trace to the worker";
  await page.click('#nav-functions');
  const form = '#routes [data-api="api"]';
  await page.waitForSelector(form);
  await page.selectOption(`${form} select`, 'POST');
  await page.fill(`${form} input`, '/jobs');
  await page.fill(`${form} textarea`, '{"task": "trace-me", "input": "cat.png"}');
  await page.click(`${form} button`);
  await page.waitForFunction((sel) => document.querySelector(`${sel} pre`)?.textContent.startsWith('202'), form);
  const answer = await text(`${form} pre`);
  const id = JSON.parse(answer.split('\n').slice(1).join('\n')).id;
  seen.job_id = id;
  await page.click('#nav-traces');
  await page.locator('#traces tr[data-trace]', { hasText: 'http POST /jobs' }).first().click();
  await page.waitForFunction((id) => {
    const d = document.getElementById('trace-detail');
    return d && d.textContent.includes(`worker: job ${id} (trace-me) done`) && d.textContent.includes('λ notify');
  }, id, { timeout: 30000 });
  seen.trace_steps = await page.locator('#trace-detail .step strong').allInnerTexts();
  await shot('05-trace');

  step = 'edit an item of a table';
  await page.click('#nav-tables');
  await page.fill('#item-edit', '{"id": {"S": "n1"}, "text": {"S": "from the console"}}');
  await page.click('#put-item');
  const item = page.locator('#items tr', { hasText: 'from the console' }).first();
  await item.waitFor();
  seen.table_row = await item.innerText();
  await shot('06-table');

  step = 'see the schedules';
  await page.click('#nav-schedules');
  await page.waitForSelector('#schedules [data-schedule="cleanup"]');
  seen.schedule_row = await text('#schedules [data-schedule="cleanup"]');
  await shot('07-schedules');

  step = 'no page errors';
  if (errors.length) throw new Error(errors.join('\n'));
  console.log(JSON.stringify(seen));
  await browser.close();
} catch (e) {
  await shot('failed').catch(() => {});
  // What the page showed when the step failed: its address, error banner and view.
  const shown = await page.evaluate(() => ({
    url: location.href.replace(/^.*#/, '#'),
    error: document.getElementById('error')?.textContent,
    view: (document.getElementById('view')?.innerText || '').slice(0, 1500),
  })).catch((err) => ({ unavailable: String(err) }));
  console.error(`console test failed at step "${step}": ${e.message}\nseen so far: ${JSON.stringify(seen)}\npage errors: ${errors.join('\n')}\nthe page: ${JSON.stringify(shown)}`);
  await browser.close();
  process.exit(1);
}
