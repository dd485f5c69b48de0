import assert from "node:assert/strict";
import { test } from "node:test";
import type { LayerReport } from "../../shared/types.ts";
import { ablationBars, ablationTable, histogramChart, shortLayerName, sortAblation, sqnrChart } from "../../src-renderer/lib/charts.ts";

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
