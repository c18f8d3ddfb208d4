// A Node host for the worker's Python under Pyodide 0.28.2 (real WebAssembly), offline.
//
// It stands in for what workerd gives a current-runtime Python Worker, and nothing more:
//   - the worker bundle (`python -m compile.bundle DIR`) written into Pyodide's FS at
//     /session/metadata and put first on sys.path (no bytecode written), as workerd serves it;
//   - the `workers` SDK (PyPI workers-runtime-sdk, a pure-Python wheel) unpacked into
//     site-packages, with the two JS modules it imports from workerd:
//     `_pyodide_entrypoint_helper` (a real patchWaitUntil) and `_cloudflare_compat_flags`;
//   - a global `HTMLRewriter` over html-rewriter-wasm (lol-html, the engine workerd uses);
//   - a Map-backed `KvNamespace` binding and a `ctx` whose waitUntil promises can be awaited.
// Used by tests/edge/pyodide_harness.mjs and bench/edge_pyodide.mjs.
import { loadPyodide } from "pyodide";
import { HTMLRewriter as LolHtmlRewriter } from "html-rewriter-wasm";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export const APP_DIR = "/session/metadata";
export const SDK_VERSION = "1.9.5";
const require = createRequire(import.meta.url);

/** Milliseconds since `start` (performance.now() based). */
export const since = (start) => performance.now() - start;

/** Load Pyodide from node_modules, offline. Python's stdout/stderr go to `log` (default stderr). */
export async function startPyodide({ log = (line) => process.stderr.write(line + "\n") } = {}) {
  const indexURL = path.dirname(require.resolve("pyodide/package.json")) + path.sep;
  return loadPyodide({ indexURL, stdout: (s) => log("[py] " + s), stderr: (s) => log("[py!] " + s) });
}

/** Copy every *.py under `hostDir` into Pyodide's FS at `fsDir` (what wrangler would upload). */
export function writeTree(py, hostDir, fsDir = APP_DIR) {
  let count = 0;
  const walk = (dir, rel) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const target = rel ? `${rel}/${name}` : name;
      if (statSync(full).isDirectory()) {
        if (name !== "__pycache__") walk(full, target);
      } else if (name.endsWith(".py")) {
        py.FS.mkdirTree(path.posix.dirname(`${fsDir}/${target}`));
        py.FS.writeFile(`${fsDir}/${target}`, readFileSync(full));
        count += 1;
      }
    }
  };
  walk(hostDir, "");
  return count;
}

/** Put `fsDir` first on sys.path; never write .pyc (workerd's tree is read-only). */
export function addToPath(py, fsDir = APP_DIR) {
  py.globals.set("_edgepick_dir", fsDir);
  py.runPython(
    "import sys\nsys.dont_write_bytecode = True\n" +
      "if _edgepick_dir not in sys.path: sys.path.insert(0, _edgepick_dir)\ndel _edgepick_dir",
  );
}

/** The SDK wheel's path under `wheelDir` (build/wheels by default), or null when absent. */
export function findSdkWheel(wheelDir) {
  try {
    const name = readdirSync(wheelDir).find(
      (f) => f.startsWith(`workers_runtime_sdk-${SDK_VERSION}-`) && f.endsWith(".whl"),
    );
    return name ? path.join(wheelDir, name) : null;
  } catch {
    return null;
  }
}

/**
 * ctx.waitUntil as workerd's Python support patches it. Python hands over a coroutine as a
 * *borrowed* PyProxy that dies when the call returns: take an owned copy synchronously, await
 * it, then destroy the copy. A JS Promise (what edge.interop passes) goes through unchanged.
 */
export function patchWaitUntil(ctx) {
  if (ctx.__edgepickPatched) return;
  const original = ctx.waitUntil.bind(ctx);
  ctx.waitUntil = (value) => {
    const owned = value && typeof value.copy === "function" ? value.copy() : value;
    original(
      (async () => {
        try {
          return await owned;
        } finally {
          if (owned && owned !== value && typeof owned.destroy === "function") owned.destroy();
        }
      })(),
    );
  };
  ctx.__edgepickPatched = true;
}

/** A request's ctx: every promise handed to waitUntil is kept, so callers can await them. */
export function makeCtx() {
  const pending = [];
  return {
    pending,
    waitUntil(promise) {
      pending.push(Promise.resolve(promise));
    },
    passThroughOnException() {},
    /** Await everything handed to waitUntil so far: {count, rejected: [reasons]}. */
    async settle() {
      const taken = pending.splice(0);
      const results = await Promise.allSettled(taken);
      const rejected = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
      return { count: taken.length, rejected };
    },
  };
}

/** Register the JS modules the SDK imports from workerd. `workersModule.env` is set later. */
export function registerRuntimeModules(py, compatFlags = {}) {
  const workersModule = { env: null, waitUntil: (p) => Promise.resolve(p) };
  py.registerJsModule("_pyodide_entrypoint_helper", {
    patchWaitUntil,
    cloudflareWorkersModule: workersModule,
    cloudflareSocketsModule: {},
    doAnImport: async (name) => {
      throw new Error(`doAnImport(${name}) is not available in the Pyodide host`);
    },
    patch_env_helper: () => {
      throw new Error("patch_env is not available in the Pyodide host");
    },
  });
  py.registerJsModule("_cloudflare_compat_flags", {
    python_workflows_implicit_dependencies: false,
    python_request_headers_preserve_commas: true,
    ...compatFlags,
  });
  return workersModule;
}

/**
 * workerd's HTMLRewriter API (`new HTMLRewriter().on(sel, handler).transform(response)`) over
 * html-rewriter-wasm. Handlers may be Python objects (PyProxy): their methods are looked up at
 * call time, as workerd does.
 */
export class HTMLRewriter {
  constructor() {
    this.elementRules = [];
    this.documentHandlers = [];
  }

  on(selector, handler) {
    this.elementRules.push([selector, handler]);
    return this;
  }

  onDocument(handler) {
    this.documentHandlers.push(handler);
    return this;
  }

  transform(response) {
    const { elementRules, documentHandlers } = this;
    const bind = (handler, names) => {
      const out = {};
      for (const name of names) {
        if (handler[name]) out[name] = (arg) => handler[name](arg);
      }
      return out;
    };
    const source = response.body;
    const body = new ReadableStream({
      async start(controller) {
        const rewriter = new LolHtmlRewriter((chunk) => controller.enqueue(chunk.slice()));
        try {
          for (const [selector, handler] of elementRules) {
            rewriter.on(selector, bind(handler, ["element", "comments", "text"]));
          }
          for (const handler of documentHandlers) {
            rewriter.onDocument(bind(handler, ["doctype", "comments", "text", "end"]));
          }
          if (source) {
            const reader = source.getReader();
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              await rewriter.write(value);
            }
          }
          await rewriter.end();
          controller.close();
        } catch (error) {
          controller.error(error);
        } finally {
          rewriter.free();
        }
      },
    });
    const out = new Response(body, response);
    out.headers.delete("content-length"); // the body changes length; workerd drops it too
    return out;
  }
}

export function installHTMLRewriter() {
  globalThis.HTMLRewriter = HTMLRewriter;
}

/** Workers KV, in memory. The class name matters: the SDK wraps bindings named KvNamespace. */
export class KvNamespace {
  constructor() {
    this.values = new Map();
    this.reads = 0;
  }

  async put(key, value) {
    const bytes =
      typeof value === "string"
        ? new TextEncoder().encode(value)
        : value instanceof ArrayBuffer
          ? new Uint8Array(value.slice(0))
          : new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
    this.values.set(key, bytes);
  }

  async get(key, options) {
    this.reads += 1;
    const type = typeof options === "string" ? options : (options && options.type) || "text";
    const bytes = this.values.get(key);
    if (bytes === undefined) return null;
    if (type === "arrayBuffer") return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const text = new TextDecoder().decode(bytes);
    return type === "json" ? JSON.parse(text) : text;
  }

  async delete(key) {
    this.values.delete(key);
  }
}

/**
 * Everything above, in order: Pyodide, runtime modules, HTMLRewriter, the bundle on sys.path,
 * and the SDK wheel if given. Returns {py, workersModule, timings (ms)}.
 */
export async function startHost({ bundleDir, sdkWheel = null, log } = {}) {
  const timings = {};
  let t = performance.now();
  const py = await startPyodide({ log });
  timings.load_pyodide_ms = since(t);
  const workersModule = registerRuntimeModules(py);
  installHTMLRewriter();
  t = performance.now();
  if (sdkWheel) py.unpackArchive(new Uint8Array(readFileSync(sdkWheel)), "wheel"); // not a Buffer
  const files = bundleDir ? writeTree(py, bundleDir) : 0;
  addToPath(py);
  timings.install_files_ms = since(t);
  return { py, workersModule, timings, files };
}

/** One request through a WorkerEntrypoint class, the way workerd calls it. Returns a Response. */
export async function dispatch({ entrypoint, workers, env, ctx, request, cf }) {
  if (cf) Object.defineProperty(request, "cf", { value: cf });
  const instance = entrypoint(ctx, env); // the SDK's wrapped __init__: patchWaitUntil, env wrapper
  const pyRequest = workers.Request(request);
  try {
    const pyResponse = await instance.fetch(pyRequest);
    try {
      return pyResponse.js_object;
    } finally {
      pyResponse.destroy();
    }
  } finally {
    pyRequest.destroy();
    instance.destroy();
  }
}
