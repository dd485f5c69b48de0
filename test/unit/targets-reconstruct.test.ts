// The reconstruct stage and --max-drop on the integer targets (ResNet-20; W3A8, where the rounding matters
// more than at 4 bits, whose nearest rounding is already within noise of FP32 on ResNet-20): each layer's rounding is
// fitted on the network as the target's own file computes it, the codes stay on the symmetric grid, the
// folded biases are what the file's INT32 biases hold, and the file keeps the target's form (ort: onnxruntime
// fuses every layer; int4-npu: DQ → op → Q units with INT4 weights). Every accuracy is the exported file's.
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorProto_DataType as DT } from "onnx-buf";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { TargetId } from "../../shared/targets.ts";
import type { Method, QuantConfig } from "../../shared/types.ts";
import { scanImages, type ImageSet } from "../../src-main/engine/data/scan.ts";
import { ortOptimizedGraph } from "../../src-main/engine/deploy/checks.ts";
import { tensorToFloat32, tensorToIntegers } from "../../src-main/engine/onnx/tensor.ts";
import { dropOf, searchMixedPrecision } from "../../src-main/engine/pipeline/mixed-precision.ts";
import { calibrate, evaluateQuantized, quantizeCalibrated, type Calibrated } from "../../src-main/engine/pipeline/quantize.ts";
import { sha256 } from "../../src-main/engine/pipeline/report.ts";
import { assertNpuUnits, producers } from "./target-structure.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const model = path.join(fixtures, "models/resnet20-cifar10.onnx");
const calib = { dir: path.join(fixtures, "cifar10-train-1000"), limit: 64, seed: 3 };
const w3a8 = (target: TargetId, methods: Method[]): QuantConfig => ({ ...defaultQuantConfig({ wBits: 3, aBits: 8, methods, target }), reconstruct: { images: 64 } });
const NEAREST: Method[] = ["weight-clip", "biascorr"];
const RECONSTRUCTED: Method[] = ["weight-clip", "biascorr", "reconstruct", "bias-fold"];

for (const target of ["int4-npu", "ort"] as const) {
  describe(`reconstruct and bias-fold, --target ${target}`, () => {
    let c: Calibrated;
    let test: ImageSet;
    before(async () => {
      c = await calibrate({ model, calib, preprocess: { preset: "imagenet" }, config: w3a8(target, RECONSTRUCTED), histograms: false });
      test = await scanImages(path.join(fixtures, "cifar10-test"), { limit: 1000, seed: 1 });
    });

    it("lowers every layer's output error, keeps the target's form, and the file scores better on unseen images", { timeout: 600_000 }, async () => {
      const plain = await quantizeCalibrated(c, w3a8(target, NEAREST), {});
      const rec = await quantizeCalibrated(c, w3a8(target, RECONSTRUCTED), {});
      const layers = rec.reconstruction!.layers;
      assert.equal(layers.length, c.prepared.layers.length);
      for (const l of layers) assert.ok(l.errorChosen <= l.errorNearest * (1 + 1e-9), `${l.name}: ${l.errorChosen} > ${l.errorNearest}`);
      assert.ok(layers.filter((l) => l.errorChosen < 0.9 * l.errorNearest).length >= layers.length / 2, "most layers clearly better");
      // codes on the plan's symmetric grid: zero point 2^(bits−1), so the file's signed codes fit the container
      for (const p of rec.plans) {
        const w = p.weight!;
        assert.ok(w.symmetric && w.zeroPoint.every((z, ch) => z === 2 ** (w.bits[ch] - 1)), p.layer.name);
        assert.ok(w.codes.every((v, i) => v <= 2 ** w.bits[Math.floor(i / (w.codes.length / w.bits.length))] - 1), p.layer.name);
      }
      if (target === "int4-npu") assertNpuUnits(rec.bytes, rec.plans.map((p) => ({ name: p.layer.name, precision: p.precision })));
      else {
        const rt = await ortOptimizedGraph(rec.bytes, c.prepared.layers.map((l) => l.info.name));
        assert.equal(rt.floatConvs, 0, JSON.stringify(rt.ops));
        assert.deepEqual(rt.layers.filter((l) => !l.integer).map((l) => l.name), []);
      }
      const a = await evaluateQuantized(c, plain.bytes, test, { preprocess: c.preprocess, layerErrors: false });
      const b = await evaluateQuantized(c, rec.bytes, test, { preprocess: c.preprocess, layerErrors: false }, a.predictions.fp32);
      assert.ok(b.quantized!.top1! > a.quantized!.top1!, `reconstructed ${b.quantized!.top1} vs nearest ${a.quantized!.top1} (FP32 ${a.fp32.top1})`);
    });

    it("writes the folded biases as the INT32 biases, the expected-effect correction replaced, and the same file twice", { timeout: 600_000 }, async () => {
      const cfg = w3a8(target, RECONSTRUCTED);
      const one = await quantizeCalibrated(c, cfg, {});
      const two = await quantizeCalibrated(c, cfg, {});
      assert.equal(sha256(one.bytes), sha256(two.bytes));
      const file = fromBinary(ModelProtoSchema, one.bytes);
      const made = producers(file);
      const inits = new Map(file.graph!.initializer.map((t) => [t.name, t]));
      const folded = new Map(one.reconstruction!.model.graph!.initializer.map((t) => [t.name, t]));
      let checked = 0;
      for (const p of one.plans) {
        if (p.layer.op === "MatMul") continue;
        assert.equal(p.biasCorrection, null, `${p.layer.name}: the fold measured what the expected effect estimated`);
        const floatBias = tensorToFloat32(folded.get(one.reconstruction!.model.graph!.node.find((n) => n.name === p.layer.name)!.input[2])!);
        const dq = made.get(file.graph!.node.find((n) => n.name === p.layer.name)!.input[2])!;
        const q = inits.get(dq.input[0])!;
        assert.equal(q.dataType, DT.INT32);
        const codes = tensorToIntegers(q);
        const step = tensorToFloat32(inits.get(dq.input[1])!);
        for (let ch = 0; ch < codes.length; ch++) {
          assert.ok(Math.abs(codes[ch] * step[ch] - floatBias[ch]) <= 0.51 * step[ch] + 1e-6 * Math.abs(floatBias[ch]), `${p.layer.name} channel ${ch}: ${codes[ch] * step[ch]} vs ${floatBias[ch]}`);
        }
        checked++;
      }
      assert.equal(checked, one.plans.length);
    });
  });
}

describe("--max-drop on an integer target", () => {
  it("int4-npu: measures candidates as fresh runs with promoted layers in INT8 containers and returns one it measured", { timeout: 900_000 }, async () => {
    const config = w3a8("int4-npu", NEAREST);
    const c = await calibrate({ model, calib, preprocess: { preset: "imagenet" }, config, histograms: false });
    const base = await quantizeCalibrated(c, config, {});
    // without labels the drop is in FP32 agreement, which cannot go below 0: --max-drop 0 has to search
    const test = await scanImages(path.join(fixtures, "cifar10-test"), { limit: 300, seed: 1 });
    const evalSet = { ...test, files: test.files.map((f) => ({ ...f, label: null })) };
    const { chosen, report } = await searchMixedPrecision({ c, config, base, evalSet, maxDrop: 0, metadata: {} });
    assert.ok(report.candidates.length >= 2, JSON.stringify(report.candidates));
    const at = report.chosen ?? report.candidates.reduce((a, b, i) => (b.drop < report.candidates[a].drop ? i : a), 0);
    const kept = new Set(report.candidates[at].kept);
    assert.ok(kept.size > 0, "the search promoted layers");
    const fresh = await quantizeCalibrated(c, { ...config, keep: Object.fromEntries([...kept].map((n) => [n, "8" as const])) }, {});
    assert.equal(sha256(chosen.bytes), sha256(fresh.bytes), "the returned candidate is the file a fresh run with its layers kept at 8 bits gives");
    assert.equal(dropOf(await evaluateQuantized(c, chosen.bytes, evalSet, { preprocess: c.preprocess, layerErrors: false })).drop, report.candidates[at].drop);
    assertNpuUnits(chosen.bytes, chosen.plans.map((p) => ({ name: p.layer.name, precision: p.precision })));
    assert.ok(chosen.plans.filter((p) => kept.has(p.layer.name)).every((p) => p.precision === "8bit"));
  });
});
