import assert from "node:assert/strict";
import { test } from "node:test";
import type { JobRequest } from "../../shared/engine-api.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { Progress } from "../../shared/types.ts";
import { applyProgress, finishRows, initialRows, overall, planStages, timeLeft, type StageRow } from "../../src-renderer/lib/progress.ts";

const quantize = (evalDir: string | null): JobRequest => ({
  kind: "quantize",
  model: "/m.onnx",
  calibDir: "/c",
  evalDir,
  preprocess: { preset: "imagenet" },
  config: defaultQuantConfig({ wBits: 8, aBits: 8 }),
});
const ctx = { calibImages: 100, evalImages: 150, layers: 28, bits: "W8A8" };

test("stages are named for the run: its bits, its images, the per-layer pass as a stage of its own", () => {
  const labels = planStages(quantize("/e"), ctx).map((p) => `${p.stage}: ${p.label}`);
  assert.deepEqual(labels, [
    "statistics: Collecting statistics on 100 images",
    "quantize: Quantizing 28 layers to W8A8",
    "export: Writing the W8A8 model",
    "evaluate: Measuring FP32 and W8A8 on 150 images",
    "layer-error: Comparing every layer with FP32 on 150 images",
  ]);
  assert.ok(!labels.some((l) => /4-bit/.test(l)));
  assert.deepEqual(
    planStages(quantize(null), ctx).map((p) => p.stage),
    ["statistics", "quantize", "export"],
  );
  const big = planStages(quantize("/e"), { ...ctx, evalImages: 1000 });
  assert.equal(big.at(-1)?.units, 256);
  assert.deepEqual(
    planStages({ kind: "ablation", model: "/m", calibDir: "/c", evalDir: "/e", preprocess: { preset: "imagenet" }, config: defaultQuantConfig() }, { ...ctx, passes: 16 }).map((p) => [p.stage, p.units]),
    [
      ["statistics", 100],
      ["ablation", 2400],
    ],
  );
  const equalizing = defaultQuantConfig({ methods: ["weight-clip", "equalize"] });
  assert.deepEqual(
    planStages({ kind: "ablation", model: "/m", calibDir: "/c", evalDir: "/e", preprocess: { preset: "imagenet" }, config: equalizing }, { ...ctx, passes: 4 }).map((p) => [p.stage, p.units]),
    [
      ["statistics", 100],
      ["equalize", 100],
      ["ablation", 600],
    ],
  );
  assert.match(planStages({ kind: "recommend-preprocess", model: "/m", evalDir: "/e", preprocess: { preset: "imagenet" } }, { ...ctx, passes: 10, sample: 200 })[0].label, /Trying 10 preprocessing settings on 200 labelled images/);
});

test("the best recipe's stages and the mixed-precision search are planned, so the bar does not stall when they start", () => {
  const config = { methods: ["equalize", "weight-clip", "reconstruct", "bias-fold"] as const, maxDrop: 2 };
  const rows = planStages(quantize("/e"), { ...ctx, config: { methods: [...config.methods], maxDrop: 2 } });
  assert.deepEqual(
    rows.map((p) => p.stage),
    ["equalize", "statistics", "quantize", "reconstruct", "export", "sensitivity", "evaluate", "layer-error"],
  );
  assert.equal(rows.find((p) => p.stage === "reconstruct")!.label, "Choosing the rounding of 28 layers on 100 images");
  assert.match(rows.find((p) => p.stage === "sensitivity")!.label, /^Finding the smallest model within 2 points: up to 8 candidates on 150 images$/);
  // weighed as the work it is: the search evaluates every candidate, the reconstruction passes images per layer
  const weights = Object.fromEntries(initialRows(rows).map((r) => [r.stage, r.weight]));
  assert.ok(weights.sensitivity > 5 * weights.evaluate && weights.reconstruct > weights.statistics, JSON.stringify(weights));
});

/** The event stream of a real W8A8 run with evaluation (as the engine sends it), one event per second. */
function events(): Progress[] {
  const p = (stage: Progress["stage"], done: number, total: number, etaSeconds: number | null = null): Progress => ({ stage, done, total, etaSeconds });
  return [
    p("statistics", 0, 100),
    p("statistics", 50, 100, 4),
    p("statistics", 100, 100, 0),
    p("quantize", 0, 28),
    p("quantize", 28, 28, 0),
    p("export", 0, 1),
    p("export", 1, 1, 0),
    p("evaluate", 0, 150),
    p("evaluate", 75, 150, 5),
    p("evaluate", 149, 150, 1),
    p("evaluate", 150, 150, 0),
    // the per-layer pass starts from 0 again: once this read as the evaluation going back from 99% to 0
    p("layer-error", 0, 150),
    p("layer-error", 50, 150, 16),
    p("layer-error", 150, 150, 0),
  ];
}

test("overall progress never goes back, even when a later pass starts from zero", () => {
  let rows = initialRows(planStages(quantize("/e"), ctx));
  let last = 0;
  events().forEach((e, i) => {
    rows = applyProgress(rows, e, 1000 * i);
    const now = overall(rows);
    assert.ok(now >= last - 1e-12, `${e.stage} ${e.done}/${e.total}: ${now} after ${last}`);
    last = now;
  });
  assert.equal(overall(finishRows(rows, 20_000)), 1);
  // every image-stage row ends full, none counted backwards
  assert.ok(rows.every((r) => r.state === "done" && r.done === r.total));
});

test("the time left counts the passes still to come, not only the one under way", () => {
  let rows = initialRows(planStages(quantize("/e"), ctx));
  const evs = events();
  let at = 0;
  const upTo = (i: number) => {
    for (; at <= i; at++) rows = applyProgress(rows, evs[at], 1000 * at);
  };
  upTo(1);
  const afterStats = timeLeft(rows, 1000);
  assert.ok(afterStats !== null && afterStats > 4, `halfway through statistics: ${afterStats}`);
  upTo(9);
  // 1 s left in the evaluation, but the per-layer pass (about 1.7 times the images' cost) is still to come
  const atEnd = timeLeft(rows, 9000) as number;
  assert.ok(atEnd > 1 + 3, `at 149/150 of the evaluation: ${atEnd} s left`);
  upTo(13);
  assert.equal(timeLeft(finishRows(rows, 14_000), 14_000), 0);
});

test("no pace yet, no number: the time left is unknown before the first progress", () => {
  const rows = initialRows(planStages(quantize("/e"), ctx));
  assert.equal(timeLeft(rows, 0), null);
});

test("a stage the plan did not list goes before the first stage not yet started", () => {
  let rows: StageRow[] = initialRows(planStages(quantize(null), ctx));
  rows = applyProgress(rows, { stage: "statistics", done: 10, total: 100, etaSeconds: null }, 0);
  rows = applyProgress(rows, { stage: "decode", done: 1, total: 4, etaSeconds: null }, 1);
  assert.deepEqual(
    rows.map((r) => [r.stage, r.state]),
    [
      ["statistics", "done"],
      ["decode", "active"],
      ["quantize", "pending"],
      ["export", "pending"],
    ],
  );
});

test("a stage reported complete is marked done", () => {
  const rows = applyProgress(initialRows([{ stage: "fp32", label: "x", units: 1000 }]), { stage: "fp32", done: 1000, total: 1000, etaSeconds: 0 }, 0);
  assert.equal(rows[0].state, "done");
});
