// A real browser for the end-to-end tests: Playwright (npm playwright-core) driving Debian's
// chromium, headless, with a fresh profile (user-data-dir) for every run.
//
// stdin: {"base": "http://127.0.0.1:PORT", "steps": [...], "cookies": [...], "timeout": ms,
//         "userAgent": "..." (optional), "executable": "/usr/bin/chromium"}
// stdout: {"results": [...], "requests": [{url, method, type, headers}]} (one result per step,
//         every finished request with the headers the browser sent), or {"error", "step"}.
//
// Steps (one key names the action):
//   {"goto": "/path", "headers": {...}}      -> {"status", "url", "headers"}
//   {"click": "css selector"}                -> {}
//   {"eval": "js expression"}                -> {"value"} (awaited if a promise)
//   {"waitFor": "css selector"}              -> {}
//   {"waitFunction": "js expression"}        -> {}: until it is truthy
//   {"waitRequests": "/_edgepick/events", "count": n}  -> {"count"}: until n requests to such a
//                                               URL have finished since the run started
//                                               (beacons included)
// Any step may also wait, after its action, for effects it caused:
//   "thenRequest": "/_edgepick/events"  one more finished request to such a URL than before it
//   "thenCookieChange": "ep"            the cookie set to a value other than before it
//   {"wait": ms}                             -> {}
//   {"text": "css selector"}                 -> {"value"}: the element's innerText (rendered)
//   {"attr": "css selector", "name": "x"}    -> {"value"}
//   {"cookies": true}                        -> {"value": [...]} (HttpOnly ones too)
//   {"route": "/_edgepick/decide", "abort": true} or {"route": ..., "delay": ms}  -> {}: from
//                                               now on, requests whose path starts so fail
//                                               (network error) or reach the server late
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const input = JSON.parse(readFileSync(0, "utf8"));
const timeout = input.timeout ?? 15000;
const profile = mkdtempSync(join(tmpdir(), "edgepick-chromium-"));
const finished = [];
const pending = [];
let context;
let step = -1;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: input.executable ?? "/usr/bin/chromium",
    headless: true,
    userAgent: input.userAgent,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(timeout);
  if (input.cookies?.length) await context.addCookies(input.cookies);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("requestfinished", (request) => {
    const entry = {
      url: request.url(),
      method: request.method(),
      type: request.resourceType(),
    };
    finished.push(entry);
    pending.push(request.allHeaders().then((h) => { entry.headers = h; }, () => {}));
  });
  const results = [];
  const requestsTo = (url) => finished.filter((r) => r.url.includes(url)).length;
  const cookieValue = async (name) => (await context.cookies()).find((c) => c.name === name)?.value;
  async function until(check, what) {
    const deadline = Date.now() + timeout;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await page.waitForTimeout(50);
    }
  }
  for (step = 0; step < input.steps.length; step++) {
    const s = input.steps[step];
    const requestsBefore = s.thenRequest ? requestsTo(s.thenRequest) : 0;
    const cookieBefore = s.thenCookieChange ? await cookieValue(s.thenCookieChange) : undefined;
    if ("goto" in s) {
      await page.setExtraHTTPHeaders(s.headers ?? {});
      const response = await page.goto(input.base + s.goto, { waitUntil: "load" });
      await page.setExtraHTTPHeaders({});
      results.push({
        status: response ? response.status() : null,
        url: page.url(),
        headers: response ? await response.allHeaders() : {},
      });
    } else if ("click" in s) {
      await page.click(s.click);
      results.push({});
    } else if ("eval" in s) {
      results.push({ value: await page.evaluate(s.eval) });
    } else if ("waitFor" in s) {
      await page.waitForSelector(s.waitFor, { state: "attached" });
      results.push({});
    } else if ("waitFunction" in s) {
      await page.waitForFunction(s.waitFunction);
      results.push({});
    } else if ("waitRequests" in s) {
      const deadline = Date.now() + timeout;
      const count = () => finished.filter((r) => r.url.includes(s.waitRequests)).length;
      while (count() < (s.count ?? 1) && Date.now() < deadline) await page.waitForTimeout(50);
      if (count() < (s.count ?? 1)) throw new Error(`only ${count()} requests to ${s.waitRequests}`);
      results.push({ count: count() });
    } else if ("wait" in s) {
      await page.waitForTimeout(s.wait);
      results.push({});
    } else if ("text" in s) {
      results.push({ value: await page.innerText(s.text) });
    } else if ("attr" in s) {
      results.push({ value: await page.getAttribute(s.attr, s.name) });
    } else if ("cookies" in s) {
      results.push({ value: await context.cookies() });
    } else if ("route" in s) {
      await page.route((url) => url.pathname.startsWith(s.route), async (route) => {
        if (s.abort) return route.abort().catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, s.delay ?? 0));
        return route.continue().catch(() => {}); // the page may have given up meanwhile
      });
      results.push({});
    } else {
      throw new Error(`unknown step ${JSON.stringify(s)}`);
    }
    if (s.thenRequest) {
      await until(() => requestsTo(s.thenRequest) > requestsBefore, `a request to ${s.thenRequest}`);
    }
    if (s.thenCookieChange) {
      const name = s.thenCookieChange;
      await until(async () => (await cookieValue(name)) !== cookieBefore, `cookie ${name} to change`);
    }
  }
  await Promise.all(pending);
  process.stdout.write(JSON.stringify({ results, requests: finished }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error), step, requests: finished }));
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
