// Drive the production entry (`entry.Default`, a WorkerEntrypoint) under Pyodide 0.28.2 in Node.
//
// usage: node tests/edge/pyodide_harness.mjs CONFIG.json
//   CONFIG: {"bundle": DIR, "sdk_wheel": FILE, "env": {NAME: "value"},
//            "kv": {KEY: {"text": "..."} | {"file": PATH}}}
// Then one JSON command per line on stdin; one JSON reply per line on stdout, prefixed "@@ "
// (anything else on stdout or stderr is log):
//   {"op": "fetch", "url", "method"?, "headers"?, "body"?, "stream"?: {chunk, count}, "cf"?}
//       -> {"status", "headers": [[name, value]], "set_cookie": [...], "body_b64", "ms",
//           "wait_until": promises handed to ctx.waitUntil}
//   {"op": "settle"}            -> await every waitUntil promise: {"count", "rejected": [...]}
//   {"op": "isolate", "kv": {}, "queue"?: bool, "env"?: {}} -> a fresh isolate's state over new KV contents (and variables),
//                                with a Queues producer bound as EVENTS when "queue" is true
//   {"op": "queued"}            -> {"messages": [...]} sent to that producer so far
//   {"op": "consume", "messages": [body, ...]} -> the entry's Queues consumer on them:
//                                {"acked": [index...], "retried": [index...]}
//   {"op": "exit"}
// One Pyodide load serves every command.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { KvNamespace, dispatch, makeCtx, since, startHost } from "../../bench/pyodide_host.mjs";

/** A Queues producer binding stand-in: records what the worker sends. */
class WorkerQueue {
  constructor() {
    this.messages = [];
  }
  async send(message) {
    this.messages.push(message);
  }
}

const reply = (obj) => process.stdout.write("@@ " + JSON.stringify(obj) + "\n");
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));

async function fillKv(spec) {
  const kv = new KvNamespace();
  for (const [key, value] of Object.entries(spec || {})) {
    await kv.put(key, "file" in value ? readFileSync(value.file) : value.text);
  }
  return kv;
}

const { py, workersModule, timings } = await startHost({
  bundleDir: config.bundle,
  sdkWheel: config.sdk_wheel,
});
let t = performance.now();
const workers = py.pyimport("workers");
timings.import_workers_sdk_ms = since(t);
t = performance.now();
const entry = py.pyimport("entry");
timings.import_entry_ms = since(t);

let env = { SNAPSHOTS: await fillKv(config.kv), ...config.env };
workersModule.env = env;
const ctx = makeCtx(); // one ctx for the run: `settle` awaits everything handed to waitUntil

// a request body streamed in chunks, like a chunked upload without Content-Length;
// `count` null: endless. `pulled` counts the bytes the worker made the stream produce.
function streamedBody(spec, counter) {
  const chunk = new Uint8Array(spec.chunk).fill(0x7b);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (spec.count !== null && sent >= spec.count) return controller.close();
      sent += 1;
      counter.pulled += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

async function fetchOp(cmd) {
  const counter = { pulled: 0 };
  const payload = cmd.stream ? streamedBody(cmd.stream, counter) : (cmd.body ?? undefined);
  const request = new Request(cmd.url, {
    method: cmd.method || "GET",
    headers: cmd.headers || {},
    body: payload,
    ...(cmd.stream ? { duplex: "half" } : {}),
  });
  const before = ctx.pending.length;
  const start = performance.now();
  const response = await dispatch({ entrypoint: entry.Default, workers, env, ctx, request, cf: cmd.cf });
  const body = Buffer.from(await response.arrayBuffer());
  const ms = since(start);
  return {
    status: response.status,
    headers: [...response.headers].filter(([name]) => name !== "set-cookie"),
    set_cookie: response.headers.getSetCookie(),
    body_b64: body.toString("base64"),
    ms,
    wait_until: ctx.pending.length - before,
    pulled: counter.pulled,
  };
}

/** The entry's Queues consumer on a batch of these message bodies: which were acked, retried. */
async function consumeOp(cmd) {
  const acked = [], retried = [];
  const messages = cmd.messages.map((body, i) => ({
    id: String(i), body, attempts: 1,
    ack: () => acked.push(i),
    retry: () => retried.push(i),
  }));
  const instance = entry.Default(ctx, env);
  try {
    await instance.queue({ queue: "edgepick-events", messages });
  } finally {
    instance.destroy();
  }
  return { acked, retried };
}

async function run(cmd) {
  switch (cmd.op) {
    case "fetch":
      return fetchOp(cmd);
    case "settle":
      return ctx.settle();
    case "queued":
      return { messages: env.EVENTS ? env.EVENTS.messages : [] };
    case "consume":
      return consumeOp(cmd);
    case "isolate":
      env = { ...config.env, ...(cmd.env || {}), SNAPSHOTS: await fillKv(cmd.kv) };
      if (cmd.queue) env.EVENTS = new WorkerQueue();
      else delete env.EVENTS;
      workersModule.env = env;
      py.runPython("import edge.interop\nedge.interop._isolate = None");
      return { isolate: "fresh" };
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

reply({ ready: true, python: py.runPython("import sys; sys.version.split()[0]"), pyodide: py.version, timings });
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  if (cmd.op === "exit") break;
  try {
    reply(await run(cmd));
  } catch (error) {
    reply({ error: String(error && error.stack ? error.stack : error) });
  }
}
await ctx.settle();
process.exit(0);
