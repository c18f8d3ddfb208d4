// GrowthBook's JavaScript SDK (the version pinned in package.json) as an oracle for
// tests/core/test_differential.py: one JSON array of cases per input line, one JSON array of
// answers per output line. A case is {"c": condition, "a": attributes, "g": savedGroups}
// (evalCondition) or {"h": [seed, value, version]} (the SDK's hash).
"use strict";
const path = require("path");
const readline = require("readline");
const sdk = path.join(__dirname, "..", "..", "node_modules", "@growthbook", "growthbook");
const { evalCondition } = require(sdk);
const { hash } = require(path.join(sdk, "dist", "cjs", "util.js"));

console.error = () => {}; // the SDK logs unknown operators; the answer is what matters

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const answers = JSON.parse(line).map((item) => {
    try {
      if (item.h) return hash(item.h[0], item.h[1], item.h[2]);
      return evalCondition(item.a, item.c, item.g || {});
    } catch (err) {
      return { error: String(err) };
    }
  });
  process.stdout.write(JSON.stringify(answers) + "\n");
});
