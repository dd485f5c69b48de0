import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allocateBits } from "../../src-main/engine/quant/bitalloc.ts";
import { channelStats } from "../../src-main/engine/quant/stats.ts";
import { quantizeWeights, type QuantizedWeights } from "../../src-main/engine/quant/weights.ts";
import { assertAbsClose, assertExact, assertRelClose, gridTolerance, REL } from "./approx.ts";
import { bool, child, type Json, loadVector, num, nums, objects, product } from "./quant-vectors.ts";

function checkAffine(q: QuantizedWeights, bits: number[], inner: number): void {
  q.codes.forEach((code, i) => {
    const c = Math.floor(i / inner);
    assert.ok(code <= 2 ** bits[c] - 1, `code ${code} at ${i} exceeds ${bits[c]} bits`);
    assert.equal(q.dequantized[i], Math.fround(code * q.scale[c] + q.offset[c]), `affine map at ${i}`);
  });
}

describe("weight quantization and bias correction (weights_bias_correction.json)", () => {
  const v = loadVector("weights_bias_correction.json");
  const shape = nums(v, "weight_shape", 4);
  assertExact(shape, [6, 4, 3, 3], "weight_shape");
  const OC = shape[0];
  const inner = product(shape) / OC;
  const w = Float32Array.from(nums(v, "weight", product(shape)));
  const original = channelStats(w, 1, OC, inner);

  for (const r of objects(v, "results", 10)) {
    const cfg = child(r, "config");
    const layerBits = num(cfg, "weight_bits");
    const biasCorrection = bool(cfg, "bias_corr_weight");
    const varianceCorrection = bool(cfg, "var_corr_weight");
    it(JSON.stringify(cfg), () => {
      const own = child(r, "own_float64");
      const pc = child(own, "per_channel");
      const bits = bool(cfg, "bit_alloc_weight") ? allocateBits(original.std, layerBits) : new Array<number>(OC).fill(layerBits);
      assertExact(bits, nums(pc, "bits", OC), "bits");
      const q = quantizeWeights(w, OC, bits, { biasCorrection, varianceCorrection });

      assertRelClose(original.min, nums(pc, "min", OC), REL, "min");
      assertRelClose(original.max, nums(pc, "max", OC), REL, "max");
      assertRelClose(original.mean, nums(pc, "mean_orig", OC), REL, "mean_orig");
      assertRelClose(original.std, nums(pc, "std_orig", OC), REL, "std_orig");
      assertRelClose(q.gridScale, nums(pc, "scale", OC), REL, "scale");
      assertExact(q.zeroPoint, nums(pc, "zero_point", OC).map((z) => z + 0), "zero point");
      const meanQ = nums(pc, "mean_quant", OC);
      const shift = meanQ.map((m, c) => (biasCorrection ? original.mean[c] - m : 0));
      assertAbsClose(q.meanShift, shift, (c) => 1e-5 * q.gridScale[c], "mean shift");
      assertRelClose(q.xi, varianceCorrection ? nums(pc, "xi", OC) : new Array(OC).fill(1), REL, "xi");

      checkAffine(q, bits, inner);
      const expected = nums(r, "reference_output", product(shape));
      assertAbsClose(q.dequantized, expected, gridTolerance((i) => q.gridScale[Math.floor(i / inner)], expected), "output");

      // the corrected weights have the original per-channel mean (and std with -vcw)
      const after = channelStats(q.dequantized, 1, OC, inner);
      if (biasCorrection) assertAbsClose(after.mean, original.mean, (c) => 1e-5 * q.gridScale[c], "restored mean");
      if (varianceCorrection) assertRelClose(after.std, original.std, 1e-5, "restored std");

      const hasEq13 = "paper_eq13_literal_output" in own;
      assert.equal(hasEq13, biasCorrection && varianceCorrection, "eq. 13 output given with -bcw -vcw");
      if (hasEq13) {
        const eq13 = quantizeWeights(w, OC, bits, { biasCorrection, varianceCorrection, formula: "paper-eq13" });
        checkAffine(eq13, bits, inner);
        const lit = nums(own, "paper_eq13_literal_output", product(shape));
        assertAbsClose(eq13.dequantized, lit, gridTolerance((i) => q.gridScale[Math.floor(i / inner)], lit), "eq. 13");
        const m = channelStats(eq13.dequantized, 1, OC, inner).mean;
        assertAbsClose(m, Array.from(original.mean, (mo, c) => q.xi[c] * mo), 1e-7, "eq. 13 mean is ξ·E[W]");
      }
    });
  }

  describe("first layer forced to 8 bits", () => {
    const fShape = nums(v, "first_layer_weight_shape", 4);
    assertExact(fShape, [4, 3, 3, 3], "first_layer_weight_shape");
    const fw = Float32Array.from(nums(v, "first_layer_weight", product(fShape)));
    const fInner = product(fShape) / fShape[0];
    for (const r of objects(v, "first_layer_results", 2)) {
      const cfg: Json = child(r, "config");
      it(JSON.stringify(cfg), () => {
        assert.equal(num(cfg, "weight_bits"), 8);
        const bits = new Array<number>(fShape[0]).fill(8);
        const q = quantizeWeights(fw, fShape[0], bits, {
          biasCorrection: bool(cfg, "bias_corr_weight"),
          varianceCorrection: bool(cfg, "var_corr_weight"),
        });
        checkAffine(q, bits, fInner);
        const expected = nums(r, "reference_output", product(fShape));
        assertAbsClose(q.dequantized, expected, gridTolerance((i) => q.gridScale[Math.floor(i / fInner)], expected), "output");
      });
    }
  });
});

describe("weight quantization edge cases", () => {
  it("a 0-bit channel is constant at its min, restored to its mean, with ξ = 1", () => {
    const w = Float32Array.of(-1, 0, 3, 0.5, 1, 1.5);
    const q = quantizeWeights(w, 2, [0, 2], { biasCorrection: true, varianceCorrection: true });
    assert.equal(q.xi[0], 1);
    assertExact(q.codes.subarray(0, 3), [0, 0, 0], "codes");
    assertRelClose(Array.from(q.dequantized.subarray(0, 3)), [2 / 3, 2 / 3, 2 / 3], 1e-6, "constant at the mean");
    const plain = quantizeWeights(w, 2, [0, 2], { biasCorrection: false, varianceCorrection: false });
    assertRelClose(Array.from(plain.dequantized.subarray(0, 3)), [-1, -1, -1], 1e-6, "constant at min");
  });

  it("an all-positive channel keeps codes in range and the affine map exact", () => {
    const w = Float32Array.of(0.3, 0.7, 1.1, 2.3);
    const q = quantizeWeights(w, 1, [3], { biasCorrection: true, varianceCorrection: false });
    assert.ok(q.zeroPoint[0] < 0);
    checkAffine(q, [3], 4);
    assertExact(q.codes, [0, 1, 3, 7], "codes");
  });

  it("rejects bit-widths that do not fit a byte code", () => {
    const w = new Float32Array(4);
    assert.throws(() => quantizeWeights(w, 2, [9, 4], { biasCorrection: false, varianceCorrection: false }), RangeError);
    assert.throws(() => quantizeWeights(w, 2, [3.5, 4], { biasCorrection: false, varianceCorrection: false }), RangeError);
    assert.throws(() => quantizeWeights(w, 2, [4], { biasCorrection: false, varianceCorrection: false }), RangeError);
  });
});
