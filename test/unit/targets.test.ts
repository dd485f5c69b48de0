// The integer targets on every fixture model: what onnxruntime runs as integers (read from its own optimized
// graph), the file's QDQ form, and the self-check: a file that a fusion reads differently fails it, honest
// exports pass it.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { clone, fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { Method, PreprocessConfig } from "../../shared/types.ts";
import type { TargetId } from "../../shared/targets.ts";
import { selfCheck } from "../../src-main/engine/deploy/checks.ts";
import { encodeModel, loadModel } from "../../src-main/engine/onnx/model-io.ts";
import { prepareModel } from "../../src-main/engine/onnx/prepare.ts";
import { float32Tensor, int32Tensor, tensorToFloat32 } from "../../src-main/engine/onnx/tensor.ts";
import { expectedBiasShift, planWeights, type PlanLayer } from "../../src-main/engine/pipeline/plan.ts";
import { openFeeder, quantize, scanSource } from "../../src-main/engine/pipeline/quantize.ts";
import { assertNpuUnits } from "./target-structure.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const MODELS: { file: string; images: string; preset: PreprocessConfig["preset"] }[] = [
  { file: "resnet20-cifar10.onnx", images: "cifar10-train-1000", preset: "imagenet" },
  { file: "resnet56-cifar10.onnx", images: "cifar10-train-1000", preset: "imagenet" },
  { file: "mobilenet_v1_0.75_224-imagenet.onnx", images: "imagenet-val-1300", preset: "inception" },
  { file: "tiny-darknet-imagenet.onnx", images: "imagenet-val-1300", preset: "raw01" },
  { file: "ultraface-rfb-320.onnx", images: "faces", preset: "custom" },
];

function preprocessFor(preset: PreprocessConfig["preset"]): PreprocessConfig {
  // UltraFace reads (x − 127) / 128 per channel
  return preset === "custom" ? { preset, mean: [127, 127, 127], std: [128, 128, 128] } as PreprocessConfig : { preset };
}

async function exportFor(m: (typeof MODELS)[number], target: TargetId, wBits: number) {
  return quantize({
    model: path.join(fixtures, "models", m.file),
    calib: { dir: path.join(fixtures, m.images), limit: 8, seed: 1 },
    eval: null,
    preprocess: preprocessFor(m.preset),
    config: defaultQuantConfig({ wBits, aBits: 8, methods: ["biascorr"], target }),
  });
}

function assertClose(got: number, want: number) {
  assert.ok(Math.abs(got - want) <= 1e-6 + 1e-6 * Math.abs(want), `${got} vs ${want}`);
}

describe("ort target: onnxruntime runs every quantized layer as an integer kernel", () => {
  for (const m of MODELS) {
    test(m.file, { timeout: 300_000 }, async () => {
      const { report } = await exportFor(m, "ort", 8);
      const rt = report.target!.runtime!;
      assert.equal(report.target!.id, "ort");
      assert.equal(rt.floatConvs, 0, `float convolutions left in onnxruntime's graph: ${JSON.stringify(rt.ops)}`);
      const floatLayers = rt.layers.filter((l) => !l.integer).map((l) => `${l.name} → ${l.runsAs}`);
      assert.deepEqual(floatLayers, [], `layers not fused: ${floatLayers.join(", ")}`);
      assert.ok(report.layers.every((l) => l.executable === "integer"));
    });
  }
});

describe("int4-npu target: every quantized layer a DQ → op → Q unit, symmetric INT4 weights, INT32 bias", () => {
  for (const m of MODELS) {
    test(m.file, { timeout: 300_000 }, async () => {
      const { report, bytes } = await exportFor(m, "int4-npu", 4);
      assertNpuUnits(bytes, report.layers);
    });
  }
});

/** Labelled CIFAR test images through the model's own preprocessing, as the evaluation feeds them. */
async function testImages(limit: number) {
  const prepared = prepareModel(await loadModel(path.join(fixtures, "models", MODELS[0].file)));
  const set = await scanSource({ dir: path.join(fixtures, "cifar10-test"), limit, seed: 4 }, "evaluation");
  return openFeeder(prepared, set, { preset: "imagenet" });
}

describe("self-check", () => {
  test("reports a QDQ file whose fused form differs from its plain operators, and says which test failed", { timeout: 300_000 }, async () => {
    const { bytes } = await exportFor(MODELS[0], "ort", 8);
    const feeder = await testImages(200);
    const good = await selfCheck(bytes, feeder.batches(50), "logits", true);
    assert.ok(good.ok, good.message);
    assert.equal(good.accuracy?.images, 200);
    // Broken on purpose, and still a valid file: every bias's step is a 64th of input step × weight step and
    // its codes 64 times larger, so the plain DequantizeLinear gives the same biases, but the fused kernels
    // read the INT32 codes as if their step were input step × weight step.
    const model = clone(ModelProtoSchema, fromBinary(ModelProtoSchema, bytes));
    const inits = new Map(model.graph!.initializer.map((t, i) => [t.name, i]));
    let changed = 0;
    for (const n of model.graph!.node) {
      if (n.opType !== "DequantizeLinear" || !n.name.endsWith("_bias_dq")) continue;
      const [qi, si] = [inits.get(n.input[0])!, inits.get(n.input[1])!];
      const q = model.graph!.initializer[qi];
      const codes = new Int32Array(q.int32Data.length ? Int32Array.from(q.int32Data) : new Int32Array(q.rawData.slice().buffer));
      const scale = tensorToFloat32(model.graph!.initializer[si]);
      model.graph!.initializer[qi] = int32Tensor(q.name, q.dims.map(Number), codes.map((c) => c * 64));
      model.graph!.initializer[si] = float32Tensor(model.graph!.initializer[si].name, [scale.length], scale.map((v) => v / 64));
      changed++;
    }
    assert.ok(changed > 10);
    const bad = await selfCheck(encodeModel(model), feeder.batches(50), "logits", true);
    assert.equal(bad.ok, false, bad.message);
    assert.match(bad.message, /different predictions once onnxruntime optimizes it: top-1 accuracy \d/);
  });

  test("passes an honest ort export of MobileNet, whose fused kernels round differently", { timeout: 600_000 }, async () => {
    const m = MODELS[2];
    const { report } = await quantize({
      model: path.join(fixtures, "models", m.file),
      calib: { dir: path.join(fixtures, m.images), limit: 32, seed: 1 },
      eval: { dir: path.join(fixtures, m.images), limit: 232, seed: 1 },
      preprocess: { preset: m.preset },
      config: defaultQuantConfig({ wBits: 8, aBits: 8, methods: [], target: "ort" }),
    });
    const check = report.target!.selfCheck!;
    assert.ok(check.ok, check.message);
    // images calibration used are held out of the evaluation
    assert.ok(check.fp32Agreement !== null && check.fp32Agreement.images >= 150, JSON.stringify(check.fp32Agreement));
    assert.ok(check.outputStep !== null && check.outputStep > 0, "the softmax output's step is read from its DequantizeLinear");
  });
});

describe("ort target accuracy, measured on the exported file", () => {
  test("ResNet-20 W8A8 keeps FP32's top-1 within a point on 500 test images calibration never saw", { timeout: 300_000 }, async () => {
    const { report } = await quantize({
      model: path.join(fixtures, "models", "resnet20-cifar10.onnx"),
      calib: { dir: path.join(fixtures, "cifar10-train-1000"), limit: 256, seed: 0 },
      eval: { dir: path.join(fixtures, "cifar10-test"), limit: 500, seed: 3 },
      preprocess: { preset: "imagenet" },
      config: defaultQuantConfig({ wBits: 8, aBits: 8, methods: [], target: "ort" }),
    });
    const fp32 = report.fp32!.top1!;
    const q = report.quantized!.top1!;
    assert.ok(fp32 > 85, `FP32 top-1 ${fp32}: the data or preprocessing is wrong`);
    assert.ok(q >= fp32 - 1, `ort W8A8 top-1 ${q} vs FP32 ${fp32}`);
    assert.equal(report.target!.runtime!.floatConvs, 0);
    assert.ok(report.target!.selfCheck!.ok, report.target!.selfCheck!.message);
    assert.deepEqual(report.target!.latency!.rows.map((r) => r.batch), [1, 32]);
  });
});

describe("bias correction on the integer targets: the expected effect of the stored weights' error", () => {
  test("each weight's error meets its own input channel's mean, not the average of the means", () => {
    // a 1×1 conv reading two channels, one of mean 10 and one of mean 0: only the first one's weight errors move the output
    const layer: PlanLayer = {
      name: "conv", op: "Conv", kind: "conv", weightShape: [2, 2, 1, 1], outChannels: 2, params: 4, halfRange: false, activation: "none",
      activationClamp: [null, null], activationRange: [null, null], role: "hidden", output: "y", outputBounds: [null, null], weightName: "w", weightAxis: 0, input: "x", groups: 1,
    };
    const weights = { data: Float32Array.of(0.3, -1, 0.71, 0.2), shape: [2, 2, 1, 1] };
    const w = planWeights(layer, weights, 3, defaultQuantConfig({ wBits: 3, aBits: 8, methods: ["biascorr"], target: "ort" }), false, true);
    const error = (j: number, c: number) => weights.data[j] - (w.codes[j] - w.zeroPoint[c]) * w.scale[c];
    const shift = expectedBiasShift(layer, w, weights, [10, 0]);
    // 0.3 is off channel 0's grid; 0.71 is on channel 1's, whose mean error (0.2 is off it) must not count
    assert.ok(Math.abs(error(0, 0)) > 1e-3 && Math.abs(error(3, 1)) > 1e-3, "the test needs weights the 3-bit grid misses");
    assertClose(shift[0], error(0, 0) * 10);
    assertClose(shift[1], error(2, 1) * 10);
  });

  test("MobileNet v1 0.75 ort W8A8: the corrected file is closer to FP32 than the uncorrected one", { timeout: 900_000 }, async () => {
    const m = MODELS[2];
    const run = (methods: Method[]) =>
      quantize({
        model: path.join(fixtures, "models", m.file),
        calib: { dir: path.join(fixtures, m.images), limit: 64, seed: 2 },
        eval: { dir: path.join(fixtures, m.images), limit: 264, seed: 2 },
        preprocess: { preset: m.preset },
        config: defaultQuantConfig({ wBits: 8, aBits: 8, methods, target: "ort" }),
      });
    const none = (await run([])).report;
    const corrected = (await run(["biascorr"])).report;
    const sqnr = (r: typeof none) => r.outputs![0].sqnrDb!;
    // on /tmp/inet (1,000 images): 16.9 dB without correction, 24.7 with it
    assert.ok(sqnr(corrected) > sqnr(none) + 4, `output SQNR ${sqnr(corrected).toFixed(1)} dB corrected, ${sqnr(none).toFixed(1)} dB not`);
    assert.ok(corrected.agreement!.agreement > none.agreement!.agreement, `FP32 agreement ${corrected.agreement!.agreement}% vs ${none.agreement!.agreement}%`);
    assert.equal(corrected.target!.runtime!.floatConvs, 0);
  });
});

