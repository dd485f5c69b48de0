// The float64 kernels of the reconstruction stage against plain definitions, with explicit tolerances.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mulberry32 } from "../../src-main/engine/random.ts";
import { addGram, cholesky, choleskyInverse, choleskySolve, invertLower, matmul, NotPositiveDefiniteError, upperCholesky, upperCholeskyOfInverse } from "../../src-main/engine/quant/linalg.ts";
import { assertAbsClose } from "./approx.ts";

function randn(rand: () => number): number {
  // Box-Muller; 1 − u keeps the log finite
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function randomMatrix(rows: number, cols: number, seed: number): Float64Array {
  const r = mulberry32(seed);
  return Float64Array.from({ length: rows * cols }, () => randn(r));
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** A well-conditioned SPD matrix: XᵀX/rows + I/10 from random X. */
function spd(n: number, seed: number): Float64Array {
  const x = randomMatrix(3 * n, n, seed);
  const a = matmul(transpose(x, 3 * n, n), x, n, 3 * n, n);
  for (let i = 0; i < n * n; i++) a[i] /= 3 * n;
  for (let i = 0; i < n; i++) a[i * n + i] += 0.1;
  return a;
}

function identity(n: number): Float64Array {
  const e = new Float64Array(n * n);
  for (let i = 0; i < n; i++) e[i * n + i] = 1;
  return e;
}

describe("linalg", () => {
  it("matmul matches the triple loop on a hand example", () => {
    // [[1,2],[3,4],[5,6]] · [[1,0,2],[0,1,3]]
    assertAbsClose(matmul([1, 2, 3, 4, 5, 6], [1, 0, 2, 0, 1, 3], 3, 2, 3), [1, 2, 8, 3, 4, 18, 5, 6, 28], 0, "product");
  });

  it("addGram accumulates XᵀX (twice = 2·XᵀX) and mirrors the triangle", () => {
    const x = randomMatrix(50, 7, 1);
    const h = new Float64Array(49);
    addGram(h, x, 50, 7);
    addGram(h, x, 50, 7);
    const ref = matmul(transpose(x, 50, 7), x, 7, 50, 7);
    assertAbsClose(h, ref.map((v) => 2 * v), 1e-12 * 50 * 2, "2·XᵀX");
  });

  for (const n of [1, 2, 5, 40]) {
    it(`cholesky, inverse, upper factor and solve on a random ${n}x${n} SPD matrix`, () => {
      const a = spd(n, 10 + n);
      const l = cholesky(a, n);
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(l[i * n + j], 0, "L is lower triangular");
      assertAbsClose(matmul(l, transpose(l, n, n), n, n, n), a, 1e-12, "L·Lᵀ = A");
      assertAbsClose(matmul(invertLower(l, n), l, n, n, n), identity(n), 1e-11, "L⁻¹·L = I");
      const inv = choleskyInverse(l, n);
      assertAbsClose(matmul(inv, a, n, n, n), identity(n), 1e-10, "A⁻¹·A = I");
      const u = upperCholesky(inv, n);
      for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) assert.equal(u[i * n + j], 0, "U is upper triangular");
      assertAbsClose(matmul(transpose(u, n, n), u, n, n, n), inv, 1e-10, "Uᵀ·U = A⁻¹");
      // the two-step form GPTQ needs gives the same factor (the upper Cholesky factor is unique)
      assertAbsClose(upperCholeskyOfInverse(a, n), u, 1e-10, "upper factor of A⁻¹ without A⁻¹");
      const b = randomMatrix(n, 3, 99);
      assertAbsClose(matmul(a, choleskySolve(l, n, b, 3), n, n, 3), b, 1e-10, "A·solve(A, B) = B");
    });
  }

  it("refuses a matrix that is not positive definite, naming the pivot", () => {
    assert.throws(() => cholesky(Float64Array.from([1, 2, 2, 1]), 2), (e: unknown) => e instanceof NotPositiveDefiniteError && e.pivot === 1);
    assert.throws(() => cholesky(Float64Array.from([0, 0, 0, 1]), 2), (e: unknown) => e instanceof NotPositiveDefiniteError && e.pivot === 0);
  });
});
