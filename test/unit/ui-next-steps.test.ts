import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { LabelInfo } from "../../shared/engine-api.ts";
import type { LayerInfo, LayerReport, ModelSummary, QuantConfig, QuantReport } from "../../shared/types.ts";
import { calibrationWarning } from "../../src-renderer/lib/calibration.ts";
import { advisePreprocessing, checkLabels } from "../../src-renderer/lib/data-stats.ts";
import { configKey, DEFAULT_GOAL, nextSteps, verdictOf, type RunView } from "../../src-renderer/lib/next-steps.ts";
import { overridesName, runNames } from "../../src-renderer/lib/run-names.ts";

function layer(name: string, sqnrDb: number, over: Partial<LayerReport> = {}): LayerReport {
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
    rangeKept: 1,
    fractionClipped: 0,
    biasShift: 0,
    sqnrDb,
    executable: "simulation",
    executableWhy: "",
    noEffect: [],
    ...over,
  };
}

const acc = (top1: number | null, images = 150) => ({ images, labelled: top1 === null ? 0 : images, top1, top5: top1, top1Interval: top1 === null ? null : ([top1 - 5, top1 + 5] as [number, number]), top5Interval: null });

function report(config: QuantConfig, fp32: number | null, quant: number | null, layers: LayerReport[], agreement = 50): QuantReport {
  return {
    tool: { name: "nibble", version: "0" },
    createdAt: "",
    model: { path: "/m.onnx", sha256: "" },
    calibration: { dir: "/c", images: 100, skipped: [], sha256: "" },
    evaluation: { dir: "/e", images: 150, skipped: [], sha256: "" },
    preprocess: { preset: "inception" },
    config,
    output: null,
    fp32: acc(fp32),
    quantized: acc(quant),
    agreement: { agreement, flipped: 75, lost: null, gained: null },
    size: { fp32Bytes: 100, quantBytes: 20, theoreticalBytes: 15, ratio: 5 },
    layers,
    timings: {},
    warnings: [],
  };
}

const dw = (name: string): LayerInfo => ({ name, op: "Conv", kind: "depthwise", weightShape: [8, 1, 3, 3], outChannels: 8, params: 80, halfRange: false, activation: "relu6", activationClamp: [0, 6], activationRange: [0, 6], role: "hidden" });
const model = { layers: [dw("dw1"), dw("dw2"), { ...dw("pw"), kind: "conv" }] } as unknown as ModelSummary;

test("a run that loses more than the user accepts is called useless, in words; within the goal it is not", () => {
  const w4a4 = report(defaultQuantConfig(), 79.3, 0.7, []);
  const v = verdictOf(w4a4, DEFAULT_GOAL);
  assert.equal(v.kind, "useless");
  assert.match(v.text, /loses 78\.6 points of top-1 accuracy \(79\.3% → 0\.7%\), more than the 2\.0 points you accept/);
  assert.equal(verdictOf(report(defaultQuantConfig(), 79.3, 78.0, []), DEFAULT_GOAL).kind, "ok");
  assert.equal(verdictOf(report(defaultQuantConfig(), 79.3, 78.0, []), { ...DEFAULT_GOAL, maxDrop: 1 }).kind, "useless");
  // without labels: agreement against the goal
  const unlabelled = report(defaultQuantConfig(), null, null, [], 93);
  assert.equal(verdictOf(unlabelled, DEFAULT_GOAL).kind, "useless");
  assert.equal(verdictOf(unlabelled, { ...DEFAULT_GOAL, minAgreement: 90 }).kind, "ok");
  // no evaluation images: not measured, never "0 images"
  const none = { ...w4a4, evaluation: null, fp32: null, quantized: null, agreement: null };
  const u = verdictOf(none, DEFAULT_GOAL);
  assert.equal(u.kind, "unmeasured");
  assert.doesNotMatch(u.text, /0 images/);
});

test("next steps: the most sensitive layers, the depthwise layers, more bits, each one click of settings", () => {
  const config = defaultQuantConfig();
  const r = report(config, 79.3, 0.7, [layer("dw1", 2), layer("pw", 9), layer("dw2", 5), layer("fc", 1, { precision: "8bit", weightBits: 8, activationBits: 8 })]);
  const run: RunView = { jobId: "a", name: "W4A4", report: r };
  const steps = nextSteps({ run, runs: [run], ablations: [], model, goal: DEFAULT_GOAL });
  const byId = Object.fromEntries(steps.map((s) => [s.id, s]));
  // sensitivity is this run's per-layer error: the 8-bit classifier is not a candidate
  assert.deepEqual(Object.keys(byId["sensitive:3"].config!.keep).sort(), ["dw1", "dw2", "pw"]);
  assert.deepEqual(Object.keys(byId["depthwise"].config!.keep).sort(), ["dw1", "dw2"]);
  assert.deepEqual(
    steps.map((s) => s.id),
    ["methods:best", "sensitive:3", "depthwise", "bits:a8", "bits:w8", "bits:w8a8"],
  );
  // the paper's four are the run's methods: Best accuracy is the recipe for its bits
  assert.deepEqual(byId["methods:best"].config!.methods, ["bitalloc-a", "weight-clip", "reconstruct", "bias-fold"]);
  assert.equal(byId["methods:best"].config!.baseline, "mse");
  const best = nextSteps({ run: { ...run, report: { ...r, config: byId["methods:best"].config! } }, runs: [], ablations: [], model, goal: DEFAULT_GOAL });
  assert.ok(!best.some((s) => s.id === "methods:best" || s.id === "methods:all"), "a run on the best recipe is not offered it, nor the paper's four");
  // a step that would change nothing is not proposed: keeping the same layers twice is one step
  const kept = nextSteps({ run: { ...run, report: { ...r, config: { ...config, keep: { dw1: "8", dw2: "8" } } } }, runs: [], ablations: [], model, goal: DEFAULT_GOAL });
  assert.ok(!kept.some((s) => s.id === "depthwise"));
  assert.equal(byId["bits:a8"].config!.aBits, 8);
  assert.ok(steps.every((s) => s.measured === null));
});

test("a step already run shows its measured result, and a run that meets the goal is proposed first", () => {
  const config = defaultQuantConfig();
  const layers = [layer("dw1", 2), layer("pw", 9), layer("dw2", 5)];
  const a: RunView = { jobId: "a", name: "W4A4", report: report(config, 79.3, 0.7, layers) };
  const a8: RunView = { jobId: "b", name: "W4A8", report: report({ ...config, aBits: 8 }, 79.3, 1.2, layers) };
  const w8: RunView = { jobId: "c", name: "W8A8", report: report({ ...config, wBits: 8, aBits: 8 }, 79.3, 78.5, []) };
  const steps = nextSteps({ run: a, runs: [a, a8, w8], ablations: [], model, goal: DEFAULT_GOAL });
  assert.equal(steps[0].id, "run:c");
  assert.equal(steps[0].jobId, "c");
  const more = steps.find((s) => s.id === "bits:a8")!;
  assert.equal(more.measured?.jobId, "b");
  assert.equal(more.measured?.verdict.kind, "useless");
  assert.equal(steps.find((s) => s.id === "bits:w8a8"), undefined, "the W8A8 run is the first step already");
});

test("the best ablation combination at the same bits is a step when this run used another", () => {
  const config = defaultQuantConfig({ methods: [] });
  const a: RunView = { jobId: "a", name: "W4A4", report: report(config, 90, 50, []) };
  const ablations = [{ config, rows: [{ methods: [], top1: 50, agreement: 50 }, { methods: ["aciq", "biascorr"], top1: 85, agreement: 88 }] }];
  const steps = nextSteps({ run: a, runs: [a], ablations, model: null, goal: DEFAULT_GOAL });
  const s = steps.find((x) => x.id.startsWith("ablation:"))!;
  assert.match(s.title, /Clipping \+ Bias correction/);
  assert.deepEqual(s.config!.methods, ["aciq", "biascorr"]);
  assert.ok(steps.some((x) => x.id === "methods:all"));
});

test("runs are told apart by what differs: bits, methods, overrides; repeats are numbered", () => {
  const base = defaultQuantConfig();
  const names = runNames(
    [
      { config: base },
      { config: { ...base, keep: { dw1: "8", dw2: "8" } } },
      { config: { ...base, wBits: 8, aBits: 8 } },
      { config: base },
    ],
    model.layers,
  );
  assert.deepEqual(names, ["W4A4 · All four methods", "W4A4 · All four methods · depthwise at 8 bits", "W8A8 · All four methods", "W4A4 · All four methods (run 2)"]);
  assert.equal(overridesName({ a: "8", b: "8", c: "float" }), "2 layers at 8 bits + c in float");
  assert.equal(configKey({ ...base, keep: { b: "8", a: "8" } }), configKey({ ...base, keep: { a: "8", b: "8" } }));
});

test("labels: read as written and checked against the model's outputs; warned about only when wrong", () => {
  const numeric: LabelInfo = { source: "labels-file", names: null, examples: [{ text: "x.JPEG 472", read: "x.JPEG: class 472" }], labelled: 1300, distinct: 700, maxIndex: 999, ...{} };
  const ok = checkLabels(numeric, 1300, 0, 1000);
  assert.equal(ok.length, 1);
  assert.equal(ok[0].kind, "ok");
  assert.match(ok[0].text, /Labels read from labels\.txt \(class numbers\): 1,300 of 1,300 images labelled, 700 different class numbers, up to 999; the model has 1,000 outputs/);
  assert.equal(checkLabels({ ...numeric, maxIndex: 1000 }, 1300, 0, 1000).at(-1)?.kind, "bad");
  assert.equal(checkLabels({ ...numeric, labelled: 1000 }, 1300, 0, 1000).at(-1)?.kind, "info");
  const none = checkLabels({ source: "none", names: null, examples: [], labelled: 0, distinct: 0, maxIndex: null }, 10, 0, 1000);
  assert.equal(none[0].kind, "warn");
  assert.match(none[0].text, /No labels found/);
  const folders = checkLabels({ source: "class-folders", names: "class-folders", examples: [], labelled: 600, distinct: 10, maxIndex: 9 }, 600, 10, 10);
  assert.deepEqual(
    folders.map((c) => c.kind),
    ["ok"],
  );
  assert.equal(checkLabels({ source: "class-folders", names: "class-folders", examples: [], labelled: 600, distinct: 10, maxIndex: 9 }, 600, 10, 1000)[1]?.kind, "bad");
});

test("the preprocessing recommendation is the best trial; a tie within one image keeps the current setting", () => {
  const t = (preset: "imagenet" | "inception" | "caffe", top1: number, resize?: number) => ({ preprocess: { preset, ...(resize ? { resize, crop: 224 } : {}) }, accuracy: acc(top1, 200) });
  const trials = [t("imagenet", 50.5), t("inception", 79), t("inception", 78.5, 256), t("caffe", 0.5)];
  const wrong = advisePreprocessing(trials, { preset: "imagenet" }, 200)!;
  assert.equal(wrong.better, true);
  assert.equal(wrong.best.preprocess.preset, "inception");
  assert.deepEqual(
    wrong.rows.map((r) => r.top1),
    [79, 78.5, 50.5, 0.5],
  );
  const close = advisePreprocessing(trials, { preset: "inception", resize: 256, crop: 224 }, 200)!;
  assert.equal(close.better, false, "79 against 78.5 on 200 images is one image: no reason to switch");
  assert.equal(close.best, close.current);
});

test("too few calibration images for the chosen methods are warned about, with the numbers they need", () => {
  const all = defaultQuantConfig();
  const w = calibrationWarning(1, all);
  assert.ok(w);
  assert.match(w, /Only 1 calibration image: too few/);
  assert.match(w, /Clipping needs at least 64/);
  assert.equal(calibrationWarning(256, all), null);
  // weight-only methods need no images; min/max ranges still need a few dozen
  assert.match(calibrationWarning(10, defaultQuantConfig({ methods: ["bitalloc-w", "biascorr"] }))!, /Min\/max ranges needs at least 32/);
  assert.equal(calibrationWarning(40, defaultQuantConfig({ methods: ["bitalloc-w", "biascorr"] })), null);
});
