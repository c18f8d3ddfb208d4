// The edge benchmark's Pyodide side: node bench/edge_pyodide.mjs CONFIG.json -> one JSON document.
//   CONFIG: {"bundle": DIR, "sdk_wheel": FILE|null, "work": DIR (edge_work.py, pages/,
//            fixture.snap, synthetic.snap), "fixture_id": ID, "requests": N, "warmup": N}
// Run by bench/edge_pyodide.py, which builds every input and adds CPython's figures.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { addToPath, since, startHost } from "./pyodide_host.mjs";

const BENCH_DIR = "/session/bench";
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));

const { py, timings } = await startHost({ bundleDir: config.bundle, sdkWheel: config.sdk_wheel });
py.FS.mkdirTree(`${BENCH_DIR}/pages`);
py.FS.writeFile(`${BENCH_DIR}/edge_work.py`, readFileSync(path.join(config.work, "edge_work.py")));
for (const name of ["fixture.snap", "synthetic.snap"]) {
  py.FS.writeFile(`${BENCH_DIR}/${name}`, readFileSync(path.join(config.work, name)));
}
for (const name of readdirSync(path.join(config.work, "pages"))) {
  py.FS.writeFile(`${BENCH_DIR}/pages/${name}`, readFileSync(path.join(config.work, "pages", name)));
}
addToPath(py, BENCH_DIR);

// Cold start, in import order: each step's own time (a module already imported costs nothing).
const IMPORTS = [
  ["msgpack", "import msgpack"],
  ["core", "import core.engine, core.decide, core.cookie, core.events, core.preview"],
  ["edge_handler", "import edge.handler"],
  ["edge_interop", "import edge.interop"],
  ...(config.sdk_wheel ? [["workers_sdk", "import workers"], ["entry", "import entry"]] : []),
];
py.globals.set("_steps", py.toPy(IMPORTS));
const imports = JSON.parse(
  py.runPython(`
import json, time
_out = {}
for _name, _code in _steps:
    _t = time.perf_counter()
    exec(_code, {})
    _out[_name + "_ms"] = round((time.perf_counter() - _t) * 1000, 2)
_out["total_ms"] = round(sum(_out.values()), 2)
json.dumps(_out)
`),
);

let t = performance.now();
const measured = JSON.parse(
  py.runPython(`
import json, sys
from pathlib import Path
import msgpack
import edge_work
bench = Path("${BENCH_DIR}")
fixture = (bench / "fixture.snap").read_bytes()
synthetic = (bench / "synthetic.snap").read_bytes()
result = {
    "python": sys.version.split()[0],
    "msgpack": msgpack.Packer.__module__,
    "fixture_decode": edge_work.decode_timing(fixture, ${config.decode_repeat ?? 20}),
    "synthetic_decode": edge_work.decode_timing(synthetic, ${config.synthetic_repeat ?? 5}),
    "handler": edge_work.handler_timing(
        fixture, ${JSON.stringify(config.fixture_id)}, edge_work.load_pages(bench / "pages"),
        requests=${config.requests ?? 2000}, warmup=${config.warmup ?? 200},
    ),
}
json.dumps(result)
`),
);
timings.measure_ms = since(t);

const round = (x) => Math.round(x * 10) / 10;
process.stdout.write(
  JSON.stringify({
    runtime: `Pyodide ${py.version} (Python ${measured.python}) in Node ${process.versions.node}`,
    host: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v)])),
    imports,
    ...measured,
  }) + "\n",
);
process.exit(0);
