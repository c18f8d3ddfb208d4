// Run Python code inside Pyodide 0.28.2 (Node, real wasm) with the worker bundle and extra
// package folders on sys.path; print the JSON string the code evaluates to.
//   node bench/pyodide_run.mjs CONFIG.json   CONFIG: {"bundle": DIR, "packages": {NAME: DIR}, "code": PY}
import { readFileSync } from "node:fs";
import { startHost, writeTree, addToPath } from "./pyodide_host.mjs";

const EXTRA = "/session/extra";
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { py } = await startHost({ bundleDir: config.bundle });
for (const [name, dir] of Object.entries(config.packages ?? {})) writeTree(py, dir, `${EXTRA}/${name}`);
addToPath(py, EXTRA);
process.stdout.write(py.runPython(config.code) + "\n");
process.exit(0);
