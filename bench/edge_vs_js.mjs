// edgepick's worker against the JavaScript worker a Workers user would write with GrowthBook's
// SDK, in one Node process, interleaved: node bench/edge_vs_js.mjs CONFIG.json -> one JSON line.
// Run by bench/edge_vs_js.py, which builds every input (see its docstring for what is timed).
//
// mode "warm": (A) per evaluation, decide() in Pyodide vs GrowthBook JS (a reused instance and
//   a new one), same visitors, agreement checked; (B) per request, the whole Python worker
//   (entry, the SDK, edge.interop, the handler, HTMLRewriter, body, waitUntil) vs the JS worker
//   (bench/js_worker.mjs) vs a Python pass-through, process CPU per request.
// mode "cold": a fresh isolate's first requests (one per process; the driver runs several).
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { GrowthBook } from "@growthbook/growthbook";
import { makeJsWorker } from "./js_worker.mjs";
import { KvNamespace, addToPath, dispatch, makeCtx, startHost } from "./pyodide_host.mjs";

const WORK_DIR = "/session/bench";
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const cpuMs = (start) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

// the origin and the collector, in memory: both workers' fetches land here
const pages = config.pages;
let collected = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input.url;
  if (url.startsWith(config.env.COLLECTOR_URL)) {
    collected += 1;
    return new Response('{"stored":1}', { status: 200, headers: { "content-type": "application/json" } });
  }
  if (url.startsWith(config.env.ORIGIN_URL)) {
    const pathname = new URL(url).pathname;
    const html = pages[pathname] ?? pages["/"];
    return new Response(html, { status: 200, headers: { "content-type": "text/html; charset=utf-8" } });
  }
  return realFetch(input, init);
};

const cpu0 = process.cpuUsage();
const { py, workersModule, timings } = await startHost({ bundleDir: config.bundle, sdkWheel: config.sdk_wheel });
timings.load_pyodide_cpu_ms = cpuMs(cpu0);
py.FS.mkdirTree(WORK_DIR);
for (const name of ["edge_vs_js_work.py", "passthrough_entry.py"]) {
  py.FS.writeFile(`${WORK_DIR}/${name}`, readFileSync(path.join(config.work, name)));
}
addToPath(py, WORK_DIR);

const kv = new KvNamespace();
await kv.put("snap/current", config.fixture_id);
await kv.put(`snap/${config.fixture_id}`, readFileSync(config.fixture_snap));
const env = { SNAPSHOTS: kv, ...config.env };
workersModule.env = env;
const ctx = makeCtx();

function request(spec, cookie) {
  const headers = { "user-agent": spec.ua, accept: "text/html", "accept-language": "en-US,en;q=0.9", "cf-connecting-ip": spec.ip };
  if (spec.referer) headers.referer = spec.referer;
  if (cookie) headers.cookie = `ep=${cookie}; _ga=GA1.2.3.4`;
  const req = new Request(`https://shop.bench${spec.path}`, { headers });
  return req;
}

const setCookie = (response) => {
  const value = response.headers.getSetCookie().find((c) => c.startsWith("ep="));
  return value ? value.split(";")[0].slice(3) : "";
};

/** One request through `handler`, timed: CPU and wall from the call to the body's last byte and
 * every waitUntil promise settled. Returns {cpu_ms, wall_ms, cookie, status, bytes}. */
async function timed(handler, spec, cookie) {
  const req = request(spec, cookie);
  const start = process.cpuUsage();
  const t = performance.now();
  const response = await handler(req, spec);
  const body = await response.arrayBuffer();
  const settled = await ctx.settle();
  const wall = performance.now() - t;
  const cpu = cpuMs(start);
  if (settled.rejected.length) throw new Error(`waitUntil rejected: ${settled.rejected}`);
  return { cpu_ms: cpu, wall_ms: wall, cookie: setCookie(response), status: response.status, bytes: body.byteLength };
}

function quantiles(values) {
  const s = [...values].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  const r = (x) => Math.round(x * 1000) / 1000;
  return { p50_ms: r(at(0.5)), p90_ms: r(at(0.9)), p99_ms: r(at(0.99)), max_ms: r(s[s.length - 1]), mean_ms: r(s.reduce((a, b) => a + b, 0) / s.length), n: s.length };
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** The JS worker over the fixture store's GrowthBook features. */
function jsPeer() {
  return makeJsWorker({
    features: config.site_features,
    slots: config.slots,
    cookieSecret: "bench-cookie-secret",
    eventsSecret: config.env.EVENTS_SECRET,
    originUrl: config.env.ORIGIN_URL,
    collectorUrl: config.env.COLLECTOR_URL,
  });
}

async function makeHandlers() {
  const entry = py.pyimport("entry");
  const passthrough = py.pyimport("passthrough_entry");
  const workers = py.pyimport("workers");
  const jsWorker = await jsPeer();
  const viaSdk = (entrypoint) => (req, spec) =>
    dispatch({ entrypoint, workers, env, ctx, request: req, cf: { country: spec.country } });
  return {
    edgepick: viaSdk(entry.Default),
    python_passthrough: viaSdk(passthrough.Default),
    growthbook_js_worker: (req, spec) => {
      Object.defineProperty(req, "cf", { value: { country: spec.country } });
      return jsWorker.fetch(req, env, ctx);
    },
  };
}

async function wholeWorker() {
  const handlers = await makeHandlers();
  // `alone`: one worker in this process (its own V8 heap and Pyodide), no other's garbage
  const names = config.alone ? [config.alone] : Object.keys(handlers);
  const jars = Object.fromEntries(names.map((n) => [n, []]));
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const statuses = Object.fromEntries(names.map((n) => [n, {}]));
  const traffic = config.traffic;
  const run = async (name, spec, record) => {
    const jar = jars[name];
    const cookie = spec.returning && jar.length ? jar[spec.slot % jar.length] : "";
    const out = await timed(handlers[name], spec, cookie);
    if (out.cookie) {
      if (cookie) jar[spec.slot % jar.length] = out.cookie;
      else if (jar.length < 300) jar.push(out.cookie);
    }
    if (record) {
      samples[name].push(out.cpu_ms);
      statuses[name][out.status] = (statuses[name][out.status] || 0) + 1;
    }
  };
  for (let i = 0; i < config.warmup; i += 1) for (const name of names) await run(name, traffic[i % traffic.length], false);
  const perRound = {};
  for (const n of names) perRound[n] = [];
  for (let i = 0; i < config.requests; i += 1) {
    const spec = traffic[i % traffic.length];
    const order = names.map((_, k) => names[(i + k) % names.length]); // rotate who goes first
    for (const name of order) await run(name, spec, true);
  }
  if (config.alone) return { cpu_per_request: quantiles(samples[config.alone]), statuses };
  const round = config.round_size;
  const ratios = { vs_js_worker: [], vs_python_passthrough: [] };
  for (let r = 0; r + round <= config.requests; r += round) {
    const sum = (n) => samples[n].slice(r, r + round).reduce((a, b) => a + b, 0);
    ratios.vs_js_worker.push(sum("edgepick") / sum("growthbook_js_worker"));
    ratios.vs_python_passthrough.push(sum("edgepick") / sum("python_passthrough"));
  }
  const q = Object.fromEntries(names.map((n) => [n, quantiles(samples[n])]));
  const rr = (x) => Math.round(x * 100) / 100;
  return {
    cpu_per_request: q,
    statuses,
    events_delivered: collected,
    ratio_edgepick_over_js_worker: {
      median_of_rounds: rr(median(ratios.vs_js_worker)),
      p50: rr(q.edgepick.p50_ms / q.growthbook_js_worker.p50_ms),
      p99: rr(q.edgepick.p99_ms / q.growthbook_js_worker.p99_ms),
    },
    ratio_edgepick_over_python_passthrough: {
      median_of_rounds: rr(median(ratios.vs_python_passthrough)),
      p50: rr(q.edgepick.p50_ms / q.python_passthrough.p50_ms),
    },
  };
}

function perEvaluation() {
  const visitors = config.visitors;
  const n = visitors.length;
  const work = py.pyimport("edge_vs_js_work");
  work.prepare(new Uint8Array(readFileSync(config.eval_snap)), JSON.stringify(visitors), "cta");
  const features = config.eval_features;
  const reused = new GrowthBook({ attributes: visitors[0], features });
  const answersOf = (start, count) => {
    const proxy = work.run(start, count);
    const out = proxy.toJs();
    proxy.destroy();
    return out;
  };
  const sides = {
    edgepick_pyodide: (start, count) => work.timed(start, count), // the variants stay in Python
    growthbook_js_reused: (start, count) => {
      const out = [];
      for (let j = start; j < start + count; j += 1) {
        reused.setAttributes(visitors[j % n]); // applied at once (the promise is for plugins)
        out.push(reused.getFeatureValue("cta", null));
      }
      return out;
    },
    growthbook_js_new: (start, count) => {
      const out = [];
      for (let j = start; j < start + count; j += 1) {
        const gb = new GrowthBook({ attributes: visitors[j % n], features });
        out.push(gb.getFeatureValue("cta", null));
      }
      return out;
    },
  };
  // agreement: every visitor, each side
  const answers = Object.fromEntries(Object.entries(sides).map(([k, f]) => [k, f(0, n)]));
  answers.edgepick_pyodide = answersOf(0, n);
  let disagree = 0;
  for (let i = 0; i < n; i += 1) {
    if (answers.edgepick_pyodide[i] !== answers.growthbook_js_reused[i] || answers.growthbook_js_new[i] !== answers.growthbook_js_reused[i]) disagree += 1;
  }
  const names = Object.keys(sides);
  const times = Object.fromEntries(names.map((k) => [k, []]));
  const per = config.per_round;
  for (let r = 0; r < config.rounds; r += 1) {
    const start = (r * per) % n;
    for (let k = 0; k < names.length; k += 1) {
      const name = names[(r + k) % names.length];
      const t = performance.now();
      sides[name](start, per);
      times[name].push(((performance.now() - t) * 1000) / per);
    }
  }
  const ratio = (a, b) => Math.round(median(times[a].map((x, i) => x / times[b][i])) * 100) / 100;
  const r2 = (x) => Math.round(x * 100) / 100;
  return {
    visitors: n,
    disagreements: disagree,
    median_us: Object.fromEntries(names.map((k) => [k, r2(median(times[k]))])),
    edgepick_over_growthbook_reused: ratio("edgepick_pyodide", "growthbook_js_reused"),
    edgepick_over_growthbook_new: ratio("edgepick_pyodide", "growthbook_js_new"),
    // where decide()'s time goes (bench/edge_vs_js_work.parts), measured right after
    edgepick_parts_us: JSON.parse(work.parts()),
  };
}

/** What workerd has native and warm in every isolate, used once here so that neither worker's
 * first request pays this harness's first use of it: HTMLRewriter (html-rewriter-wasm: V8
 * compiles its wasm lazily), Request/Response/Headers, the in-memory origin and KV. */
async function warmPlatform() {
  const page = await fetch(`${config.env.ORIGIN_URL}/`);
  const rewriter = new HTMLRewriter();
  rewriter.on("[data-edgepick-slot]", { element: (e) => e.setInnerContent("<b>x</b>", { html: true }) });
  rewriter.on("body", { element: (e) => e.append("<i></i>", { html: true }) });
  rewriter.onDocument({ end: () => {} });
  await rewriter.transform(page).arrayBuffer();
  const headers = Object.fromEntries(request(config.traffic[0], "").headers);
  await new Response("x", { headers }).text();
  await kv.get("snap/current", { type: "text" });
}

/** A full V8 collection before a first request (node --expose-gc): this process holds several
 * Pyodides and their loading's garbage, which a workerd isolate restored from its snapshot does
 * not; without it, a major collection of that garbage lands in whichever request comes next. */
const settleHeap = () => globalThis.gc?.();

async function coldStart() {
  // a fresh isolate: the imports, then its first request (KV read, snapshot decode + prepare,
  // first-run paths), then a second one
  let start = process.cpuUsage();
  const entry = py.pyimport("entry");
  const workers = py.pyimport("workers");
  const importMs = cpuMs(start);
  const handler = (req, spec) =>
    dispatch({ entrypoint: entry.Default, workers, env, ctx, request: req, cf: { country: spec.country } });
  const spec = config.traffic[0];
  start = process.cpuUsage();
  await warmPlatform();
  const platformMs = cpuMs(start);
  if (config.sort) {
    py.globals.set("_SORT", config.sort);
    py.runPython("import cProfile\n_profile = cProfile.Profile()\n_profile.enable()");
  }
  settleHeap();
  const first = await timed(handler, spec, "");
  if (config.sort) {
    process.stderr.write(py.runPython(`
_profile.disable()
import io, pstats
_out = io.StringIO()
pstats.Stats(_profile, stream=_out).sort_stats(_SORT).print_stats(30)
_out.getvalue()`));
  }
  const second = await timed(handler, config.traffic[1], "");
  // what decode + prepare of this snapshot costs on its own, in the same (now warm) isolate
  py.runPython("from core.engine import Engine");
  const blob = readFileSync(config.fixture_snap);
  py.globals.set("_blob", new Uint8Array(blob));
  start = process.cpuUsage();
  py.runPython("Engine.from_bytes(bytes(_blob.to_py()))");
  const prepareMs = cpuMs(start);
  // the JS worker's first request in this process (GrowthBook's module is already loaded)
  const js = await jsPeer();
  settleHeap();
  const jsFirst = await timed((req) => js.fetch(req, env, ctx), spec, "");
  // a new isolate in a warm process, as workerd starts one: a second Pyodide in this process
  // (V8 shares the compiled WebAssembly between them), the entry imported, then its requests
  start = process.cpuUsage();
  const other = await startHost({ bundleDir: config.bundle, sdkWheel: config.sdk_wheel });
  const otherLoadMs = cpuMs(start);
  const otherModule = other.workersModule;
  otherModule.env = env;
  start = process.cpuUsage();
  const otherEntry = other.py.pyimport("entry");
  const otherWorkers = other.py.pyimport("workers");
  const otherImportMs = cpuMs(start);
  const otherHandler = (req, s) =>
    dispatch({ entrypoint: otherEntry.Default, workers: otherWorkers, env, ctx, request: req, cf: { country: s.country } });
  settleHeap();
  const otherFirst = await timed(otherHandler, spec, "");
  const otherSecond = await timed(otherHandler, config.traffic[1], "");
  // the floor: a Python pass-through's first request, in a new isolate of its own
  const floor = await startHost({ bundleDir: config.bundle, sdkWheel: config.sdk_wheel });
  floor.py.FS.mkdirTree(WORK_DIR);
  floor.py.FS.writeFile(`${WORK_DIR}/passthrough_entry.py`, readFileSync(path.join(config.work, "passthrough_entry.py")));
  addToPath(floor.py, WORK_DIR);
  floor.workersModule.env = env;
  const floorEntry = floor.py.pyimport("passthrough_entry");
  const floorWorkers = floor.py.pyimport("workers");
  const floorHandler = (req, s) =>
    dispatch({ entrypoint: floorEntry.Default, workers: floorWorkers, env, ctx, request: req, cf: { country: s.country } });
  settleHeap();
  const floorFirst = await timed(floorHandler, spec, "");
  const floorSecond = await timed(floorHandler, config.traffic[1], "");
  const r = (x) => Math.round(x * 100) / 100;
  return {
    // a new isolate in a warm process, and the Python floor (a pass-through) there
    new_isolate_load_pyodide_cpu_ms: r(otherLoadMs),
    new_isolate_import_entry_cpu_ms: r(otherImportMs),
    new_isolate_first_request_cpu_ms: r(otherFirst.cpu_ms),
    new_isolate_second_request_cpu_ms: r(otherSecond.cpu_ms),
    passthrough_new_isolate_first_request_cpu_ms: r(floorFirst.cpu_ms),
    passthrough_new_isolate_second_request_cpu_ms: r(floorSecond.cpu_ms),
    load_pyodide_cpu_ms: r(timings.load_pyodide_cpu_ms),
    import_entry_cpu_ms: r(importMs),
    harness_platform_first_use_cpu_ms: r(platformMs),
    first_request_cpu_ms: r(first.cpu_ms),
    second_request_cpu_ms: r(second.cpu_ms),
    snapshot_decode_prepare_warm_cpu_ms: r(prepareMs),
    js_worker_first_request_cpu_ms: r(jsFirst.cpu_ms),
  };
}

async function profile() {
  // where the Python worker's time goes: cProfile over warm requests (a developer's tool)
  const handlers = await makeHandlers();
  const traffic = config.traffic;
  for (let i = 0; i < 50; i += 1) await timed(handlers.edgepick, traffic[i % traffic.length], "");
  if (config.v8_profile) {
    // V8's sampling profiler over the same warm requests: where the CPU goes by layer (the
    // Python interpreter's WebAssembly, Pyodide's JS glue, the rewriter, GC, Node builtins)
    const { Session } = await import("node:inspector/promises");
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    for (let i = 0; i < config.requests; i += 1) await timed(handlers[config.v8_profile], traffic[i % traffic.length], "");
    const { profile: samples } = await session.post("Profiler.stop");
    writeFileSync(config.v8_profile_file, JSON.stringify(samples));
    return { v8_profile: config.v8_profile_file };
  }
  py.globals.set("_SORT", config.sort || "tottime");
  py.runPython("import cProfile\n_profile = cProfile.Profile()\n_profile.enable()");
  for (let i = 0; i < config.requests; i += 1) await timed(handlers.edgepick, traffic[i % traffic.length], "");
  const text = py.runPython(`
_profile.disable()
import io, pstats
_out = io.StringIO()
pstats.Stats(_profile, stream=_out).sort_stats(_SORT).print_stats(40)
_out.getvalue()`);
  return { profile: text };
}

const result =
  config.mode === "profile"
    ? await profile()
    : config.mode === "cold"
    ? { cold: await coldStart() }
    : config.alone
    ? { whole_worker: await wholeWorker() }
    : { per_evaluation: perEvaluation(), whole_worker: await wholeWorker() };
process.stdout.write(JSON.stringify({ pyodide: py.version, node: process.versions.node, ...result }) + "\n");
process.exit(0);
