// The standard error `--max-drop` adds to each candidate's measured drop, against hand-computed values.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EvaluationResult, Predictions } from "../../src-main/engine/pipeline/evaluate.ts";
import { dropMargin } from "../../src-main/engine/pipeline/mixed-precision.ts";

function predictions(top1: number[], labels: number[]): Predictions {
  return { top1: Int32Array.from(top1), top5: new Uint8Array(top1.length), labels: Int32Array.from(labels) };
}

/** 100 labelled images: FP32 right on the first 80; the quantized model loses 10 of those and gains 4 others. */
function pair(): EvaluationResult {
  const labels = Array.from({ length: 100 }, () => 1);
  const fp32 = labels.map((_, i) => (i < 80 ? 1 : 0));
  const quantized = fp32.map((v, i) => (i < 10 ? 0 : i >= 80 && i < 84 ? 1 : v));
  return { predictions: { fp32: predictions(fp32, labels), quantized: predictions(quantized, labels) } } as EvaluationResult;
}

test("top-1: the standard error of the paired per-image difference", () => {
  // d = +1 on 10 images, −1 on 4: mean 0.06, mean square 0.14, variance 0.1364, s.e. sqrt(0.1364 / 100)
  assert.ok(Math.abs(dropMargin(pair(), "top1") - 100 * Math.sqrt(0.1364 / 100)) < 1e-9);
});

test("top-1: unlabelled images do not count", () => {
  const e = pair();
  const labels = Int32Array.from(e.predictions.fp32.labels, (l, i) => (i >= 90 ? -1 : l));
  e.predictions.fp32.labels = labels;
  // 90 labelled images: d = +1 on 10, −1 on 4
  const mean = 6 / 90;
  assert.ok(Math.abs(dropMargin(e, "top1") - 100 * Math.sqrt((14 / 90 - mean * mean) / 90)) < 1e-9);
});

test("agreement: the standard error of the share of images whose top-1 differs from FP32's", () => {
  // 14 of 100 differ: sqrt(0.14 · 0.86 / 100)
  assert.ok(Math.abs(dropMargin(pair(), "agreement") - 100 * Math.sqrt((0.14 * 0.86) / 100)) < 1e-9);
});

test("no margin for a detector, for a candidate identical to FP32, or without the quantized predictions", () => {
  assert.equal(dropMargin(pair(), "detection"), 0);
  const e = pair();
  e.predictions.quantized = e.predictions.fp32;
  assert.equal(dropMargin(e, "top1"), 0);
  assert.equal(dropMargin({ predictions: { fp32: pair().predictions.fp32, quantized: null } } as EvaluationResult, "top1"), 0);
});
