// The onnxruntime Hessians against the plain definition: im2col in TypeScript, then Σ x xᵀ in float64.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildGramModel, collectGrams, gramTapFor, mergeWithReference, referenceName, type LayerGram } from "../../src-main/engine/pipeline/hessian.ts";
import { prepareModel } from "../../src-main/engine/onnx/prepare.ts";
import { im2col } from "../../src-main/engine/quant/im2col.ts";
import { addGram } from "../../src-main/engine/quant/linalg.ts";
import type { LoadedModel } from "../../src-main/engine/onnx/model-io.ts";
import { ModelBuilder, randomInput, runOnnx } from "../helpers/model-builder.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { withOutputs } from "../../src-main/engine/onnx/graph.ts";
import { imageFeeds } from "../../src-main/engine/pipeline/runtime.ts";
import { assertAbsClose } from "./approx.ts";

function loaded(b: ModelBuilder): LoadedModel {
  const model = b.build();
  return { path: "test.onnx", model, opset: b.opset, irVersion: b.irVersion, fileBytes: 0, externalBytes: 0, notes: [] } as unknown as LoadedModel;
}

/** conv 3x3 s2 p1 → depthwise 3x3 → grouped 3x3 (2 groups) → 1x1 → GAP → Gemm: every kind of tap. */
function network(): ModelBuilder {
  return new ModelBuilder({ seed: 3 })
    .input("x", ["N", 3, 9, 9])
    .conv({ out: 8, stride: 2, pad: 1, name: "c0" }).relu()
    .conv({ out: 8, groups: 8, name: "dw" }).relu()
    .conv({ out: 8, groups: 2, pad: 0, name: "g2" })
    .conv({ out: 6, kernel: 1, name: "pw" }).relu()
    .globalAveragePool().flatten()
    .gemm({ out: 4, name: "fc" })
    .output();
}

async function reference(prepared: ReturnType<typeof prepareModel>, x: Float32Array, batch: number): Promise<Map<string, LayerGram>> {
  const inputs = prepared.layers.map((l) => l.input);
  const out = await runOnnx(encodeModel(withOutputs(prepared.model, inputs)), { x: { data: x, dims: [batch, 3, 9, 9] } });
  const result = new Map<string, LayerGram>();
  const shapes = new Map(prepared.model.graph!.initializer.map((t) => [t.name, t.dims.map(Number)]));
  const windows: Record<string, { k: number; s: number; p: number; size: number }> = { c0: { k: 3, s: 2, p: 1, size: 9 }, dw: { k: 3, s: 1, p: 1, size: 5 }, g2: { k: 3, s: 1, p: 0, size: 5 }, pw: { k: 1, s: 1, p: 0, size: 3 } };
  for (const l of prepared.layers) {
    const a = out[l.input];
    const ws = shapes.get(l.weight)!;
    if (l.info.op !== "Conv") {
      const k = ws[1];
      const h = new Float64Array(k * k);
      addGram(h, a, batch, k);
      const sum = new Float64Array(k);
      for (let i = 0; i < a.length; i++) sum[i % k] += a[i];
      result.set(l.info.name, { groups: 1, k, h, sum, cross: null, refSum: null, count: batch });
      continue;
    }
    const w = windows[l.info.name];
    const channels = ws[1] * l.groups;
    const g = l.groups;
    const kg = ws[1] * w.k * w.k;
    const h = new Float64Array(g * kg * kg);
    const sum = new Float64Array(g * kg);
    let count = 0;
    for (let n = 0; n < batch; n++) {
      const img = a.subarray(n * channels * w.size * w.size, (n + 1) * channels * w.size * w.size);
      const cols = im2col(img, channels, w.size, w.size, { kernel: [w.k, w.k], strides: [w.s, w.s], pads: [w.p, w.p, w.p, w.p], dilations: [1, 1] });
      count += cols.rows;
      for (let grp = 0; grp < g; grp++) {
        const part = new Float32Array(cols.rows * kg);
        for (let r = 0; r < cols.rows; r++) for (let j = 0; j < kg; j++) part[r * kg + j] = cols.data[r * cols.cols + grp * kg + j];
        const hg = new Float64Array(kg * kg);
        addGram(hg, part, cols.rows, kg);
        for (let i = 0; i < kg * kg; i++) h[grp * kg * kg + i] += hg[i];
        for (let r = 0; r < cols.rows; r++) for (let j = 0; j < kg; j++) sum[grp * kg + j] += part[r * kg + j];
      }
    }
    result.set(l.info.name, { groups: g, k: kg, h, sum, cross: null, refSum: null, count });
  }
  return result;
}

const geometry = { name: "x", layout: "NCHW" as const, channels: 3, height: 9, width: 9, fixedBatch: null };

async function* once(x: Float32Array, count: number) {
  yield { feeds: imageFeeds(geometry, x, count), count };
}

describe("layer Hessians in onnxruntime", () => {
  const prepared = prepareModel(loaded(network()));
  const taps = () =>
    prepared.layers.map((l) => {
      const node = prepared.model.graph!.node.find((n) => n.name === l.info.name)!;
      return gramTapFor(l, node, prepared.model.graph!.initializer.find((t) => t.name === l.weight)!.dims.map(Number));
    });

  it("H, Σx and the column count of every layer kind equal im2col + Σ x xᵀ", async () => {
    const x = randomInput(2 * 3 * 9 * 9, 11);
    const built = buildGramModel(prepared.model, taps());
    const grams = await collectGrams({ ...built, images: 2, batches: once(x, 2) });
    const ref = await reference(prepared, x, 2);
    assert.deepEqual([...grams.keys()], ["c0", "dw", "g2", "pw", "fc"]);
    for (const [name, r] of ref) {
      const g = grams.get(name)!;
      assert.equal(g.groups, r.groups, name);
      assert.equal(g.k, r.k, name);
      assert.equal(g.count, r.count, `${name} count`);
      const scale = Math.max(...r.h.map(Math.abs));
      // float32 products summed over at most 50 columns: relative 1e-5 of the largest entry
      assertAbsClose(g.h, r.h, 1e-5 * scale, `${name} H`);
      assertAbsClose(g.sum, r.sum, 1e-5 * Math.max(...r.sum.map(Math.abs), 1), `${name} Σx`);
    }
  });

  it("a tap with a reference tensor also gives Σ x_ref xᵀ; two images in two runs add up to one run of both", async () => {
    const x = randomInput(2 * 3 * 9 * 9, 12);
    const t = taps().map((tap) => ({ ...tap, reference: referenceName(prepared.model, tap.input) }));
    // the "quantized" model here is the float one itself, so the cross term must equal H
    const merged = mergeWithReference(prepared.model, prepared.model);
    const built = buildGramModel(merged, t);
    const half = 3 * 9 * 9;
    async function* split() {
      yield { feeds: imageFeeds(geometry, x.slice(0, half), 1), count: 1 };
      yield { feeds: imageFeeds(geometry, x.slice(half), 1), count: 1 };
    }
    const byImage = await collectGrams({ ...built, images: 2, batches: split() });
    const together = await collectGrams({ ...buildGramModel(prepared.model, taps()), images: 2, batches: once(x, 2) });
    for (const [name, g] of byImage) {
      const scale = Math.max(...g.h.map(Math.abs));
      assertAbsClose(g.cross!, g.h, 1e-6 * scale, `${name} cross = H`);
      assertAbsClose(g.refSum!, g.sum, 1e-5 * Math.max(...g.sum.map(Math.abs), 1), `${name} Σx_ref`);
      assertAbsClose(g.h, together.get(name)!.h, 1e-5 * scale, `${name} per-image sums`);
    }
  });
});
