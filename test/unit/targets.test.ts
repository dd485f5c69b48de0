// The integer targets on every fixture model: what onnxruntime runs as integers (read from its own optimized
// graph), the file's QDQ form, and the self-check catching a file that a fusion reads differently.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { clone, fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorProto_DataType as DT, type ModelProto } from "onnx-buf";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { PreprocessConfig } from "../../shared/types.ts";
import type { TargetId } from "../../shared/targets.ts";
import type { FeedBatch } from "../../src-main/engine/data/feeds.ts";
import { selfCheck } from "../../src-main/engine/deploy/checks.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { float32Tensor, int32Tensor, tensorToFloat32 } from "../../src-main/engine/onnx/tensor.ts";
import { quantize } from "../../src-main/engine/pipeline/quantize.ts";

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

const producers = (model: ModelProto) => new Map(model.graph!.node.flatMap((n) => n.output.map((o) => [o, n] as const)));

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
      const model = fromBinary(ModelProtoSchema, bytes);
      assert.equal(model.opsetImport.find((o) => !o.domain)?.version, 21n);
      const made = producers(model);
      const inits = new Map(model.graph!.initializer.map((t) => [t.name, t]));
      const readers = (t: string) => model.graph!.node.filter((n) => n.input.includes(t));
      for (const layer of report.layers) {
        const n = model.graph!.node.find((x) => x.name === layer.name)!;
        assert.ok(n, layer.name);
        for (const [i, input] of n.input.entries()) {
          if (!input) continue;
          const dq = made.get(input);
          assert.equal(dq?.opType, "DequantizeLinear", `${layer.name} input ${i} is not dequantized`);
          const q = inits.get(dq!.input[0]);
          if (i === 1) {
            assert.equal(q?.dataType, layer.precision === "low" ? DT.INT4 : DT.INT8, `${layer.name} weight container`);
            const zp = inits.get(dq!.input[2])!;
            assert.ok(zp.rawData.every((b) => b === 0) && zp.int32Data.every((z) => z === 0), `${layer.name} weight zero point`);
          }
          if (i === 2) assert.equal(q?.dataType, DT.INT32, `${layer.name} bias`);
          if (i === 0) assert.equal(inits.get(made.get(dq!.input[0])?.input[2] ?? "")?.dataType, DT.UINT8, `${layer.name} activation`);
        }
        const out = readers(n.output[0]);
        assert.ok(out.length > 0 && out.every((r) => r.opType === "QuantizeLinear"), `${layer.name} output is not quantized`);
      }
    });
  }
});

/** Random CIFAR-shaped inputs, seeded: the check compares a file with itself, so any inputs do. */
async function* randomBatches(count: number, batch: number): AsyncGenerator<FeedBatch> {
  let seed = 7;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2;
  for (let done = 0; done < count; done += batch) {
    const data = Float32Array.from({ length: batch * 3 * 32 * 32 }, next);
    yield { feeds: { input: { type: "float32", data, dims: [batch, 3, 32, 32] } }, count: batch, labels: new Int32Array(batch).fill(-1), files: [], processed: done + batch };
  }
}

describe("self-check", () => {
  test("passes Nibble's ort export and reports a QDQ file whose fused form differs from its plain operators", { timeout: 300_000 }, async () => {
    const { bytes } = await exportFor(MODELS[0], "ort", 8);
    const good = await selfCheck(bytes, randomBatches(64, 16), "logits", true);
    assert.ok(good.ok, good.message);
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
    const bad = await selfCheck(encodeModel(model), randomBatches(64, 16), "logits", true);
    assert.equal(bad.ok, false, bad.message);
    assert.match(bad.message, /different predictions once onnxruntime optimizes it/);
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
