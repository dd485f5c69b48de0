import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fakeQuantInto, fakeQuantKernel, fakeQuantPerChannel, fakeQuantValue, gridParams, quantizeValue, roundHalfEven } from "../../src-main/engine/quant/grid.ts";
import { assertAbsClose, assertExact, assertRelClose, gridTolerance, REL } from "./approx.ts";
import { bool, loadVector, num, nums, objects, str } from "./quant-vectors.ts";

describe("roundHalfEven", () => {
  it("sends exact ties to the even neighbour and everything else to the nearest integer", () => {
    const cases: [number, number][] = [
      [0.5, 0], [1.5, 2], [2.5, 2], [-0.5, -0], [-1.5, -2], [-2.5, -2], [3.5, 4],
      [2.4999999, 2], [2.5000001, 3], [-2.5000001, -3], [7, 7], [1e15 + 0.5, 1e15],
    ];
    for (const [v, want] of cases) assert.equal(roundHalfEven(v), want, `roundHalfEven(${v})`);
  });
});

describe("grid primary path (quantize_dequantize.json per_channel)", () => {
  const v = loadVector("quantize_dequantize.json");
  const inputs = nums(v, "inputs");
  const x = Float32Array.from(inputs);
  const cases = objects(v, "per_channel", 6);

  for (const c of cases) {
    it(str(c, "note"), () => {
      // the reference received its clip interval as float32 tensors; the 0-bit case's zero point depends on it
      const lo = Math.fround(num(c, "offset"));
      const range = Math.fround(num(c, "range"));
      const bits = num(c, "bits");
      const p = gridParams(lo, range, bits);
      assertRelClose(p.scale, num(c, "scale"), REL, "scale");
      assert.equal(p.zeroPoint, num(c, "zero_point") + 0, "zero point (±0 alike)");
      assertExact(inputs.map((xi) => quantizeValue(xi, p)), nums(c, "codes", inputs.length), "codes");
      const out = fakeQuantInto(new Float32Array(x.length), x, lo, range, bits);
      assertExact(out, inputs.map((xi) => Math.fround(fakeQuantValue(xi, p))), "fakeQuantInto vs fakeQuantValue");
      for (const key of ["reference_output", "own_float64_output"]) {
        const expected = nums(c, key, inputs.length);
        assertAbsClose(out, expected, gridTolerance(p.scale, expected), key);
      }
    });
  }

  it("scalar-bits channel 0 matches the first case", () => {
    const c = cases[0];
    const out = fakeQuantInto(new Float32Array(x.length), x, num(c, "offset"), num(c, "range"), num(c, "bits"));
    const expected = nums(v, "scalar_bits_channel0_reference_output", inputs.length);
    assertAbsClose(out, expected, gridTolerance(num(c, "scale"), expected), "output");
  });

  it("per-channel fake-quant treats each case as one channel (outer 1 and outer 2)", () => {
    const C = cases.length;
    const lo = cases.map((c) => num(c, "offset"));
    const range = cases.map((c) => num(c, "range"));
    const bits = cases.map((c) => num(c, "bits"));
    for (const outer of [1, 2]) {
      const t = new Float32Array(outer * C * x.length);
      for (let n = 0; n < outer; n++) for (let ch = 0; ch < C; ch++) t.set(x, (n * C + ch) * x.length);
      const out = fakeQuantPerChannel(t, C, x.length, outer, lo, range, bits);
      for (let n = 0; n < outer; n++) {
        for (let ch = 0; ch < C; ch++) {
          const got = out.subarray((n * C + ch) * x.length, (n * C + ch + 1) * x.length);
          const expected = nums(cases[ch], "reference_output");
          assertAbsClose(got, expected, gridTolerance(num(cases[ch], "scale"), expected), `n${n} c${ch}`);
        }
      }
    }
  });

  it("rejects mismatched layouts", () => {
    assert.throws(() => fakeQuantPerChannel(new Float32Array(5), 2, 2, 1, [0, 0], [1, 1], [4, 4]), RangeError);
    assert.throws(() => fakeQuantPerChannel(new Float32Array(4), 2, 2, 1, [0], [1, 1], [4, 4]), RangeError);
  });
});

describe("grid CUDA-kernel path (quantize_dequantize.json kernel_path)", () => {
  const v = loadVector("quantize_dequantize.json");
  const x = Float32Array.from(nums(v, "inputs"));
  for (const c of objects(v, "kernel_path", 3)) {
    it(str(c, "note"), () => {
      const lo = num(c, "offset");
      const range = num(c, "range");
      const bits = num(c, "bits");
      assert.equal(lo < 0 && lo + range > 0, bool(c, "zero_point_used"), "zero-point rule");
      const step = range / (2 ** bits - 1);
      const out = fakeQuantKernel(x, lo, range, bits);
      for (const key of ["kernel_port_output", "own_float64_output"]) {
        const expected = nums(c, key, x.length);
        assertAbsClose(out, expected, gridTolerance(step, expected), key);
      }
    });
  }

  it("breaks .5 ties in code space upwards where the primary path goes to even", () => {
    // codes 4.5 and 2.5 (zero point 4, step 0.25)
    const ties = Float32Array.of(0.125, -0.375);
    assertExact(fakeQuantKernel(ties, -1, 3.75, 4), [0.25, -0.25], "kernel");
    assertExact(fakeQuantInto(new Float32Array(2), ties, -1, 3.75, 4), [0, -0.5], "primary");
  });

  it("returns the input unchanged for a non-positive range, and rejects 0 bits", () => {
    assertExact(fakeQuantKernel(x, 0.3, 0, 8), x, "zero range");
    assert.throws(() => fakeQuantKernel(x, -1, 2, 0), RangeError);
  });
});
