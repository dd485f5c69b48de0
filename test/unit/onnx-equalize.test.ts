// Cross-layer equalization keeps the network's function (on inputs the range pass never saw), balances the
// ranges it is meant to, respects ReLU6 bounds and moves high biases only where that is exact.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { equalizeModel, findEqualizePairs } from "../../src-main/engine/onnx/equalize.ts";
import { withOutputs } from "../../src-main/engine/onnx/graph.ts";
import { encodeModel, loadModel, type LoadedModel } from "../../src-main/engine/onnx/model-io.ts";
import { prepareModel, requireImageInput, type PreparedModel } from "../../src-main/engine/onnx/prepare.ts";
import { float32Tensor, tensorToFloat32 } from "../../src-main/engine/onnx/tensor.ts";
import { channelRanges, equalizeStage } from "../../src-main/engine/pipeline/equalize-stage.ts";
import { imageBatches } from "../../src-main/engine/pipeline/quantize.ts";
import { closeSession, openSession, imageFeeds, runBatch, tensorData, type InputGeometry } from "../../src-main/engine/pipeline/runtime.ts";
import { ModelBuilder, randomInput } from "../helpers/model-builder.ts";
import { fixtures } from "./data-fixtures.ts";

function loaded(b: ModelBuilder): LoadedModel {
  return { path: "test.onnx", model: b.build(), opset: b.opset, irVersion: b.irVersion, fileBytes: 0, externalBytes: 0, notes: [] } as unknown as LoadedModel;
}

/** conv → ReLU → depthwise → ReLU6 → 1x1 → ReLU → MaxPool → 1x1 (no padding) → GAP → Gemm. */
function network(): PreparedModel {
  const b = new ModelBuilder({ seed: 5 })
    .input("x", ["N", 3, 8, 8])
    .conv({ out: 8, name: "c0" }).batchNorm().relu()
    .conv({ out: 8, groups: 8, name: "dw" }).batchNorm().clip(0, 6)
    .conv({ out: 12, kernel: 1, name: "pw" }).relu().maxPool()
    .conv({ out: 6, kernel: 1, name: "pw2" })
    .globalAveragePool().flatten().gemm({ out: 4, name: "fc" })
    .output();
  const prepared = prepareModel(loaded(b));
  // very unequal channels, as real BatchNorm folding produces them
  const graph = prepared.model.graph!;
  const c0 = prepared.layers.find((l) => l.info.name === "c0")!;
  const w = graph.initializer.find((t) => t.name === c0.weight)!;
  const data = tensorToFloat32(w);
  const per = data.length / 8;
  for (let i = 0; i < data.length; i++) data[i] *= 10 ** ((Math.floor(i / per) % 4) - 1.5);
  Object.assign(w, float32Tensor(w.name, w.dims.map(Number), data));
  return prepared;
}

async function outputs(model: Parameters<typeof encodeModel>[0], x: Float32Array, n: number, names: string[]): Promise<Record<string, Float32Array>> {
  const s = await openSession(encodeModel(withOutputs(model, names)));
  try {
    const out = await runBatch(s, GEOMETRY, x, n, names);
    return Object.fromEntries(names.map((k) => [k, Float32Array.from(tensorData(out[k]))]));
  } finally {
    await closeSession(s);
  }
}

const GEOMETRY: InputGeometry = { name: "x", layout: "NCHW", channels: 3, height: 8, width: 8, fixedBatch: null };

async function* batchOf(x: Float32Array, n: number) {
  yield { feeds: imageFeeds(GEOMETRY, x, n), count: n };
}

async function* feedsOf(source: ReturnType<typeof imageBatches>, geometry: InputGeometry) {
  for await (const b of source) yield { feeds: imageFeeds(geometry, b.data, b.count), count: b.count };
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

describe("cross-layer equalization", () => {
  it("finds the conv pairs joined through ReLU, ReLU6 and pooling, and no others", () => {
    const p = network();
    const pairs = findEqualizePairs(p.model, p.layers);
    assert.deepEqual(pairs.map((q) => [q.first, q.second, q.activation, q.bound, q.absorbable]), [
      ["c0", "dw", "relu", Infinity, false],
      ["dw", "pw", "bounded", 6, true],
      ["pw", "pw2", "relu", Infinity, true],
    ]);
  });

  it("keeps the network's outputs on unseen inputs and balances each scaled channel's two ranges", async () => {
    const p = network();
    const calib = randomInput(32 * 3 * 64, 1);
    const { prepared, result } = await equalizeStage({ prepared: p, relaxed: false, images: 32, batches: batchOf(calib, 32) });
    assert.ok(result.pairs.every((r) => r.typicalScale > 1.01), "every pair was rescaled");
    const fresh = randomInput(16 * 3 * 64, 2);
    const out = p.model.graph!.output[0].name;
    const before = await outputs(p.model, fresh, 16, [out]);
    const after = await outputs(prepared.model, fresh, 16, [out]);
    const scale = maxAbs(before[out]);
    for (let i = 0; i < before[out].length; i++) assert.ok(Math.abs(before[out][i] - after[out][i]) <= 1e-4 * scale, `output ${i}: ${before[out][i]} vs ${after[out][i]}`);
    // the unbounded pair with nothing shared downstream ends balanced: max|W1_i| = max|W2[:, i]|
    const w = (name: string) => {
      const l = prepared.layers.find((x) => x.info.name === name)!;
      const t = prepared.model.graph!.initializer.find((x) => x.name === l.weight)!;
      return { data: tensorToFloat32(t), dims: t.dims.map(Number) };
    };
    const pw = w("pw");
    const pw2 = w("pw2");
    for (let c = 0; c < 12; c++) {
      let r1 = 0;
      for (let i = c * 8; i < (c + 1) * 8; i++) r1 = Math.max(r1, Math.abs(pw.data[i]));
      let r2 = 0;
      for (let o = 0; o < 6; o++) r2 = Math.max(r2, Math.abs(pw2.data[o * 12 + c]));
      assert.ok(Math.abs(r1 - r2) <= 1e-3 * r1, `channel ${c}: ${r1} vs ${r2}`);
    }
  });

  it("never lets a ReLU6 channel reach its bound: channels that did are left unscaled", async () => {
    const p = network();
    const pairs = findEqualizePairs(p.model, p.layers);
    const x = randomInput(32 * 3 * 64, 3);
    const ranges = await channelRanges({ prepared: p, relaxed: false, images: 32, batches: batchOf(x, 32) }, pairs.map((q) => q.tensor));
    const bounded = pairs.find((q) => q.activation === "bounded")!;
    const r = ranges.get(bounded.tensor)!;
    // pretend half the channels reached 6 during calibration
    for (let c = 0; c < 8; c += 2) r.max[c] = 7;
    const result = equalizeModel(p.model, p.layers, pairs, ranges);
    const report = result.pairs.find((q) => q.activation === "bounded")!;
    assert.equal(report.frozen, r.max.filter((m) => m * 2 >= 6).length);
    assert.ok(report.frozen >= 4 && report.frozen < 8);
    const dw = p.layers.find((l) => l.info.name === "dw")!;
    const after = equalizeModel(p.model, p.layers, pairs, ranges).model;
    const out = await outputs(after, x, 32, [dw.output]);
    const original = await outputs(p.model, x, 32, [dw.output]);
    // a frozen channel's dw output (the dw → pw pair's tensor) is changed only by the c0 → dw pair, which scales the dw weights, not its output
    for (let c = 0; c < 8; c++) {
      if (r.max[c] * 2 < 6) continue;
      for (let i = c * 64; i < (c + 1) * 64; i++) assert.ok(Math.abs(out[dw.output][i] - original[dw.output][i]) <= 1e-4 * (Math.abs(original[dw.output][i]) + 1));
    }
    for (let c = 0; c < 8; c++) {
      if (r.max[c] * 2 >= 6) continue;
      let m = -Infinity;
      for (let n = 0; n < 32; n++) for (let i = 0; i < 64; i++) m = Math.max(m, out[dw.output][(n * 8 + c) * 64 + i]);
      assert.ok(m * 2 <= 6 + 1e-6, `channel ${c} reaches ${m}`);
    }
  });

  it("absorbs a high bias into the next layer's bias where the next layer has no padding", async () => {
    const p = network();
    const pw = p.layers.find((l) => l.info.name === "pw")!;
    // a large positive bias keeps pw's output channels positive: ReLU never clips them
    const bias = p.model.graph!.initializer.find((t) => t.name === pw.bias)!;
    const data = tensorToFloat32(bias).map((v, i) => (i % 3 === 0 ? v + 50 : v));
    Object.assign(bias, float32Tensor(bias.name, bias.dims.map(Number), data));
    const calib = randomInput(32 * 3 * 64, 4);
    const { prepared, result } = await equalizeStage({ prepared: p, relaxed: false, images: 32, batches: batchOf(calib, 32) });
    assert.ok(result.pairs.find((q) => q.first === "pw")!.absorbed >= 4);
    assert.equal(result.pairs.find((q) => q.first === "c0")!.absorbed, 0, "dw pads its input: nothing moves into it");
    const out = p.model.graph!.output[0].name;
    const before = await outputs(p.model, calib, 32, [out]);
    const after = await outputs(prepared.model, calib, 32, [out]);
    const scale = maxAbs(before[out]);
    for (let i = 0; i < before[out].length; i++) assert.ok(Math.abs(before[out][i] - after[out][i]) <= 1e-4 * scale);
  });

  for (const [file, preset] of [["mobilenet_v1_0.75_224-imagenet.onnx", "inception"], ["tiny-darknet-imagenet.onnx", "raw01"]] as const) {
    it(`${file}: outputs on 40 unseen ImageNet images stay within 1e-3 of the largest output, same top-1`, async () => {
      const prepared = prepareModel(await loadModel(path.join(fixtures, "models", file)));
      const geometry = requireImageInput(prepared);
      const all = await scanImages(path.join(fixtures, "imagenet-val-1300"), { limit: 140, seed: 9 });
      const calib = { ...all, files: all.files.slice(0, 100) };
      const unseen = { ...all, files: all.files.slice(100) };
      const pre = { preset, resize: 224, crop: 224 } as const;
      const { prepared: eq, result } = await equalizeStage({ prepared, relaxed: false, images: 100, batches: feedsOf(imageBatches(calib, geometry, pre), geometry) });
      assert.ok(result.pairs.length >= (file.startsWith("mobilenet") ? 26 : 14), `${result.pairs.length} pairs`);
      const out = prepared.output;
      const s0 = await openSession(encodeModel(prepared.model));
      const s1 = await openSession(encodeModel(eq.model));
      let worst = 0;
      try {
        for await (const b of imageBatches(unseen, geometry, pre)) {
          const a = tensorData((await runBatch(s0, geometry, b.data, b.count, [out]))[out]);
          const e = tensorData((await runBatch(s1, geometry, b.data, b.count, [out]))[out]);
          const top = (v: Float32Array) => v.indexOf(Math.max(...v));
          assert.equal(top(e), top(a));
          const scale = maxAbs(a);
          for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]) / scale);
        }
      } finally {
        await closeSession(s0);
        await closeSession(s1);
      }
      assert.ok(worst <= 1e-3, `worst relative difference ${worst}`);
    });
  }
});
