import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { midtreadAlphaMultiplier, midtreadQuantize } from "../../src-main/engine/quant/midtread.ts";
import { channelStats } from "../../src-main/engine/quant/stats.ts";
import { assertAbsClose, assertExact, assertRelClose, gridTolerance, REL } from "./approx.ts";
import { child, loadVector, num, nums } from "./quant-vectors.ts";

describe("mid-tread VLC quantizer (midtread_vlc.json)", () => {
  const v = loadVector("midtread_vlc.json");
  const shape = nums(v, "input_shape", 2);
  assertExact(shape, [4, 40], "input_shape");
  const [C, L] = shape;
  const x = Float32Array.from(nums(v, "input", C * L));
  const target = num(v, "target_bits");
  const stats = channelStats(x, 1, C, L);
  const results = child(v, "results");

  for (const [key, halfRange] of [["symmetric", false], ["unsigned", true]] as const) {
    it(key, () => {
      const ref = child(results, key);
      const r = midtreadQuantize(x, 1, C, L, target, halfRange);
      assertExact(r.bins, nums(ref, "bins_per_channel", C), "bins");
      assertRelClose(r.alphaOverB, nums(ref, "alpha_over_b", C), REL, "α/b");
      const step = r.bins.map((w, c) => {
        const alpha = r.alphaOverB[c] * stats.mad[c];
        return halfRange ? (Math.max(stats.mean[c], 0) + alpha) / (2 * w) : (2 * alpha) / w;
      });
      const expected = nums(ref, "output", C * L);
      assertAbsClose(r.output, expected, gridTolerance((i) => step[Math.floor(i / L)], expected), "output");
    });
  }

  it("collapses a channel with no spread to its mean (signed) or 0 (half-range)", () => {
    const t = Float32Array.of(0.5, 0.5, 0.5, 0.5, -1, 2, 0, 1);
    assertExact(midtreadQuantize(t, 1, 2, 4, 4, false).output.subarray(0, 4), [0.5, 0.5, 0.5, 0.5], "signed");
    const dead = Float32Array.of(-0.5, -0.5, -0.5, -0.5, -1, 2, 0, 1);
    assertExact(midtreadQuantize(dead, 1, 2, 4, 4, true).output.subarray(0, 4), [0, 0, 0, 0], "half-range");
  });

  it("interpolation table: 0 at 0 bins, exact knots, exact optimum beyond the last knot", () => {
    assert.equal(midtreadAlphaMultiplier(0, false), 0);
    assert.ok(midtreadAlphaMultiplier(5000, false) > midtreadAlphaMultiplier(900, false));
    assert.equal(midtreadAlphaMultiplier(6, false), midtreadAlphaMultiplier(3, true));
  });
});
