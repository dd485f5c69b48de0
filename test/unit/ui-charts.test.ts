import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import type { LayerReport, MixedPrecisionReport } from "../../shared/types.ts";
import {
  ablationBars,
  ablationTable,
  candidateAccuracy,
  histogramChart,
  returnedCandidate,
  sensitivityChart,
  shortLayerName,
  sizeAccuracyCurve,
  sortAblation,
  sqnrChart,
} from "../../src-renderer/lib/charts.ts";

const L = (name: string, sqnrDb: number | null) => ({ name, sqnrDb }) as LayerReport;

test("SQNR chart: one label per layer in graph order, one series per run, gaps where a run lacks a layer", () => {
  const d = sqnrChart([
    { label: "W4A4 · All methods", layers: [L("conv1", 30), L("conv2", 15.5), L("fc", 25)] },
    { label: "W4A4 · Baseline", layers: [L("conv1", 28), L("conv3", 9), L("fc", null)] },
  ]);
  assert.deepEqual(d.labels, ["conv1", "conv2", "fc", "conv3"]);
  assert.deepEqual(d.datasets[0], { label: "W4A4 · All methods", data: [30, 15.5, 25, null] });
  assert.deepEqual(d.datasets[1], { label: "W4A4 · Baseline", data: [28, null, null, 9] });
  assert.deepEqual(sqnrChart([]), { labels: [], datasets: [] });
});

test("histogram: a step outline over the bins and the share of mass beyond the clip points", () => {
  const h = { edges: [0, 1, 2, 3, 4], counts: [10, 20, 30, 40], clipLo: 0, clipHi: 2.5, observedMin: 0, observedMax: 4 };
  const d = histogramChart(h, false);
  assert.equal(d.points.length, 8);
  assert.deepEqual(d.points.slice(0, 4), [
    { x: 0, y: 10 },
    { x: 1, y: 10 },
    { x: 1, y: 20 },
    { x: 2, y: 20 },
  ]);
  assert.equal(d.yMax, 40);
  // Half of bin [2,3) and all of [3,4) lie above 2.5: (15 + 40) / 100.
  assert.ok(Math.abs(d.clippedShare - 0.55) < 1e-12);
  assert.equal(d.clipHi, 2.5);
});

test("histogram on a log axis turns empty bins into gaps, and clips on both sides count", () => {
  const h = { edges: [-2, -1, 0, 1, 2], counts: [5, 0, 10, 5], clipLo: -1.5, clipHi: 1, observedMin: -2, observedMax: 2 };
  const d = histogramChart(h, true);
  assert.deepEqual(
    d.points.map((p) => p.y),
    [5, 5, null, null, 10, 10, 5, 5],
  );
  assert.ok(Math.abs(d.clippedShare - (2.5 + 5) / 20) < 1e-12);
  assert.equal(histogramChart({ ...h, counts: [0, 0, 0, 0] }, false).clippedShare, 0);
});

test("ablation bars follow the paper's order and fall back to agreement without labels", () => {
  const bars = ablationBars([
    { methods: ["aciq", "bitalloc-w", "bitalloc-a", "biascorr"], top1: 90.5, agreement: 95 },
    { methods: ["biascorr"], top1: 88.9, agreement: 93 },
    { methods: [], top1: 88.1, agreement: 92 },
    { methods: ["biascorr", "aciq"], top1: 89.7, agreement: 94 },
    { methods: ["aciq"], top1: 89.2, agreement: 93.5 },
  ]);
  assert.deepEqual(
    bars.map((b) => b.label),
    ["Baseline only", "Clipping", "Bias correction", "Clipping + Bias correction", "All four methods"],
  );
  assert.deepEqual(
    bars.map((b) => b.value),
    [88.1, 89.2, 88.9, 89.7, 90.5],
  );
  assert.ok(bars.every((b) => b.metric === "top1"));
  assert.deepEqual(ablationBars([{ methods: [], top1: null, agreement: 97.5 }]), [{ methods: [], label: "Baseline only", value: 97.5, metric: "agreement" }]);
});

test("the ablation table sorts by any column, missing values last, ties in chart order", () => {
  const rows = ablationTable([
    { methods: ["biascorr", "aciq"], top1: 89.7, top5: 99, agreement: 94, bytes: 300 },
    { methods: [], top1: 88.1, agreement: 92 },
    { methods: ["aciq"], top1: 89.7, top5: 98, agreement: 93.5, bytes: 200 },
  ]);
  assert.deepEqual(
    rows.map((r) => [r.order, r.label, r.top5, r.bytes]),
    [
      [1, "Baseline only", null, null],
      [2, "Clipping", 98, 200],
      [3, "Clipping + Bias correction", 99, 300],
    ],
  );
  assert.deepEqual(
    sortAblation(rows, "top1", "desc").map((r) => r.order),
    [2, 3, 1],
  );
  assert.deepEqual(
    sortAblation(rows, "bytes", "asc").map((r) => r.order),
    [2, 3, 1],
  );
  assert.deepEqual(
    sortAblation(rows, "bytes", "desc").map((r) => r.order),
    [3, 2, 1],
  );
  assert.deepEqual(
    sortAblation(rows, "label", "asc").map((r) => r.label),
    ["Baseline only", "Clipping", "Clipping + Bias correction"],
  );
});

test("half-range clips: negatives zeroed by the fused ReLU are not counted as clipped", () => {
  const h = { edges: [-2, -1, 0, 1, 2], counts: [30, 20, 40, 10], clipLo: 0, clipHi: 1.5, observedMin: -2, observedMax: 2 };
  const d = histogramChart(h, false);
  assert.ok(Math.abs(d.clippedShare - 5 / 100) < 1e-12);
  assert.equal(d.reluZeroes, true);
  assert.equal(histogramChart({ ...h, clipLo: -1.5 }, false).reluZeroes, false);
});

test("layer names are shortened for chart axes without losing what tells them apart", () => {
  assert.equal(shortLayerName("/layer1/layer1.0/conv1/Conv"), "layer1.0/conv1");
  assert.equal(shortLayerName("/conv1/Conv"), "conv1");
  assert.equal(shortLayerName("/linear/Gemm"), "linear");
  assert.equal(shortLayerName("features.0.weight_conv"), "features.0.weight_conv");
  assert.equal(shortLayerName("/Conv"), "Conv");
});

/** The mixed-precision part of a real `--max-drop` report on ResNet-20 (the command is in the file). */
function fixture(name: string): { size: { fp32Bytes: number }; mixedPrecision: MixedPrecisionReport } {
  return JSON.parse(readFileSync(new URL(`../fixtures/mixed-precision/${name}`, import.meta.url), "utf8"));
}

test("size-accuracy curve of a real --max-drop search: candidates by size, the chosen one marked and named", () => {
  const r = fixture("resnet20-w2a8-best-max-drop-1.json");
  const mp = r.mixedPrecision;
  const d = sizeAccuracyCurve(mp, r.size.fp32Bytes);
  // measured in bisection order (0, all 18, 9, 13, 11, 12), drawn smallest file first
  assert.deepEqual(
    d.points.map((p) => p.layers8),
    [0, 9, 11, 12, 13, 18],
  );
  assert.deepEqual(
    d.points.map((p) => p.y),
    [-3.5, -0.5, -0.5, -0.5, 0, 0],
  );
  // a candidate meets the target when its drop plus one standard error does: 9, 11 and 12 lose 0.5 ± 1.3 or more
  assert.deepEqual(
    d.points.map((p) => p.meets),
    d.points.map((p) => p.drop + p.margin <= 1),
  );
  assert.deepEqual(
    d.points.map((p) => p.meets),
    [false, false, false, false, true, true],
  );
  assert.ok(Math.abs(d.points[0].x - (100 * 170879) / 1087981) < 1e-9);
  assert.equal(d.points[d.returned].layers8, 13);
  assert.equal(d.points[d.returned].bytes, 284031);
  assert.equal(d.met, true);
  assert.equal(d.withinNoise, false);
  assert.equal(d.target, -1);
  assert.equal(d.yLabel, "Top-1 change (points)");
  assert.equal(d.words, "Chosen: 13 of 18 layers at 8 bits, 277 KB, 0.00 points (± 1.00).");
});

test("sensitivity chart of the same search: most sensitive first, the layers the chosen model holds at 8 bits apart", () => {
  const mp = fixture("resnet20-w2a8-best-max-drop-1.json").mixedPrecision;
  const d = sensitivityChart(mp);
  assert.equal(d.labels.length, 18);
  assert.equal(d.labels[0], mp.sensitivity[0].layer);
  assert.equal(d.kept, 13);
  // the search promotes the most sensitive first: the first 13 bars are the 8-bit ones
  assert.deepEqual(
    d.proxyEight.map((v) => v !== null),
    d.labels.map((_, i) => i < 13),
  );
  assert.deepEqual(
    d.proxyLow.map((v) => v !== null),
    d.labels.map((_, i) => i >= 13),
  );
  assert.equal(d.proxyEight[0], mp.sensitivity[0].proxy);
  const proxy = d.labels.map((_, i) => d.proxyEight[i] ?? d.proxyLow[i]!);
  assert.ok(proxy.every((v, i) => i === 0 || v <= proxy[i - 1]), "sorted by the proxy");
  assert.equal(d.measured, null, "this search measured no single-layer drop");
  const measured = sensitivityChart({ ...mp, sensitivity: mp.sensitivity.map((s, i) => ({ ...s, measuredDrop: i === 0 ? 2.5 : null })) });
  assert.deepEqual(measured.measured?.slice(0, 2), [2.5, null]);
});

test("when no candidate met the target, the closest is the one returned and the words say so", () => {
  const r = fixture("resnet20-w3a3-none-max-drop-0.json");
  const mp = r.mixedPrecision;
  assert.equal(mp.chosen, null);
  assert.equal(returnedCandidate(mp), 1);
  const d = sizeAccuracyCurve(mp, r.size.fp32Bytes);
  assert.equal(d.met, false);
  assert.equal(d.points[d.returned].layers8, 18);
  assert.equal(d.words, "None of the 2 candidates met the 0-point target. Closest, and returned: 18 of 18 layers at 8 bits, 298 KB, −0.50 points (± 0.50).");
  assert.equal(sensitivityChart(mp).kept, 18);
  assert.ok(sensitivityChart(mp).proxyLow.every((v) => v === null));
});

test("when only the drop, not the drop plus its standard error, met the target, the words say it may not hold elsewhere", () => {
  const r = fixture("resnet20-w2a8-best-max-drop-1.json");
  // the same search had the target been met by no candidate's margin: the engine returns the fewest-8-bit one whose drop alone meets it
  const mp = { ...r.mixedPrecision, candidates: r.mixedPrecision.candidates.map((c) => ({ ...c, meets: false })) };
  const d = sizeAccuracyCurve(mp, r.size.fp32Bytes);
  assert.equal(d.met, false);
  assert.equal(d.withinNoise, true);
  assert.match(d.words, /^None of the 6 candidates met the 1-point target with its standard error added\. Returned, meeting it on these images only: 13 of 18 layers at 8 bits, /);
});

test("without labels the curve reads agreement with FP32 (higher is better), and the target line sits at 100 − P", () => {
  const mp = fixture("resnet20-w2a8-best-max-drop-1.json").mixedPrecision;
  const d = sizeAccuracyCurve({ ...mp, metric: "agreement" }, 1087981);
  assert.equal(d.target, 99);
  assert.deepEqual(
    d.points.map((p) => p.y),
    [96.5, 99.5, 99.5, 99.5, 100, 100],
  );
  assert.equal(d.yLabel, "Same as FP32 (%)");
  assert.equal(d.words, "Chosen: 13 of 18 layers at 8 bits, 277 KB, 100.0% same prediction as FP32 (± 1.00).");
  assert.equal(candidateAccuracy("detection", 2), "98.0% of FP32's detections found");
  assert.equal(candidateAccuracy("top1", -1), "+1.00 points");
});
