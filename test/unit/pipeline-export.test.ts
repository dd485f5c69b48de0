// The exported file must compute what the plan says: every quantized weight and every quantized
// activation of the real ResNet-20, read back from onnxruntime, is checked against the engine's own grid.
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorProto_DataType } from "onnx-buf";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { withOutputs } from "../../src-main/engine/onnx/graph.ts";
import { calibrate, imageBatches, quantizeCalibrated, type Calibrated } from "../../src-main/engine/pipeline/quantize.ts";
import type { LayerPlan } from "../../src-main/engine/pipeline/plan.ts";
import { openSession, runBatch, tensorData } from "../../src-main/engine/pipeline/runtime.ts";
import { fakeQuantPerChannel } from "../../src-main/engine/quant/grid.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { ALL_METHODS, type QuantConfig } from "../../shared/types.ts";
import { assertAbsClose } from "./approx.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const model = path.join(fixtures, "models/resnet20-cifar10.onnx");

const config = (methods: QuantConfig["methods"], bits = 4, activations: QuantConfig["activations"] = "per-channel"): QuantConfig =>
  defaultQuantConfig({ wBits: bits, aBits: bits, methods, activations });

function weightValues(plan: LayerPlan, shape: number[]): Float32Array {
  const w = plan.weight!;
  const axis = plan.layer.weightAxis;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = shape[axis];
  return Float32Array.from(w.codes, (code, i) => {
    const c = Math.floor(i / inner) % channels;
    return code * w.scale[c] + w.offset[c];
  });
}

describe("exported ResNet-20 computes the plan's grid", () => {
  let c: Calibrated;
  before(async () => {
    c = await calibrate({ model, calib: { dir: path.join(fixtures, "cifar10-train-1000"), limit: 64, seed: 3 }, preprocess: { preset: "imagenet" }, config: config([...ALL_METHODS]) });
  });

  const cases = [
    ["all methods, W4A4", config([...ALL_METHODS])],
    ["baseline, W3A3", config([], 3)],
    ["ACIQ, per-tensor activations, W4A4", config(["aciq"], 4, "per-tensor")],
  ] as const;
  for (const [label, cfg] of cases) {
    it(`${label}: weights and activations match the engine within float32 rounding`, async () => {
      const { plans, bytes } = await quantizeCalibrated(c, cfg, {});
      const exported = fromBinary(ModelProtoSchema, bytes);
      assert.equal(Number(exported.opsetImport.find((o) => o.domain === "")!.version), 21);
      const types = new Set(exported.graph!.initializer.map((t) => t.dataType));
      assert.ok(types.has(TensorProto_DataType.INT4), "4-bit weights are stored as INT4");
      // no float copy of a quantized weight is left in the file
      const names = new Set(exported.graph!.initializer.map((t) => t.name));
      for (const p of plans) assert.ok(!names.has(p.layer.weightName), `${p.layer.weightName} still stored in float`);

      // read every dequantized weight and every activation before and after its quantizer
      const weightOut = new Map<string, string>();
      for (const n of exported.graph!.node) {
        for (const p of plans) if (n.opType !== "DequantizeLinear" && n.input.some((i) => i.startsWith(`${p.layer.weightName}_dequantized_weight`))) weightOut.set(p.layer.name, n.input.find((i) => i.startsWith(`${p.layer.weightName}_dequantized_weight`))!);
      }
      const pre = new Map(plans.map((p) => [p.layer.name, exported.graph!.node.find((n) => n.name === p.layer.name)!.output[0]]));
      const taps = [...weightOut.values(), ...pre.values(), ...plans.map((p) => p.activation!.tensor)];
      const session = await openSession(encodeModel(withOutputs(exported, taps)));
      const set = await scanImages(path.join(fixtures, "cifar10-test"), { limit: 32, seed: 5 });
      for await (const batch of imageBatches(set, c.geometry!, { preset: "imagenet" })) {
        const out = await runBatch(session, c.geometry!, batch.data, batch.count, taps);
        for (const p of plans) {
          const shape = c.weights.get(p.layer.weightName)!.shape;
          const expected = weightValues(p, shape);
          const got = tensorData(out[weightOut.get(p.layer.name)!]);
          const maxAbs = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          assertAbsClose(got, expected, 2e-6 * maxAbs + 1e-7, `${p.layer.name} weights`);

          const a = p.activation!;
          const x = tensorData(out[pre.get(p.layer.name)!]);
          const dims = out[pre.get(p.layer.name)!].dims as number[];
          const channels = a.granularity === "per-channel" ? dims[1] : 1;
          const inner = x.length / batch.count / channels;
          const simulated = fakeQuantPerChannel(x, channels, inner, batch.count, a.lo, a.range, a.bits);
          const y = tensorData(out[a.tensor]);
          // a value within float32 rounding of a rounding boundary may land on the neighbouring grid point
          let moved = 0;
          for (let i = 0; i < y.length; i++) {
            const ch = Math.floor(i / inner) % channels;
            const step = a.scale[a.granularity === "per-channel" ? ch : 0];
            const d = Math.abs(y[i] - simulated[i]);
            if (d > 1e-4 * step + 1e-6) {
              moved++;
              assert.ok(Math.abs(d - step) < 1e-3 * step, `${p.layer.name}[${i}]: ${y[i]} vs ${simulated[i]} (step ${step})`);
            }
          }
          assert.ok(moved <= y.length * 1e-4, `${p.layer.name}: ${moved} of ${y.length} values off the engine's grid`);
        }
        break;
      }
      await session.release();
      if (cfg.activations === "per-tensor") {
        // uniform 4-bit weights and per-tensor 4-bit activations are what integer runtimes execute
        const types = new Set(exported.graph!.initializer.filter((t) => t.name.endsWith("_zero_point")).map((t) => t.dataType));
        assert.ok(types.has(TensorProto_DataType.UINT4), "per-tensor 4-bit activations stored as UINT4");
      }
    });
  }
});
