import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { channelStats, sampleChannelStats, sampleMinMaxMean, sampleTensorStats, StaticStats, tensorStats } from "../../src-main/engine/quant/stats.ts";
import { assertExact, assertRelClose, REL } from "./approx.ts";
import { asNums, child, list, loadVector, num, nums, objects, product, str } from "./quant-vectors.ts";

const KEYS = ["min", "max", "mean", "mad", "std"] as const;
/** The vectors call the Laplace scale "b"; we call it mad. */
const VECTOR_KEY = { min: "min", max: "max", mean: "mean", mad: "b", std: "std" } as const;

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("tensorStats (aciq_per_tensor.json)", () => {
  const v = loadVector("aciq_per_tensor.json");
  for (const c of objects(v, "cases", 3)) {
    it(str(c, "name"), () => {
      const s = tensorStats(Float32Array.from(nums(c, "input", 256)));
      const ref = child(c, "stats_reference_float32");
      const f64 = child(c, "stats_float64");
      for (const k of KEYS) {
        assertRelClose(s[k], num(ref, VECTOR_KEY[k]), REL, `${k} vs reference`);
        assertRelClose(s[k], num(f64, VECTOR_KEY[k]), 1e-9, `${k} vs float64`);
      }
    });
  }
});

describe("channelStats (aciq_per_channel_activation.json)", () => {
  it("per channel over N·H·W of a 2×6×5×5 tensor", () => {
    const v = loadVector("aciq_per_channel_activation.json");
    const shape = nums(v, "input_shape", 4);
    assertExact(shape, [2, 6, 5, 5], "input_shape");
    const s = channelStats(Float32Array.from(nums(v, "input", product(shape))), 2, 6, 25);
    const ref = child(v, "per_channel_stats_reference_float32");
    for (const k of KEYS) assertRelClose(s[k], nums(ref, VECTOR_KEY[k], 6), REL, k);
  });

  it("treats outer = 1 as a weight tensor [OC, rest]", () => {
    const w = Float32Array.of(1, 2, 3, -1, -1, -1);
    const s = channelStats(w, 1, 2, 3);
    assertRelClose(s.mean, [2, -1], 1e-15, "mean");
    assertRelClose(s.mad, [2 / 3, 0], 1e-15, "mad");
    assertRelClose(s.std, [1, 0], 1e-15, "std");
  });

  it("rejects a layout that does not match the length, and gives std 0 for a single element", () => {
    assert.throws(() => channelStats(new Float32Array(7), 1, 2, 3), RangeError);
    assert.equal(tensorStats(Float32Array.of(4)).std, 0);
  });
});

describe("static calibration (calibration_static.json)", () => {
  const v = loadVector("calibration_static.json");
  const batches = objects(v, "calibration_batches", 3).map((b) => {
    assertExact(nums(b, "shape", 4), [1, 4, 4, 4], "batch shape");
    return Float32Array.from(nums(b, "values", 64));
  });
  const perBatch = child(v, "per_batch_stats");
  const frozen = child(v, "frozen_stats_used");

  it("per-batch per-channel statistics", () => {
    batches.forEach((x, b) => {
      const s = channelStats(x, 1, 4, 16);
      for (const k of KEYS) {
        const rows = list(perBatch, VECTOR_KEY[k], 3);
        assertRelClose(s[k], asNums(rows[b], `${k}[${b}]`, 4), REL, `batch ${b} ${k}`);
      }
    });
  });

  it("frozen statistics are the per-batch averages, one image at a time", () => {
    const perSample = new StaticStats(4);
    const perBatchUnits = new StaticStats(4);
    const all = new Float32Array(3 * 64);
    batches.forEach((x, b) => {
      perSample.addPerSample(x, 1, 4, 16);
      perBatchUnits.addBatch(x, 1, 4, 16);
      all.set(x, b * 64);
    });
    const together = new StaticStats(4);
    together.addPerSample(all, 3, 4, 16);
    for (const acc of [perSample, perBatchUnits, together]) {
      const s = acc.summary();
      assert.equal(s.units, 3);
      for (const k of KEYS) assertRelClose(s.channel[k], nums(frozen, VECTOR_KEY[k], 4), REL, `frozen ${k}`);
      const mins = list(perBatch, "min", 3).map((r) => asNums(r, "min", 4));
      const maxs = list(perBatch, "max", 3).map((r) => asNums(r, "max", 4));
      assertRelClose(s.channelMin, [0, 1, 2, 3].map((c) => Math.min(...mins.map((m) => m[c]))), REL, "channelMin");
      assertRelClose(s.channelMax, [0, 1, 2, 3].map((c) => Math.max(...maxs.map((m) => m[c]))), REL, "channelMax");
    }
    // the same three images as one batch unit: statistics of the whole batch, not averages
    const oneUnit = new StaticStats(4);
    oneUnit.addBatch(all, 3, 4, 16);
    const direct = channelStats(all, 3, 4, 16);
    for (const k of KEYS) assertRelClose(oneUnit.summary().channel[k], direct[k], 1e-15, `batch unit ${k}`);
  });
});

describe("per-sample statistics and the streaming accumulator", () => {
  const rand = seeded(7);
  const N = 5;
  const C = 3;
  const HW = 12;
  const x = Float32Array.from({ length: N * C * HW }, (_, i) => (rand() - 0.4) * (1 + (i % 7)));

  it("sampleChannelStats matches channelStats of each sample alone", () => {
    const s = sampleChannelStats(x, N, C, HW);
    for (let n = 0; n < N; n++) {
      const alone = channelStats(x.subarray(n * C * HW, (n + 1) * C * HW), 1, C, HW);
      for (const k of KEYS) assertRelClose(s[k].subarray(n * C, (n + 1) * C), alone[k], 1e-15, `n${n} ${k}`);
    }
  });

  it("per-tensor statistics: per-sample averages, averaged extremes and global extremes", () => {
    const acc = new StaticStats(C);
    acc.addPerSample(x, N, C, HW);
    const s = acc.summary();
    const perSample = sampleTensorStats(x, N);
    for (const k of KEYS) assertRelClose(s.tensor[k], perSample[k].reduce((a, b) => a + b, 0) / N, 1e-12, k);
    const mm = sampleMinMaxMean(x, N);
    assertRelClose([s.tensor.sampleMin, s.tensor.sampleMax], [mm.min, mm.max], 1e-12, "sample extremes");
    const whole = tensorStats(x);
    assertRelClose([s.tensorMin, s.tensorMax], [whole.min, whole.max], 0, "global extremes");

    const batchUnit = new StaticStats(C);
    batchUnit.addBatch(x, N, C, HW);
    const b = batchUnit.summary();
    for (const k of KEYS) assertRelClose(b.tensor[k], whole[k], 1e-15, `batch ${k}`);
    assertRelClose([b.tensor.sampleMin, b.tensor.sampleMax], [mm.min, mm.max], 1e-12, "batch sample extremes");
  });

  it("keeps exact averages over many units", () => {
    const acc = new StaticStats(2);
    let meanSum = 0;
    for (let u = 0; u < 2000; u++) {
      const unit = Float32Array.of(u, u + 2, -u, -u - 4);
      acc.addBatch(unit, 1, 2, 2);
      meanSum += u + 1;
    }
    const s = acc.summary();
    assert.equal(s.units, 2000);
    assertRelClose(s.channel.mean[0], meanSum / 2000, 1e-15, "mean");
    assertRelClose(s.channel.std[1], Math.SQRT2 * 2, 1e-15, "std");
    assert.equal(s.channelMax[0], 2001);
    assert.equal(s.channelMin[1], -2003);
  });

  it("refuses a wrong channel count and an empty summary", () => {
    const acc = new StaticStats(2);
    assert.throws(() => acc.summary(), /no calibration data/);
    assert.throws(() => acc.addBatch(new Float32Array(6), 1, 3, 2), RangeError);
  });
});
