import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allocateBits, bitsSinglePass, type BitRounding, eq10Bins, fixedTargetAllocation, greedyAllocation } from "../../src-main/engine/quant/bitalloc.ts";
import { midtreadBins } from "../../src-main/engine/quant/midtread.ts";
import { assertExact, assertRelClose, REL } from "./approx.ts";
import { child, list, loadVector, num, nums, objects, str } from "./quant-vectors.ts";

function rounding(r: string): BitRounding {
  if (r === "round" || r === "ceil") return r;
  throw new TypeError(`unknown rounding ${r}`);
}

const v = loadVector("bit_allocation.json");
const cases = objects(v, "cases", 7);

describe("bit allocation (bit_allocation.json)", () => {
  for (const c of cases) {
    const alpha = nums(c, "alpha");
    describe(str(c, "name"), () => {
      for (const r of objects(c, "results", 8)) {
        const target = num(r, "target_avg_bits");
        const mode = rounding(str(r, "rounding"));
        it(`target ${target}, ${mode}`, () => {
          const bins = eq10Bins(alpha, target);
          assertRelClose(bins, nums(r, "eq10_continuous_bins", alpha.length), REL, "eq. 10 bins");
          const log2 = list(r, "eq10_log2_bins", alpha.length);
          log2.forEach((l, i) => {
            if (l === null) assert.equal(bins[i], 0, `bins[${i}] is 0 where log2 is null`);
            else assertRelClose(Math.log2(bins[i]), typeof l === "number" ? l : NaN, REL, `log2 bins[${i}]`, 1e-9);
          });
          assertExact(bitsSinglePass(alpha, target, mode), nums(r, "single_pass_bits", alpha.length), "single pass");
          const { bits, steps } = fixedTargetAllocation(alpha, target, mode);
          assertExact(bits, nums(r, "fixed_target_bits", alpha.length), "fixed target");
          assertExact(bits, nums(r, "own_fixed_target_bits", alpha.length), "own fixed target");
          assertExact(allocateBits(alpha, target, { rounding: mode }), bits, "allocateBits default");
          assert.equal(bits.reduce((a, b) => a + b, 0) / bits.length, num(r, "fixed_target_mean_bits"), "mean bits");
          const trace = objects(r, "own_trace");
          assert.equal(steps.length, trace.length, "iterations");
          trace.forEach((t, i) => {
            assertRelClose(steps[i].target, num(t, "target"), 1e-12, `trace[${i}].target`);
            assertRelClose(steps[i].meanBits, num(t, "mean_bits"), 1e-12, `trace[${i}].mean_bits`);
          });
        });
      }
      it("mid-tread bin counts for target 4", () => {
        const mt = child(c, "midtread_bins_target4");
        assertRelClose(eq10Bins(alpha, 4), nums(mt, "omega", alpha.length), REL, "omega");
        assertExact(midtreadBins(alpha, 4), nums(mt, "omega_rounded", alpha.length), "rounded omega");
      });
    });
  }
});

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
}

describe("strict (greedy) allocation", () => {
  it("never exceeds C·goal, on every vector case and on random layers", () => {
    const rand = seeded(3);
    const sets = cases.map((c) => nums(c, "alpha"));
    for (let k = 0; k < 200; k++) {
      const n = 1 + Math.floor(rand() * 64);
      sets.push(Array.from({ length: n }, () => (rand() < 0.05 ? 0 : Math.exp(3 * (rand() - 0.5)))));
    }
    for (const alpha of sets) {
      for (const goal of [0, 1, 2, 2.7, 3, 3.5, 4, 5.3, 8, 9]) {
        const bits = allocateBits(alpha, goal, { strict: true });
        const total = bits.reduce((a, b) => a + b, 0);
        assert.ok(total <= alpha.length * goal + 1e-9, `Σbits ${total} > ${alpha.length}·${goal}`);
        assert.ok(bits.every((b) => Number.isInteger(b) && b >= 0 && b <= 8), `bits out of [0, 8]: ${bits}`);
        const live = alpha.filter((a) => a > 0).length;
        assert.equal(total, Math.min(Math.floor(alpha.length * goal + 1e-9), 8 * live), "uses the whole budget it can");
      }
    }
  });

  it("stays within one bit of the continuous eq. 10 optimum with the same bit budget", () => {
    for (const name of ["lognormal_64_channels", "lognormal_16_channels", "eight_channels_spread"]) {
      const alpha = nums(cases.find((c) => str(c, "name") === name) ?? {}, "alpha");
      const C = alpha.length;
      for (const goal of [3, 4, 5]) {
        // eq. 10 in bits: M*_i = goal + (2/3)(log2 α_i − mean log2 α), so that mean M* = goal
        const logs = alpha.map(Math.log2);
        const meanLog = logs.reduce((a, b) => a + b, 0) / C;
        const optimum = logs.map((l) => goal + (2 / 3) * (l - meanLog));
        if (!optimum.every((m) => m >= 0 && m <= 8)) continue;
        const bits = greedyAllocation(alpha, goal);
        bits.forEach((b, i) => assert.ok(Math.abs(b - optimum[i]) <= 1 + 1 / C, `${name} goal ${goal} ch ${i}: ${b} vs ${optimum[i]}`));
      }
    }
  });

  it("matches the reference where the reference lands exactly on budget", () => {
    const alpha = nums(cases.find((c) => str(c, "name") === "equal_channels") ?? {}, "alpha");
    assertExact(greedyAllocation(alpha, 4), [4, 4, 4, 4, 4], "equal channels");
    assertExact(greedyAllocation(alpha, 3.5), [4, 4, 3, 3, 3], "fractional goal");
    // priorities α²/8^M: channel 0 earns one extra bit per factor 2^{3/2} of α
    assertExact(greedyAllocation([4, 1], 4), [5, 3], "budget split follows α^{2/3}");
  });

  it("rejects negative or non-finite statistics", () => {
    assert.throws(() => allocateBits([1, -1], 4), RangeError);
    assert.throws(() => allocateBits([1, NaN], 4, { strict: true }), RangeError);
    assert.throws(() => allocateBits([], 4), RangeError);
  });

  it("gives a layer of dead channels the uniform allocation instead of NaN", () => {
    assertExact(allocateBits([0, 0, 0], 4), [4, 4, 4], "all dead");
  });
});
