// GrowthBook's JavaScript SDK evaluating a payload's features for many visitors, for
// tests/compile/test_growthbook_import.py: stdin is one JSON object {"payload": ..., "visitors":
// [attributes, ...]}; stdout one JSON array: per visitor, {feature key: value}.
"use strict";
const path = require("path");
const { GrowthBook } = require(
  path.join(__dirname, "..", "..", "node_modules", "@growthbook", "growthbook"),
);

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { payload, visitors } = JSON.parse(input);
  const gb = new GrowthBook({ features: payload.features, savedGroups: payload.savedGroups });
  const keys = Object.keys(payload.features);
  const out = visitors.map((attributes) => {
    gb.setAttributes(attributes);
    const values = {};
    for (const key of keys) values[key] = gb.getFeatureValue(key, null);
    return values;
  });
  process.stdout.write(JSON.stringify(out));
  gb.destroy();
});
