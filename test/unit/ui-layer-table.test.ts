import assert from "node:assert/strict";
import { test } from "node:test";
import type { LayerReport } from "../../shared/types.ts";
import { belowEightBits, DEFAULT_QUERY, precisionLabel, queryRows, toggleSort, toRows, WEAKEST_NOTE, weakestLayer } from "../../src-renderer/lib/layer-table.ts";

function layer(name: string, over: Partial<LayerReport> = {}): LayerReport {
  return {
    name,
    op: "Conv",
    role: "hidden",
    precision: "low",
    weightBits: 4,
    weightBitsPerChannel: [4],
    activationBits: 4,
    activationBitsPerChannel: [4],
    halfRange: true,
    activationGranularity: "per-channel",
    rangeKept: 0.5,
    fractionClipped: 0.01,
    biasShift: 0.1,
    sqnrDb: 20,
    executable: "simulation",
    executableWhy: "mixed per-channel bits",
    noEffect: [],
    ...over,
  };
}

const layers = [
  layer("conv1", { role: "first", precision: "8bit", weightBits: 8, sqnrDb: 35, executable: "integer" }),
  layer("layer1.0.conv1", { sqnrDb: 18.5, fractionClipped: 0.02 }),
  layer("layer1.0.conv2", { sqnrDb: 12.25, noEffect: ["biascorr"], fractionClipped: null }),
  layer("layer2.0.conv1", { sqnrDb: null, precision: "float", activationBits: null }),
  layer("fc", { op: "Gemm", role: "last", precision: "8bit", sqnrDb: 30, executable: "integer" }),
];

test("weakest layer is the low-bit layer with the lowest SQNR, ignoring 8-bit, float and unmeasured ones", () => {
  assert.equal(weakestLayer(layers), "layer1.0.conv2");
  assert.equal(weakestLayer([layer("a", { precision: "8bit", sqnrDb: 1 })]), null);
});

test("rows keep graph order and carry plain-language notes", () => {
  const rows = toRows(layers);
  assert.deepEqual(
    rows.map((r) => r.order),
    [1, 2, 3, 4, 5],
  );
  const weak = rows[2];
  assert.ok(weak.notes.includes(WEAKEST_NOTE));
  assert.ok(weak.notes.some((n) => n === "Bias correction changed nothing here"));
  // How a layer runs is its own column, not a note: with per-channel activations every layer would carry it.
  assert.deepEqual(rows[1].notes, []);
  assert.deepEqual(rows[0].notes, []);
});

test("sorting by SQNR ascending puts the worst first and unmeasured layers last", () => {
  const q = toggleSort(DEFAULT_QUERY, "sqnrDb");
  assert.equal(q.dir, "asc");
  const names = queryRows(toRows(layers), q).map((r) => r.name);
  assert.deepEqual(names, ["layer1.0.conv2", "layer1.0.conv1", "fc", "conv1", "layer2.0.conv1"]);
  const desc = queryRows(toRows(layers), toggleSort(q, "sqnrDb")).map((r) => r.name);
  assert.deepEqual(desc, ["conv1", "fc", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1"]);
});

test("error-like columns start worst-first; names sort case-insensitively with ties in graph order", () => {
  assert.equal(toggleSort(DEFAULT_QUERY, "fractionClipped").dir, "desc");
  const byClip = queryRows(toRows(layers), toggleSort(DEFAULT_QUERY, "fractionClipped")).map((r) => r.name);
  assert.equal(byClip[0], "layer1.0.conv1");
  assert.equal(byClip[byClip.length - 1], "layer1.0.conv2");
  const byName = queryRows(toRows([layer("B"), layer("a"), layer("c")]), toggleSort(DEFAULT_QUERY, "name")).map((r) => r.name);
  assert.deepEqual(byName, ["a", "B", "c"]);
  const byOp = queryRows(toRows(layers), toggleSort(DEFAULT_QUERY, "op")).map((r) => r.name);
  assert.deepEqual(byOp, ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "fc"]);
});

test("precision sorts low, 8-bit, float", () => {
  const names = queryRows(toRows(layers), toggleSort(DEFAULT_QUERY, "precision")).map((r) => r.precision);
  assert.deepEqual(names, ["low", "low", "8bit", "8bit", "float"]);
});

test("filters combine: text on name or operator, precision, notes only", () => {
  const rows = toRows(layers);
  assert.deepEqual(
    queryRows(rows, { ...DEFAULT_QUERY, text: "  LAYER1 " }).map((r) => r.name),
    ["layer1.0.conv1", "layer1.0.conv2"],
  );
  assert.deepEqual(
    queryRows(rows, { ...DEFAULT_QUERY, text: "gemm" }).map((r) => r.name),
    ["fc"],
  );
  assert.deepEqual(
    queryRows(rows, { ...DEFAULT_QUERY, precision: "8bit" }).map((r) => r.name),
    ["conv1", "fc"],
  );
  assert.deepEqual(
    queryRows(rows, { ...DEFAULT_QUERY, precision: "low", notedOnly: true, text: "conv2" }).map((r) => r.name),
    ["layer1.0.conv2"],
  );
  assert.deepEqual(queryRows(rows, { ...DEFAULT_QUERY, text: "nothing" }), []);
});

test("querying does not reorder the input", () => {
  const rows = toRows(layers);
  const before = rows.map((r) => r.name);
  queryRows(rows, toggleSort(DEFAULT_QUERY, "sqnrDb"));
  assert.deepEqual(
    rows.map((r) => r.name),
    before,
  );
});

test("a W8A8 run's layers are 8-bit, not low-bit, and holding them at 8 bits is not offered", () => {
  const w8a8 = layer("c", { weightBits: 8, activationBits: 8 });
  assert.equal(precisionLabel(w8a8), "8-bit");
  assert.equal(belowEightBits(w8a8), false);
  assert.equal(precisionLabel(layer("c")), "4-bit");
  assert.equal(belowEightBits(layer("c")), true);
  assert.equal(precisionLabel(layer("c", { weightBits: 3.94, activationBits: 8 })), "W4 A8");
  assert.equal(belowEightBits(layer("c", { weightBits: 8, activationBits: 4 })), true);
  assert.equal(precisionLabel(layer("c", { precision: "8bit", weightBits: 8, activationBits: 8 })), "8-bit, held");
  assert.equal(precisionLabel(layer("c", { precision: "float", activationBits: null })), "Float");
});
