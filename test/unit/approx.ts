// Tolerance comparisons that say which element failed and by how much.
import assert from "node:assert/strict";

type Numbers = ArrayLike<number>;

function checkLength(actual: Numbers, expected: Numbers, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length ${actual.length}, expected ${expected.length}`);
}

/** |a − e| ≤ rel·|e| element-wise; `floor` is the absolute slack where e is (near) zero. */
export function assertRelClose(actual: Numbers | number, expected: Numbers | number, rel: number, label: string, floor = 1e-12): void {
  const a = typeof actual === "number" ? [actual] : actual;
  const e = typeof expected === "number" ? [expected] : expected;
  checkLength(a, e, label);
  for (let i = 0; i < e.length; i++) {
    const tol = Math.max(rel * Math.abs(e[i]), floor);
    if (!(Math.abs(a[i] - e[i]) <= tol)) {
      assert.fail(`${label}[${i}]: got ${a[i]}, expected ${e[i]} (|diff| ${Math.abs(a[i] - e[i])} > ${tol})`);
    }
  }
}

/** |a − e| ≤ tol(i) element-wise, e.g. a fraction of the grid step of element i's channel. */
export function assertAbsClose(actual: Numbers, expected: Numbers, tol: number | ((i: number) => number), label: string): void {
  checkLength(actual, expected, label);
  for (let i = 0; i < expected.length; i++) {
    const t = typeof tol === "number" ? tol : tol(i);
    if (!(Math.abs(actual[i] - expected[i]) <= t)) {
      assert.fail(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]} (|diff| ${Math.abs(actual[i] - expected[i])} > ${t})`);
    }
  }
}

export function assertExact(actual: Numbers, expected: Numbers, label: string): void {
  checkLength(actual, expected, label);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]} (all: [${Array.from(actual)}] vs [${Array.from(expected)}])`);
  }
}

/** The README's tolerances: statistics, alphas, ranges and scales relative 1e-5; outputs 1e-5 of a step. */
export const REL = 1e-5;
export const STEP_FRACTION = 1e-5;

/**
 * Tolerance for a dequantized element: 1e-5 of its grid step, plus one float32 ulp of the expected value.
 * The ulp term is needed because the reference stored float32 outputs: at 8 bits a value of 255 steps has
 * an ulp of ~3e-5 steps, so no float64 computation can meet 1e-5·step alone.
 */
export function gridTolerance(step: number | ((i: number) => number), expected: Numbers): (i: number) => number {
  return (i) => STEP_FRACTION * (typeof step === "number" ? step : step(i)) + Math.abs(expected[i]) * 2 ** -23;
}
