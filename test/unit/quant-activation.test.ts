// The per-conv-output composition of §5.2 built from the quant modules: statistics → bit allocation →
// ACIQ α(M_i) → clip interval → per-channel fake-quant, dynamic (one batch) and static (frozen averages).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { aciqAlpha, clipInterval } from "../../src-main/engine/quant/aciq.ts";
import { allocateBits } from "../../src-main/engine/quant/bitalloc.ts";
import { fakeQuantPerChannel, gridParams } from "../../src-main/engine/quant/grid.ts";
import { channelStats, StaticStats, type StatsArrays } from "../../src-main/engine/quant/stats.ts";
import { assertAbsClose, assertExact, assertRelClose, gridTolerance, REL } from "./approx.ts";
import { bool, child, type Json, loadVector, num, nums, objects, product, str } from "./quant-vectors.ts";

type Clipping = "no" | "laplace" | "gaus";

function clipping(c: string): Clipping {
  if (c === "no" || c === "laplace" || c === "gaus") return c;
  throw new TypeError(`unknown clipping ${c}`);
}

interface Plan {
  bits: number[];
  alpha: number[] | null;
  lo: number[];
  range: number[];
}

/** The reference's per-channel activation quantizer for one configuration. */
function plan(s: StatsArrays, layerBits: number, clip: Clipping, allocate: boolean, half: boolean): Plan {
  const C = s.mean.length;
  const bits = allocate ? allocateBits(s.std, layerBits) : new Array<number>(C).fill(layerBits);
  if (clip === "no") {
    return {
      bits, alpha: null,
      lo: Array.from(s.min, (m) => (half ? 0 : m)),
      range: Array.from(s.max, (m, c) => m - (half ? 0 : s.min[c])),
    };
  }
  // Laplace uses each channel's allocated width for k; Gaussian keeps the layer's (reference behaviour)
  const alpha = bits.map((b, c) =>
    clip === "laplace" ? aciqAlpha(s.mad[c], b, "laplace", half, "reference") : aciqAlpha(s.std[c], layerBits, "gaussian", half, "reference"));
  const iv = alpha.map((a, c) => clipInterval(a, s.mean[c], s.min[c], half));
  return { bits, alpha, lo: iv.map((i) => i.lo), range: iv.map((i) => i.range) };
}

function checkOutput(x: Float32Array, shape: number[], p: Plan, expected: number[], label: string): void {
  const [N, C, H, W] = shape;
  const out = fakeQuantPerChannel(x, C, H * W, N, p.lo, p.range, p.bits);
  const step = p.bits.map((b, c) => gridParams(p.lo[c], p.range[c], b).scale);
  assertAbsClose(out, expected, gridTolerance((i) => step[Math.floor(i / (H * W)) % C], expected), label);
}

describe("dynamic per-channel activations (aciq_per_channel_activation.json)", () => {
  const v = loadVector("aciq_per_channel_activation.json");
  const shape = nums(v, "input_shape", 4);
  const [N, C, H, W] = shape;
  const x = Float32Array.from(nums(v, "input", product(shape)));
  const s = channelStats(x, N, C, H * W);

  for (const r of objects(v, "results", 9)) {
    const cfg = child(r, "config");
    it(str(cfg, "name"), () => {
      const p = plan(s, num(cfg, "bits"), clipping(str(cfg, "clipping")), bool(cfg, "baa"), bool(cfg, "half"));
      const ref = child(r, "per_channel_reference");
      const own = child(r, "own_float64");
      assertExact(p.bits, nums(own, "bits", C), "bits");
      assert.equal("bits" in ref, bool(cfg, "baa"), "reference bits listed exactly when allocating");
      if ("bits" in ref) assertExact(p.bits, nums(ref, "bits", C), "reference bits");
      assert.equal("alpha" in ref, p.alpha !== null, "reference alpha listed exactly when clipping");
      if (p.alpha) assertRelClose(p.alpha, nums(ref, "alpha", C), REL, "alpha");
      assertRelClose(p.range, nums(ref, "range", C), REL, "range");
      assertRelClose(p.lo, nums(ref, "offset", C), REL, "offset");
      const grids = p.bits.map((b, c) => gridParams(p.lo[c], p.range[c], b));
      assertRelClose(grids.map((g) => g.scale), nums(own, "scale", C), REL, "scale");
      assertExact(grids.map((g) => g.zeroPoint), nums(own, "zero_point", C).map((z) => z + 0), "zero point");
      checkOutput(x, shape, p, nums(r, "dequantized_output", product(shape)), "output");
    });
  }
});

describe("static per-channel activations (calibration_static.json)", () => {
  const v = loadVector("calibration_static.json");
  const acc = new StaticStats(4);
  for (const b of objects(v, "calibration_batches", 3)) {
    const shape = nums(b, "shape", 4);
    acc.addPerSample(Float32Array.from(nums(b, "values", product(shape))), shape[0], shape[1], shape[2] * shape[3]);
  }
  const frozen = acc.summary().channel;
  const test: Json = child(v, "test_batch");
  const shape = nums(test, "shape", 4);
  assertExact(shape, [2, 4, 4, 4], "test batch shape");
  const x = Float32Array.from(nums(test, "values", product(shape)));
  const outputs = child(v, "static_outputs");
  assert.deepEqual(Object.keys(outputs).sort(), ["aciq_laplace_bitalloc_signed", "aciq_laplace_halfrange", "minmax_signed"]);

  it("aciq_laplace_bitalloc_signed: frozen bits, α and interval", () => {
    const p = plan(frozen, 4, "laplace", true, false);
    const check = child(v, "own_float64_check");
    assertExact(p.bits, nums(check, "bits", 4), "bits");
    assertRelClose(p.alpha ?? [], nums(check, "alpha", 4), REL, "alpha");
    assertRelClose(p.range, nums(check, "range", 4), REL, "range");
    assertRelClose(p.lo, nums(check, "offset", 4), REL, "offset");
    checkOutput(x, shape, p, nums(outputs, "aciq_laplace_bitalloc_signed", 128), "output");
  });

  it("aciq_laplace_halfrange", () => {
    checkOutput(x, shape, plan(frozen, 4, "laplace", false, true), nums(outputs, "aciq_laplace_halfrange", 128), "output");
  });

  it("minmax_signed (averaged per-image min and max)", () => {
    checkOutput(x, shape, plan(frozen, 4, "no", false, false), nums(outputs, "minmax_signed", 128), "output");
  });
});
