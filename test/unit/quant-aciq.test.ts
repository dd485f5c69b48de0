import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { aciqAlpha, aciqConstant, clipInterval, clipMse, optimalClipMultiplier, type Prior, REFERENCE_ACIQ_CONSTANTS, solveAciqConstant } from "../../src-main/engine/quant/aciq.ts";
import { fakeQuantInto, gridParams } from "../../src-main/engine/quant/grid.ts";
import { Histogram, histogramQuantile, mseSearchInterval, percentileInterval } from "../../src-main/engine/quant/histogram.ts";
import { midtreadAlphaMultiplier } from "../../src-main/engine/quant/midtread.ts";
import { tensorStats } from "../../src-main/engine/quant/stats.ts";
import { assertAbsClose, assertRelClose, gridTolerance, REL } from "./approx.ts";
import { bool, child, type Json, loadVector, num, nums, objects, str } from "./quant-vectors.ts";

function byBits(o: Json, from: number, to: number): number[] {
  const keys = Object.keys(o).map(Number).sort((a, b) => a - b);
  assert.deepEqual(keys, Array.from({ length: to - from + 1 }, (_, i) => from + i), "bit-width keys");
  return keys.map((k) => num(o, String(k)));
}

function prior(name: string): Prior {
  if (name === "laplace" || name === "gaussian") return name;
  throw new TypeError(`unknown prior ${name}`);
}

describe("ACIQ constants (aciq_constants.json)", () => {
  const v = loadVector("aciq_constants.json");

  it("exact constants for 0–9 bits, both priors, by bisection", () => {
    byBits(child(v, "laplace_exact"), 0, 9).forEach((k, m) => assertRelClose(solveAciqConstant(m, "laplace"), k, 1e-9, `laplace ${m}`));
    byBits(child(v, "gaussian_exact"), 0, 9).forEach((k, m) => assertRelClose(solveAciqConstant(m, "gaussian"), k, 1e-9, `gaussian ${m}`));
  });

  it("half-range exact constants are the signed ones a bit higher", () => {
    byBits(child(v, "half_laplace_exact_from_half_mse"), 0, 8).forEach((k, m) =>
      assertRelClose(aciqConstant(m, "laplace", true, "exact"), k, 1e-9, `half laplace ${m}`));
  });

  it("reference tables are the authors' 2-decimal constants", () => {
    const ref = child(v, "reference_code");
    const tables: [Prior, boolean, string, number][] = [
      ["laplace", false, "laplace_sym", 0], ["laplace", true, "laplace_pos", 0],
      ["gaussian", false, "gaussian_sym", 1], ["gaussian", true, "gaussian_pos", 1],
    ];
    for (const [p, half, key, from] of tables) {
      const expected = byBits(child(ref, key), from, 8);
      const table = half ? REFERENCE_ACIQ_CONSTANTS[p].halfRange : REFERENCE_ACIQ_CONSTANTS[p].signed;
      assert.deepEqual(Object.keys(table).map(Number), expected.map((_, i) => from + i), key);
      expected.forEach((k, i) => assert.equal(aciqConstant(from + i, p, half, "reference"), k, `${key} ${from + i}`));
    }
  });

  it("agrees with the constants printed in the reference's comments (bits 2…)", () => {
    const printed = child(v, "reference_comment_values");
    for (const p of ["laplace", "gaussian"] as const) {
      // printed from the authors' notebook to 8 decimals, with its own optimiser's error (~2e-7 relative)
      nums(printed, p, 7).forEach((k, i) => assertRelClose(solveAciqConstant(i + 2, p), k, 1e-6, `${p} ${i + 2}`));
    }
  });

  it("MSE model samples", () => {
    for (const s of objects(v, "mse_samples", 38)) {
      const got = clipMse(num(s, "alpha"), num(s, "scale_param"), 2 ** num(s, "bits"), prior(str(s, "prior")));
      assertRelClose(got, num(s, "mse"), 1e-9, `${str(s, "prior")} M=${num(s, "bits")} α=${num(s, "alpha")} σ=${num(s, "scale_param")}`);
    }
  });

  it("non-power-of-two bin counts: exact optimum and the reference's interpolated table", () => {
    const npt = child(v, "non_power_of_two_bins");
    for (const e of objects(npt, "exact", 8)) {
      assertRelClose(optimalClipMultiplier(num(e, "bins"), "laplace"), num(e, "alpha_over_b"), 1e-9, `exact ω=${num(e, "bins")}`);
    }
    for (const e of objects(npt, "reference_interpolated", 8)) {
      assertRelClose(midtreadAlphaMultiplier(num(e, "bins"), false), num(e, "alpha_over_b"), REL, `interpolated ω=${num(e, "bins")}`);
    }
  });

  it("falls back to the exact solution outside the reference table, and rejects bad widths", () => {
    assert.equal(aciqConstant(4.5, "laplace", false, "reference"), solveAciqConstant(4.5, "laplace"));
    assert.equal(aciqConstant(0, "gaussian", false, "reference"), solveAciqConstant(0, "gaussian"));
    assert.equal(aciqConstant(0, "gaussian", true, "reference"), solveAciqConstant(1, "gaussian"));
    assert.equal(aciqConstant(9, "laplace", true, "reference"), solveAciqConstant(10, "laplace"));
    const k = aciqConstant(3.5, "laplace", false, "exact");
    assert.ok(k > solveAciqConstant(3, "laplace") && k < solveAciqConstant(4, "laplace"), "monotone between integer widths");
    assert.throws(() => aciqConstant(-1, "laplace", false, "exact"), RangeError);
    assert.throws(() => aciqConstant(NaN, "laplace", false, "reference"), RangeError);
  });
});

describe("per-tensor ACIQ (aciq_per_tensor.json)", () => {
  const v = loadVector("aciq_per_tensor.json");
  for (const c of objects(v, "cases", 3)) {
    const input = Float32Array.from(nums(c, "input", 256));
    const stats = tensorStats(input);
    for (const r of objects(c, "results", 16)) {
      const p = prior(str(r, "prior"));
      const bits = num(r, "bits");
      const half = bool(r, "half_range");
      it(`${str(c, "name")} ${p} ${bits}-bit ${half ? "half-range" : "signed"}`, () => {
        const alpha = aciqAlpha(p === "laplace" ? stats.mad : stats.std, bits, p, half, "reference");
        assertRelClose(alpha, num(r, "alpha"), REL, "alpha");
        const iv = clipInterval(alpha, stats.mean, stats.min, half);
        assertRelClose(iv.range, num(r, "range"), REL, "range");
        assertRelClose(iv.lo, num(r, "offset"), REL, "offset");
        const own = child(r, "own_float64");
        assertRelClose([num(own, "alpha"), num(own, "range"), num(own, "offset")], [alpha, iv.range, iv.lo], REL, "float64 α, range, offset");
        const withOutput = bits === 2 || bits === 4;
        assert.equal("dequantized_output" in r, withOutput, "outputs are given for bits 2 and 4 only");
        if (withOutput) {
          const g = gridParams(iv.lo, iv.range, bits);
          assertRelClose(g.scale, num(own, "scale"), REL, "scale");
          assert.equal(g.zeroPoint, num(own, "zero_point") + 0, "zero point (±0 alike)");
          const expected = nums(r, "dequantized_output", 256);
          const out = fakeQuantInto(new Float32Array(256), input, iv.lo, iv.range, bits);
          assertAbsClose(out, expected, gridTolerance(g.scale, expected), "output");
        }
      });
    }
  }
});

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
}

describe("histogram calibrators", () => {
  it("percentile of a uniform sample", () => {
    const rand = seeded(1);
    const x = Float32Array.from({ length: 200_000 }, () => 2 + 4 * rand());
    const h = new Histogram(2, 6, 1000);
    h.add(x);
    assertRelClose(histogramQuantile(h, 0.5), 4, 0.005, "median");
    const iv = percentileInterval(h, 99, false);
    assertRelClose([iv.lo, iv.lo + iv.range], [2.04, 5.96], 0.002, "99% interval");
    const half = percentileInterval(h, 99, true);
    assert.equal(half.lo, 0);
    assertRelClose(half.range, 5.96, 0.002, "half-range top");
    assert.throws(() => percentileInterval(h, 40, false), RangeError);
  });

  it("merges histograms and keeps out-of-range values in the edge bins", () => {
    const a = new Histogram(0, 1, 4);
    const b = new Histogram(0, 1, 4);
    a.add([-5, 0.1, 0.3]);
    b.add([0.6, 0.99, 1, 7]);
    a.merge(b);
    assert.deepEqual(Array.from(a.counts), [2, 1, 1, 3]);
    assert.throws(() => a.merge(new Histogram(0, 2, 4)), RangeError);
    const constant = new Histogram(3, 3, 8);
    constant.add([3, 3]);
    assert.equal(histogramQuantile(constant, 0.9), 3);
  });

  it("MSE search on a Laplace sample lands near the ACIQ optimum", () => {
    const rand = seeded(2);
    const b = 0.8;
    const mean = 0.3;
    const x = Float32Array.from({ length: 200_000 }, () => {
      const u = rand() - 0.5;
      return mean - b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    });
    const s = tensorStats(x);
    for (const bits of [3, 4]) {
      for (const half of [false, true]) {
        const h = new Histogram(s.min, s.max, 4096);
        h.add(x);
        const searched = mseSearchInterval(h, bits, half);
        const aciq = clipInterval(aciqAlpha(s.mad, bits, "laplace", half, "exact"), s.mean, s.min, half);
        const top = (iv: { lo: number; range: number }): number => iv.lo + iv.range;
        assertRelClose(top(searched), top(aciq), 0.15, `${bits}-bit ${half ? "half" : "signed"} clip`);
        // the ACIQ interval's measured error is within a few percent of the searched minimum
        const mse = (iv: { lo: number; range: number }): number => {
          const q = fakeQuantInto(new Float32Array(x.length), x, iv.lo, iv.range, bits);
          let sum = 0;
          for (let i = 0; i < x.length; i++) sum += ((half ? Math.max(x[i], 0) : x[i]) - q[i]) ** 2;
          return sum / x.length;
        };
        const best = mse(searched);
        assertRelClose(best, searched.mse, 0.05, "histogram MSE estimate");
        assert.ok(mse(aciq) < best * 1.1, `${bits}-bit ${half}: ACIQ MSE ${mse(aciq)} vs searched ${best}`);
      }
    }
  });
});
