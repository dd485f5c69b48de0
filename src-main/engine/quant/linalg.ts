// Dense float64 linear algebra for the reconstruction stage: small symmetric positive definite systems
// (a layer's input Hessian is K x K with K = input channels x kernel size, at most a few thousand).
// Matrices are row-major Float64Arrays. The heavy product XᵀX over all calibration pixels runs inside
// onnxruntime (pipeline/hessian.ts); what is left here is O(K³) once per layer, see docs/KERNELS.md.

export class NotPositiveDefiniteError extends Error {
  constructor(readonly pivot: number) {
    super(`matrix is not positive definite (pivot ${pivot})`);
    this.name = "NotPositiveDefiniteError";
  }
}

/** H += XᵀX for X laid out [rows, k] (one sample per row): the plain loop the onnxruntime path is measured against. */
export function addGram(h: Float64Array, x: ArrayLike<number>, rows: number, k: number): void {
  if (h.length !== k * k || x.length !== rows * k) throw new RangeError(`addGram: need H ${k}x${k} and X ${rows}x${k}`);
  for (let r = 0; r < rows; r++) {
    const base = r * k;
    for (let i = 0; i < k; i++) {
      const xi = x[base + i];
      if (xi === 0) continue;
      const hi = i * k;
      for (let j = i; j < k; j++) h[hi + j] += xi * x[base + j];
    }
  }
  // only the upper triangle was accumulated; mirror it
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) h[j * k + i] = h[i * k + j];
}

/** C = A·B for A [m, k], B [k, n]. */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < k; t++) {
      const v = a[i * k + t];
      if (v === 0) continue;
      const bo = t * n;
      const co = i * n;
      for (let j = 0; j < n; j++) c[co + j] += v * b[bo + j];
    }
  }
  return c;
}

/** Lower-triangular L with A = L·Lᵀ (A symmetric positive definite; only its lower triangle is read). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let t = 0; t < j; t++) d -= l[j * n + t] * l[j * n + t];
    if (!(d > 0)) throw new NotPositiveDefiniteError(j);
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      const li = i * n;
      const lj = j * n;
      for (let t = 0; t < j; t++) s -= l[li + t] * l[lj + t];
      l[li + j] = s / ljj;
    }
  }
  return l;
}

/** L⁻¹ of a lower-triangular L: column j solves L·x = e_j by forward substitution, reading L by rows. */
export function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  const x = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    x.fill(0, j);
    x[j] = 1 / l[j * n + j];
    for (let i = j + 1; i < n; i++) {
      const li = i * n;
      let s = 0;
      for (let t = j; t < i; t++) s -= l[li + t] * x[t];
      x[i] = s / l[li + i];
    }
    for (let i = j; i < n; i++) inv[i * n + j] = x[i];
  }
  return inv;
}

/** A⁻¹ from A's Cholesky factor L: (L·Lᵀ)⁻¹ = L⁻ᵀ·L⁻¹ = Σ_t (row t of L⁻¹)ᵀ(row t of L⁻¹) (torch.cholesky_inverse). */
export function choleskyInverse(l: Float64Array, n: number): Float64Array {
  const li = invertLower(l, n);
  const out = new Float64Array(n * n);
  for (let t = 0; t < n; t++) {
    const row = t * n;
    for (let i = 0; i <= t; i++) {
      const v = li[row + i];
      if (v === 0) continue;
      const oi = i * n;
      for (let j = i; j <= t; j++) out[oi + j] += v * li[row + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) out[j * n + i] = out[i * n + j];
  return out;
}

/** Upper-triangular U with A = Uᵀ·U: the transpose of A's lower Cholesky factor. */
export function upperCholesky(a: Float64Array, n: number): Float64Array {
  const l = cholesky(a, n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = l[i * n + j];
  return u;
}

/**
 * Upper-triangular U with A⁻¹ = Uᵀ·U, without forming A⁻¹: with J the index reversal, J·A·J = L·Lᵀ gives
 * A = R·Rᵀ for the upper R = J·L·J, so A⁻¹ = R⁻ᵀ·R⁻¹ and U = R⁻¹ = J·L⁻¹·J. What GPTQ computes as
 * cholesky(cholesky_inverse(cholesky(H)), upper=True), in two O(n³/3) steps instead of three.
 */
export function upperCholeskyOfInverse(a: Float64Array, n: number): Float64Array {
  const rev = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) rev[i * n + j] = a[(n - 1 - i) * n + (n - 1 - j)];
  const li = invertLower(cholesky(rev, n), n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i * n + j] = li[(n - 1 - i) * n + (n - 1 - j)];
  return u;
}

/** X with A·X = B for A = L·Lᵀ and B [n, m] (m right-hand sides). */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < i; t++) {
      const f = l[i * n + t];
      if (f === 0) continue;
      for (let c = 0; c < m; c++) y[i * m + c] -= f * y[t * m + c];
    }
    const d = l[i * n + i];
    for (let c = 0; c < m; c++) y[i * m + c] /= d;
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let t = i + 1; t < n; t++) {
      const f = l[t * n + i];
      if (f === 0) continue;
      for (let c = 0; c < m; c++) y[i * m + c] -= f * y[t * m + c];
    }
    const d = l[i * n + i];
    for (let c = 0; c < m; c++) y[i * m + c] /= d;
  }
  return y;
}
