// "Where will this model run?" in the app: a choice of target adapts the settings to what the target can run
// (and says what changed), and a run's target facts (onnxruntime's integer count, the self-check, the
// measured time) read in words.
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { bestRecipe } from "../../shared/recipes.ts";
import type { LayerReport, QuantConfig, QuantReport, SelfCheckReport, TargetReport } from "../../shared/types.ts";
import { defaultModelPath } from "../../src-renderer/lib/export-paths.ts";
import { DEFAULT_GOAL, nextSteps } from "../../src-renderer/lib/next-steps.ts";
import { defaultConfig, methodsPresetOf, methodsPresetWhy, withMethodsPreset } from "../../src-renderer/lib/presets.ts";
import { runNames, settingsName } from "../../src-renderer/lib/run-names.ts";
import { exportWarnings, integerSummary, latencyView, selfCheckView, targetConflicts, withTarget } from "../../src-renderer/lib/targets.ts";

function layer(name: string, op = "Conv"): LayerReport {
  return {
    name, op, role: "hidden", precision: "low", weightBits: 4, weightBitsPerChannel: [4], activationBits: 8, activationBitsPerChannel: [8], halfRange: true,
    activationGranularity: "per-tensor", rangeKept: 1, fractionClipped: 0, biasShift: 0, sqnrDb: 20, executable: "integer", executableWhy: "", noEffect: [],
  };
}

const acc = (top1: number) => ({ images: 600, labelled: 600, top1, top5: top1, top1Interval: [top1 - 2, top1 + 2] as [number, number], top5Interval: null });

function report(config: QuantConfig, layers: LayerReport[], target?: Partial<TargetReport>, top1 = 90): QuantReport {
  return {
    tool: { name: "nibble", version: "0" },
    createdAt: "",
    model: { path: "/m/resnet20.onnx", sha256: "" },
    calibration: { dir: "/c", images: 260, skipped: [], sha256: "" },
    evaluation: { dir: "/e", images: 600, skipped: [], sha256: "" },
    preprocess: { preset: "imagenet" },
    config,
    output: null,
    fp32: acc(91),
    quantized: acc(top1),
    agreement: { agreement: 97, flipped: 18, lost: null, gained: null },
    size: { fp32Bytes: 1000, quantBytes: 300, theoreticalBytes: 150, ratio: 3.3 },
    layers,
    timings: {},
    warnings: [],
    ...(target ? { target: { id: config.target, notes: [], runtime: null, selfCheck: null, latency: null, ...target } } : {}),
  };
}

const okCheck: SelfCheckReport = { images: 600, top1Agreement: 100, maxAbsDiff: 0.002, maxAbsOutput: 14, outputStep: null, beyondSteps: 0, accuracy: null, fp32Agreement: null, ok: true, findings: [], message: "The exported file gives the same predictions with onnxruntime's optimizations off and on, within rounding (100.0% of 600 samples keep their top-1 class)." };
const badCheck: SelfCheckReport = { images: 600, top1Agreement: 1.2, maxAbsDiff: 30, maxAbsOutput: 14, outputStep: null, beyondSteps: 600, accuracy: null, fp32Agreement: null, ok: false, findings: ["The outputs moved far beyond rounding."], message: "Warning: the exported file gives different predictions once onnxruntime optimizes it: 1.2% of 600 samples keep their top-1 class, largest output difference 30.0 (outputs up to 14.0). A runtime's fusion reads the file differently from its plain operators; do not ship it before finding out why." };

test("choosing onnxruntime: 8-bit activations, Best accuracy becomes the target's recipe, and each change is said", () => {
  const c = defaultConfig(); // W4A4, Best accuracy, exact
  assert.equal(methodsPresetOf(c), "best");
  assert.ok(c.methods.includes("reconstruct"));
  const { config, changes } = withTarget(c, "ort");
  assert.equal(config.target, "ort");
  assert.equal(config.aBits, 8);
  assert.equal(config.wBits, 4);
  assert.deepEqual([...config.methods].sort(), [...bestRecipe(4, 8, "ort").methods].sort());
  assert.equal(methodsPresetOf(config), "best", "still Best accuracy, for this target");
  assert.deepEqual(targetConflicts(config), [], "the adapted settings run");
  assert.equal(changes.length, 1);
  assert.match(changes[0], /Activations are now 8 bits \(were 4\)/);
  assert.match(methodsPresetWhy("best", "ort"), /weight clipping, rounding reconstruction .* bias folding into the file's 32-bit biases/);
  // the 4-bit NPU holds one container per layer: no weight bit allocation in its recipe
  const npu = withTarget(c, "int4-npu").config;
  assert.ok(!npu.methods.includes("bitalloc-w"));
  assert.doesNotMatch(methodsPresetWhy("best", "int4-npu"), /bit allocation/);
  // and back: the exact simulation's best recipe again, bits as they are now
  const back = withTarget(config, "exact").config;
  assert.equal(back.target, "exact");
  assert.deepEqual([...back.methods].sort(), [...bestRecipe(4, 8).methods].sort());
  assert.equal(back.baseline, bestRecipe(4, 8).baseline);
});

test("a custom choice is kept whole on an integer target: every method and the smallest-model search run there", () => {
  const c = defaultQuantConfig({ wBits: 4, aBits: 8, methods: ["aciq", "weight-clip", "reconstruct", "bias-fold"], maxDrop: 1 });
  const { config, changes } = withTarget(c, "int4-npu");
  assert.deepEqual(config.methods, ["aciq", "weight-clip", "reconstruct", "bias-fold"]);
  assert.equal(config.maxDrop, 1);
  assert.deepEqual(changes, []);
  assert.deepEqual(targetConflicts(config), []);
  // the paper's methods stay the paper's methods, said as the target holds them
  const paper = withTarget(withMethodsPreset(c, "paper"), "ort").config;
  assert.equal(methodsPresetOf(paper), "paper");
  assert.match(methodsPresetWhy("paper", "ort"), /activation bit allocation is off/);
  assert.match(methodsPresetWhy("paper", "int4-npu"), /weight bit allocation/);
  // settings the target cannot run are named, so the Run button can say why it is off
  const conflicts = targetConflicts({ ...c, aBits: 4, target: "ort" });
  assert.deepEqual(conflicts, ["4-bit activations: This target's integer kernels read 8-bit activations: choose the exact simulation for fewer."]);
});

test("the next step 'Best accuracy' on an onnxruntime run proposes the recipe that target can run", () => {
  const c = defaultQuantConfig({ wBits: 4, aBits: 8, methods: ["biascorr"], target: "ort" });
  const run = { jobId: "a", name: "x", report: report(c, [layer("conv1")], {}, 80) };
  const best = nextSteps({ run, runs: [run], ablations: [], model: null, goal: DEFAULT_GOAL }).find((s) => s.id === "methods:best");
  assert.ok(best?.config);
  assert.deepEqual(targetConflicts(best.config), []);
  assert.equal(best.config.target, "ort");
});

test("a run's target is part of its name when it is not the exact simulation, and of the exported file's name", () => {
  const exact = defaultQuantConfig({ wBits: 4, aBits: 8 });
  const ort = { ...exact, target: "ort" as const };
  const npu = { ...exact, target: "int4-npu" as const };
  assert.deepEqual(runNames([{ config: ort }]), ["W4A8 · All four methods · for onnxruntime"]);
  assert.deepEqual(runNames([{ config: exact }]), ["W4A8 · All four methods"], "the default is not spelled out on its own");
  assert.deepEqual(runNames([{ config: exact }, { config: ort }, { config: npu }]), ["W4A8 · All four methods · exact simulation", "W4A8 · All four methods · for onnxruntime", "W4A8 · All four methods · for a 4-bit NPU"]);
  assert.equal(settingsName({ config: npu }), "W4A8 · All four methods · for a 4-bit NPU");
  // per-tensor activations and the clipping baseline are the target's business there, not facets of the name
  assert.deepEqual(runNames([{ config: { ...ort, methods: [], activations: "per-tensor", baseline: "mse" } }, { config: { ...ort, methods: [] } }]), ["W4A8 · Baseline only · for onnxruntime", "W4A8 · Baseline only · for onnxruntime (run 2)"]);
  assert.equal(defaultModelPath("/m/resnet20.onnx", ort), "/m/resnet20-w4a8-ort.onnx");
  assert.equal(defaultModelPath("/m/resnet20.onnx", npu), "/m/resnet20-w4a8-int4npu.onnx");
  assert.equal(defaultModelPath("/m/resnet20.onnx", exact), "/m/resnet20-w4a8.onnx");
});

test("what onnxruntime runs as integers, counted from its optimized graph, in words", () => {
  const layers = [...Array.from({ length: 19 }, (_, i) => layer(`conv${i}`)), layer("fc", "Gemm")];
  const runtime = {
    runtime: "onnxruntime CPU",
    ops: { QLinearConv: 19, QGemm: 1, QLinearAdd: 9, QuantizeLinear: 1, DequantizeLinear: 1, "com.microsoft.QLinearGlobalAveragePool": 1 },
    integerOps: 30,
    floatConvs: 0,
    layers: layers.map((l) => ({ name: l.name, runsAs: l.op === "Conv" ? "QLinearConv" : "QGemm", integer: true })),
  };
  const s = integerSummary(report(defaultQuantConfig({ target: "ort", aBits: 8 }), layers, { runtime }));
  assert.ok(s);
  assert.equal(s.text, "19 of 19 convolutions and 1 of 1 fully connected layer run as integers in onnxruntime.");
  assert.match(s.detail, /^Read from onnxruntime's own optimized graph: 19 QLinearConv, 9 QLinearAdd, 1 QGemm/);
  assert.match(s.detail, /no float convolution or matrix product left\.$/);
  assert.doesNotMatch(s.detail, /QuantizeLinear/);
  assert.ok(s.all && !s.none);
  // the exact simulation: float Conv behind DequantizeLinear, said as such
  const mobile = Array.from({ length: 28 }, (_, i) => layer(`c${i}`));
  const exact = integerSummary(report(defaultQuantConfig(), mobile, { runtime: { runtime: "", ops: { Conv: 28 }, integerOps: 0, floatConvs: 28, layers: mobile.map((l) => ({ name: l.name, runsAs: "Conv", integer: false })) } }));
  assert.equal(exact?.text, "0 of 28 convolutions run as integers in onnxruntime.");
  assert.match(exact?.detail ?? "", /no integer kernel; 28 float convolutions or matrix products left/);
  assert.ok(exact?.none);
  // a report from before targets: nothing claimed
  assert.equal(integerSummary(report(defaultQuantConfig(), mobile)), null);
});

test("the self-check in words, and a failed one is asked about before export", () => {
  assert.equal(selfCheckView(okCheck).kind, "ok");
  assert.equal(selfCheckView(okCheck).title, "Self-check passed");
  const bad = selfCheckView(badCheck);
  assert.equal(bad.kind, "failed");
  assert.match(bad.text, /^the exported file gives different predictions once onnxruntime optimizes it: 1\.2% of 600 samples/);
  assert.equal(selfCheckView(null).kind, "none");
  assert.match(selfCheckView(null).text, /this run had none/);

  const ort = defaultQuantConfig({ target: "ort", aBits: 8 });
  assert.deepEqual(exportWarnings(report(ort, [layer("c")], { selfCheck: okCheck }), DEFAULT_GOAL), [], "measured, within the goal, self-check passed: nothing to ask");
  const w = exportWarnings(report(ort, [layer("c")], { selfCheck: badCheck }), DEFAULT_GOAL);
  assert.deepEqual(w.map((x) => x.id), ["self-check"]);
  assert.match(w[0].text, /do not ship it/);
  // both at once: the goal missed and the self-check failed
  assert.deepEqual(exportWarnings(report(ort, [layer("c")], { selfCheck: badCheck }, 50), DEFAULT_GOAL).map((x) => x.id), ["verdict", "self-check"]);
});

test("the measured time per image is labelled as this machine's, with what it means for the target", () => {
  const latency = { machine: "this machine (Test CPU, one thread)", threads: 1 as const, rows: [{ batch: 1, fp32Ms: 0.5, quantizedMs: 0.3, ratio: 0.6 }, { batch: 32, fp32Ms: 0.4, quantizedMs: 0.28, ratio: 0.7 }] };
  const v = latencyView(latency, "ort");
  assert.ok(v);
  assert.match(v.caption, /measured on this machine \(Test CPU, one thread\)/);
  assert.match(v.caption, /Another machine gives other numbers/);
  assert.deepEqual(v.rows.map((r) => [r.label, r.fp32, r.quantized, r.ratio, r.faster]), [
    ["One image at a time", "0.500 ms", "0.300 ms", "0.60×", true],
    ["Batches of 32", "0.400 ms", "0.280 ms", "0.70×", true],
  ]);
  assert.match(v.note, /^Faster than FP32 here/);
  const slow = { ...latency, rows: [{ batch: 1, fp32Ms: 0.5, quantizedMs: 1.5, ratio: 3 }] };
  assert.match(latencyView(slow, "ort")!.note, /^Not faster than FP32 here/);
  assert.match(latencyView(slow, "int4-npu")!.note, /says nothing about the device/);
  assert.match(latencyView(slow, "exact")!.note, /not made to be faster/);
  assert.equal(latencyView(null, "ort"), null);
});
