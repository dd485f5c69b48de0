// How a run of a model without a labelled class output is judged and shown: outputs compared with FP32 in
// plain words (SQNR and cosine in tooltips), detections found again against the user's goal.
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { classOutputName } from "../../shared/outputs.ts";
import type { DetectionFidelity, OutputFidelity, QuantReport } from "../../shared/types.ts";
import { detectionRows, headline, outputRows, typicalError } from "../../src-renderer/lib/fidelity.ts";
import { DEFAULT_GOAL, verdictOf } from "../../src-renderer/lib/next-steps.ts";

function fidelity(output: string, sqnrDb: number | null, over: Partial<OutputFidelity> = {}): OutputFidelity {
  return { output, shape: ["N", 17, 64, 48], samples: 40, sqnrDb, identical: false, cosine: 0.99731, worstCosine: 0.9712, maxAbsError: 0.1234, referenceMaxAbs: 8.5, ...over };
}

function detection(kept: number, fp32: number): DetectionFidelity {
  const keptPercent = fp32 ? (100 * kept) / fp32 : null;
  return { scores: "scores", boxes: "boxes", boxFormat: "corners", scoreThreshold: 0.5, nmsIou: 0.5, matchIou: 0.5, classes: 2, backgroundClass: 0, samples: 40, fp32Detections: fp32, quantizedDetections: kept + 3, kept, keptPercent, extra: 3 };
}

function report(over: Partial<QuantReport>): QuantReport {
  const none = { images: 40, labelled: 0, top1: null, top5: null, top1Interval: null, top5Interval: null };
  return {
    tool: { name: "nibble", version: "0" },
    createdAt: "",
    model: { path: "/m.onnx", sha256: "" },
    calibration: { dir: "/c", images: 100, skipped: [], sha256: "" },
    evaluation: { dir: "/e", images: 40, skipped: [], sha256: "" },
    preprocess: { preset: "raw01", inputSize: [256, 192] },
    config: defaultQuantConfig(),
    output: null,
    fp32: none,
    quantized: none,
    agreement: null,
    size: { fp32Bytes: 100, quantBytes: 20, theoreticalBytes: 15, ratio: 5 },
    layers: [],
    timings: {},
    warnings: [],
    ...over,
  };
}

test("an SQNR reads as the typical error's share of the values' size: 20 dB is 10%, 40 dB 1%", () => {
  assert.ok(Math.abs(typicalError(20) - 10) < 1e-9);
  assert.ok(Math.abs(typicalError(40) - 1) < 1e-9);
  const [row] = outputRows([fidelity("heatmaps", 23.1)]);
  assert.equal(row.typical.text, "7.0% of the values' size (23.1 dB)");
  assert.match(row.typical.term, /^SQNR/);
  assert.equal(row.direction.text, "0.9973 on average, 0.9712 at worst");
  assert.match(row.direction.term, /Cosine similarity/);
  assert.equal(row.largest.text, "0.123, where FP32's values reach 8.5");
  assert.equal(row.shape, "N × 17 × 64 × 48");
  assert.equal(outputRows([fidelity("same", null, { identical: true })])[0].typical.text, "Identical to FP32");
});

test("a model without a class output is compared, not judged: the verdict names the furthest output and no goal", () => {
  const r = report({ outputs: [fidelity("heatmaps", 30), fidelity("offsets", 12.5)] });
  const v = verdictOf(r, DEFAULT_GOAL);
  assert.equal(v.kind, "compared");
  assert.match(v.text, /no class output[\s\S]*on 40 samples: its furthest output, offsets, differs from FP32's by about 23\.7% of the values' size/);
  assert.equal(headline(r), "differs 24%");
  assert.equal(verdictOf(report({ outputs: [fidelity("x", null, { identical: true })] }), DEFAULT_GOAL).text, "This model's outputs are identical to the FP32 model's on 40 samples.");
});

test("a detector is held to the share of FP32's detections it finds again, against the user's goal", () => {
  const outputs = [fidelity("scores", 25), fidelity("boxes", 31)];
  const good = report({ outputs, detection: detection(97, 100) });
  assert.equal(verdictOf(good, DEFAULT_GOAL).kind, "ok");
  assert.match(verdictOf(good, DEFAULT_GOAL).text, /finds 97\.0% of the objects the FP32 model detects \(97 of 100 on 40 images\); you ask for at least 95\.0%/);
  const bad = report({ outputs, detection: detection(61, 100) });
  const v = verdictOf(bad, DEFAULT_GOAL);
  assert.equal(v.kind, "useless");
  assert.ok(v.kind === "useless" && v.metric === "detection");
  assert.equal(headline(bad), "61.0% of detections");
  const rows = detectionRows(bad.detection!);
  assert.equal(rows.kept.text, "61.0% (61 of 100)");
  assert.match(rows.kept.term, /score of at least 0\.5/);
  // FP32 finds nothing at the threshold: nothing to hold against the goal, the outputs are compared instead
  assert.equal(verdictOf(report({ outputs, detection: detection(0, 0) }), DEFAULT_GOAL).kind, "compared");
});

test("a run whose evaluation measured nothing is not measured, whatever else the report holds", () => {
  const r = report({ outputs: [fidelity("y", 20)], evaluation: { dir: "/e", images: 0, skipped: [], sha256: "", measured: false } });
  assert.equal(verdictOf(r, DEFAULT_GOAL).kind, "unmeasured");
  assert.equal(verdictOf(report({}), DEFAULT_GOAL).kind, "unmeasured");
  assert.equal(headline(report({})), "not measured");
});

test("the class output is the first output when it is a float vector of classes", () => {
  assert.equal(classOutputName([{ name: "logits", elemType: "float32", shape: ["N", 1000] }]), "logits");
  assert.equal(classOutputName([{ name: "prob", elemType: "float32", shape: [1, 1000, 1, 1] }]), "prob");
  assert.equal(classOutputName([{ name: "heatmaps", elemType: "float32", shape: [1, 17, 64, 48] }]), null);
  assert.equal(classOutputName([{ name: "ids", elemType: "int64", shape: [1, 1000] }]), null);
  assert.equal(classOutputName([]), null);
});
