// Weight clipping: the searched interval never quantizes a channel worse than its full range, clips
// outliers where that helps, and the symmetric form lands its zero point where integer runtimes need it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mulberry32 } from "../../src-main/engine/random.ts";
import { fakeQuantValue, gridParams } from "../../src-main/engine/quant/grid.ts";
import { aciqWeightInterval, fullInterval, mseWeightInterval, symmetricInterval, weightClipIntervals, type WeightInterval } from "../../src-main/engine/quant/weight-clip.ts";

function laplace(n: number, seed: number): Float64Array {
  const r = mulberry32(seed);
  return Float64Array.from({ length: n }, () => {
    const u = r() - 0.5;
    return -0.05 * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  });
}

function sse(w: ArrayLike<number>, iv: WeightInterval, bits: number): number {
  const g = gridParams(iv.lo, iv.range, bits);
  let e = 0;
  for (let i = 0; i < w.length; i++) e += (w[i] - fakeQuantValue(w[i], g)) ** 2;
  return e;
}

describe("weight clipping", () => {
  it("the MSE search never does worse than the full range, and clips a Laplace channel with an outlier", () => {
    for (const bits of [2, 3, 4, 8]) {
      for (let seed = 0; seed < 10; seed++) {
        const w = laplace(288, seed);
        w[seed] = 0.6; // an outlier, about 12 b
        for (const symmetric of [false, true]) {
          const full = fullInterval(w, 0, w.length, bits, symmetric);
          const iv = mseWeightInterval(w, 0, w.length, bits, { symmetric });
          assert.ok(sse(w, iv, bits) <= sse(w, full, bits), `bits ${bits} seed ${seed}`);
          if (bits <= 4) assert.ok(iv.range < 0.95 * full.range, `bits ${bits} seed ${seed}: range ${iv.range} of ${full.range}`);
        }
      }
    }
  });

  it("symmetric grids have zero point 2^(bits−1) and reach ±α with the top code", () => {
    for (const bits of [2, 4, 8]) {
      const iv = symmetricInterval(0.7, bits);
      const g = gridParams(iv.lo, iv.range, bits);
      assert.equal(g.zeroPoint, 2 ** (bits - 1));
      assert.ok(Math.abs((g.qmax - g.zeroPoint) * g.scale - 0.7) < 1e-12);
      assert.ok(Math.abs(fakeQuantValue(-0.7, g) + 0.7) < 1e-12, "−α is on the grid");
      const w = laplace(100, bits);
      const s = mseWeightInterval(w, 0, 100, bits, { symmetric: true });
      assert.equal(gridParams(s.lo, s.range, bits).zeroPoint, 2 ** (bits - 1), "searched symmetric grid keeps it");
    }
  });

  it("an element with no importance is ignored: its outlier is clipped away", () => {
    const w = Float64Array.from([-0.1, -0.05, 0, 0.05, 0.1, 2.0]);
    const importance = [1, 1, 1, 1, 1, 0];
    const iv = mseWeightInterval(w, 0, w.length, 2, { importance, minFraction: 0.01 });
    assert.ok(iv.lo + iv.range < 0.3, `upper end ${iv.lo + iv.range}`);
    const plain = mseWeightInterval(w, 0, w.length, 2, { minFraction: 0.01 });
    assert.ok(plain.lo + plain.range > 1, "without importance the outlier dominates");
  });

  it("ACIQ on weights stays inside [min, max] and clips at k(4)·b about the mean", () => {
    const w = laplace(1000, 3);
    const iv = aciqWeightInterval(w, 0, w.length, 4);
    assert.ok(iv.lo >= Math.min(...w) && iv.lo + iv.range <= Math.max(...w) + 1e-15);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const b = w.reduce((a, v) => a + Math.abs(v - mean), 0) / w.length;
    assert.ok(Math.abs(iv.lo + iv.range - Math.min(Math.max(...w), mean + 5.028640 * b)) < 1e-5 * b);
  });

  it("per channel: each row gets its own interval; a 0-bit channel keeps its range", () => {
    const a = laplace(50, 1);
    const b = laplace(50, 2).map((v) => 10 * v);
    const w = Float64Array.from([...a, ...b, ...a]);
    const r = weightClipIntervals(w, 3, [4, 4, 0], "mse");
    assert.ok(r.range[1] > 5 * r.range[0]);
    const full = fullInterval(w, 100, 50, 0, false);
    assert.equal(r.lo[2], full.lo);
    assert.equal(r.range[2], full.range);
  });
});
