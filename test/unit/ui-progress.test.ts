import assert from "node:assert/strict";
import { test } from "node:test";
import { applyProgress, expectedStages, finishRows, initialRows, overall } from "../../src-renderer/lib/progress.ts";

test("expected stages depend on the job and on whether it evaluates", () => {
  assert.deepEqual(expectedStages("quantize", true), ["statistics", "quantize", "export", "evaluate"]);
  assert.deepEqual(expectedStages("quantize", false), ["statistics", "quantize", "export"]);
  assert.deepEqual(expectedStages("evaluate-fp32", true), ["fp32"]);
  assert.deepEqual(expectedStages("ablation", true), ["statistics", "ablation"]);
});

test("progress fills its stage, finishes the stages before it, and adds stages the engine reports beyond the plan", () => {
  let rows = initialRows(expectedStages("quantize", true));
  rows = applyProgress(rows, { stage: "statistics", done: 128, total: 512, etaSeconds: 3 });
  assert.deepEqual(
    rows.map((r) => r.state),
    ["active", "pending", "pending", "pending"],
  );
  assert.equal(rows[0].done, 128);
  assert.equal(overall(rows), 0.25 / 4);
  rows = applyProgress(rows, { stage: "export", done: 0, total: 1, etaSeconds: null, message: "writing" });
  assert.deepEqual(
    rows.map((r) => r.state),
    ["done", "done", "active", "pending"],
  );
  assert.equal(rows[2].message, "writing");
  rows = applyProgress(rows, { stage: "decode", done: 5, total: 10, etaSeconds: null });
  assert.deepEqual(
    rows.map((r) => [r.stage, r.state]),
    [
      ["statistics", "done"],
      ["quantize", "done"],
      ["export", "done"],
      ["decode", "active"],
      ["evaluate", "pending"],
    ],
  );
  const done = finishRows(rows);
  assert.ok(done.every((r) => r.state === "done"));
  assert.equal(overall(done), 1);
  assert.equal(overall([]), 0);
});

test("an unplanned first stage goes before the planned ones instead of finishing them", () => {
  const rows = applyProgress(initialRows(expectedStages("quantize", false)), { stage: "decode", done: 1, total: 4, etaSeconds: null });
  assert.deepEqual(
    rows.map((r) => [r.stage, r.state]),
    [
      ["decode", "active"],
      ["statistics", "pending"],
      ["quantize", "pending"],
      ["export", "pending"],
    ],
  );
});

test("a stage reported complete is marked done", () => {
  const rows = applyProgress(initialRows(["fp32"]), { stage: "fp32", done: 1000, total: 1000, etaSeconds: 0 });
  assert.equal(rows[0].state, "done");
});
