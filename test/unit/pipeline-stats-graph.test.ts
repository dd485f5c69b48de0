// The calibration statistics that onnxruntime reduces inside the graph must equal the engine's own
// TypeScript statistics (checked against the authors' vectors) on the same real activations.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { encodeModel, loadModel } from "../../src-main/engine/onnx/model-io.ts";
import { prepareModel, requireImageInput } from "../../src-main/engine/onnx/prepare.ts";
import { collectStatistics, tensorFromChannels } from "../../src-main/engine/pipeline/calibrate.ts";
import { withOutputs } from "../../src-main/engine/onnx/graph.ts";
import { imageBatches } from "../../src-main/engine/pipeline/quantize.ts";
import { imageFeeder } from "../../src-main/engine/data/feeds.ts";
import { openSession, runBatch, tensorData } from "../../src-main/engine/pipeline/runtime.ts";
import { sampleChannelStats, sampleTensorStats, StaticStats } from "../../src-main/engine/quant/stats.ts";
import { assertRelClose } from "./approx.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");

describe("in-graph calibration statistics", () => {
  it("equal the TypeScript reduction of the same ResNet-20 activations", async () => {
    const prepared = prepareModel(await loadModel(path.join(fixtures, "models/resnet20-cifar10.onnx")));
    const geometry = requireImageInput(prepared);
    const set = await scanImages(path.join(fixtures, "cifar10-train-1000"), { limit: 40, seed: 9 });
    const taps = prepared.layers.map((l) => ({ tensor: l.output, perChannel: l.info.op === "Conv", wholeTensor: true }));
    const fromGraph = await collectStatistics({
      model: prepared.model, taps, images: set.files.length,
      batches: imageFeeder(set, geometry, { preset: "imagenet" }).batches(64), histograms: "none",
    });

    const names = taps.map((t) => t.tensor);
    const session = await openSession(encodeModel(withOutputs(prepared.model, names)));
    const reference = new Map<string, StaticStats>();
    for await (const b of imageBatches(set, geometry, { preset: "imagenet" })) {
      const out = await runBatch(session, geometry, b.data, b.count, names);
      for (const name of names) {
        const dims = out[name].dims as number[];
        const channels = dims.length === 4 ? dims[1] : 1;
        const inner = out[name].size / b.count / channels;
        if (!reference.has(name)) reference.set(name, new StaticStats(channels));
        reference.get(name)!.addPerSample(tensorData(out[name]), b.count, channels, inner);
      }
    }
    await session.release();

    assert.equal(fromGraph.size, names.length);
    for (const name of names) {
      const g = fromGraph.get(name)!;
      const r = reference.get(name)!.summary();
      assert.equal(g.samples, 40);
      if (g.perChannel) {
        for (const k of ["min", "max", "mean", "mad", "std"] as const) assertRelClose(g.perChannel[k], r.channel[k], 1e-4, `${name} channel ${k}`, 1e-6);
      }
      for (const k of ["min", "max", "mean", "mad", "std"] as const) assertRelClose(g.perTensor[k], r.tensor[k], 1e-4, `${name} tensor ${k}`, 1e-6);
      assertRelClose([g.globalMin, g.globalMax], [r.tensorMin, r.tensorMax], 1e-6, `${name} extremes`);
    }
  });

  it("derive whole-tensor moments from per-channel ones exactly, and refuse the deviation they cannot give", () => {
    const n = 3, channels = 4, spatial = 5;
    const x = Float32Array.from({ length: n * channels * spatial }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 7)));
    const derived = tensorFromChannels(sampleChannelStats(x, n, channels, spatial), n, channels, spatial);
    const direct = sampleTensorStats(x, n);
    for (const k of ["min", "max", "mean", "std"] as const) assertRelClose(derived[k], direct[k], 1e-12, k, 1e-12);
    assert.ok(derived.mad.every(Number.isNaN));
    const pointwise = Float32Array.from({ length: n * channels }, (_, i) => Math.cos(i));
    const one = tensorFromChannels(sampleChannelStats(pointwise, n, channels, 1), n, channels, 1);
    assertRelClose(one.mad, sampleTensorStats(pointwise, n).mad, 1e-12, "mad at 1x1", 1e-12);
  });
});
