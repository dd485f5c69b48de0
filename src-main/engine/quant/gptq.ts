// Second-order rounding (GPTQ, Frantar et al. 2023, after OBQ): choose each weight's code so that the layer's
// output on the calibration data, not the weight itself, stays close to the float layer. Rows are output
// channels, columns the layer's inputs (im2col order); H = Σ x xᵀ over every input column the layer saw.
// Columns are quantized one at a time and the rounding error of each is spread over the columns not yet
// quantized through the inverse Hessian, exactly as IST-DASLab/gptq `fasterquant` does (lazy block updates,
// dampening as a fraction of the mean diagonal, optional act-order), on the grid each row already has.
import { roundHalfEven } from "./grid.ts";
import { NotPositiveDefiniteError, upperCholeskyOfInverse } from "./linalg.ts";

/** A row's grid: value = code · scale + offset for code in [0, qmax] (a WeightPlan channel). */
export interface RowGrids {
  scale: ArrayLike<number>;
  offset: ArrayLike<number>;
  qmax: ArrayLike<number>;
}

export function nearestCode(w: number, scale: number, offset: number, qmax: number): number {
  const v = (w - offset) / scale;
  return roundHalfEven(v < 0 ? 0 : v > qmax ? qmax : v);
}

export interface RoundToOutputOptions {
  /** dampening added to H's diagonal, as a fraction of its mean (GPTQ's percdamp, default 0.01) */
  damp?: number;
  /** columns per lazy update (default 128) */
  blockSize?: number;
  /** quantize columns in order of decreasing H diagonal (GPTQ's act-order) */
  actOrder?: boolean;
  /**
   * Keep nearest rounding for a row where it gives the lower output error (default true). The greedy
   * column order can lose to plain rounding when compensated weights run past the grid's ends and clamp;
   * rows are independent terms of the output error, so the better of the two is chosen row by row.
   */
  keepBetter?: boolean;
  /** called between blocks of columns: a caller's cancellation check (it may throw) */
  onBlock?: () => void;
}

export interface RoundToOutputResult {
  codes: Uint8Array;
  /** rows where nearest rounding was kept because it was better */
  nearestRows: number;
  /** per row, (w − ŵ) H (w − ŵ)ᵀ of the chosen codes, and of nearest rounding */
  rowError: Float64Array;
  nearestRowError: Float64Array;
  /** the dampening that made H invertible (more than asked when the asked one did not) */
  damp: number;
}

/**
 * Codes for W [rows, k] (row-major) given the input Hessian H [k, k]. H is not modified. Columns whose input
 * was always zero (H_jj = 0) carry no signal: they get the nearest code and no share of other columns' error.
 */
export function roundToOutput(w: ArrayLike<number>, rows: number, k: number, h: Float64Array, grids: RowGrids, options: RoundToOutputOptions = {}): RoundToOutputResult {
  if (w.length !== rows * k || h.length !== k * k) throw new RangeError(`roundToOutput: W must be ${rows}x${k} and H ${k}x${k}`);
  const blockSize = options.blockSize ?? 128;
  const codes = new Uint8Array(rows * k);
  const order = Array.from({ length: k }, (_, j) => j);
  if (options.actOrder) order.sort((a, b) => h[b * k + b] - h[a * k + a] || a - b);
  const live = order.filter((j) => h[j * k + j] > 0);
  for (let j = 0; j < k; j++) {
    if (h[j * k + j] > 0) continue;
    for (let r = 0; r < rows; r++) codes[r * k + j] = nearestCode(w[r * k + j], grids.scale[r], grids.offset[r], grids.qmax[r]);
  }
  const n = live.length;
  if (n === 0) {
    const zero = new Float64Array(rows);
    return { codes, damp: options.damp ?? 0.01, nearestRows: 0, rowError: zero, nearestRowError: zero };
  }
  // the permuted, live sub-problem
  const hp = new Float64Array(n * n);
  let diagMean = 0;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) hp[a * n + b] = h[live[a] * k + live[b]];
    diagMean += hp[a * n + a];
  }
  diagMean /= n;
  let damp = options.damp ?? 0.01;
  let u: Float64Array | null = null;
  // a Hessian from fewer samples than inputs is singular: raise the dampening until it factors
  for (let attempt = 0; attempt < 8 && !u; attempt++) {
    const hd = Float64Array.from(hp);
    for (let a = 0; a < n; a++) hd[a * n + a] += damp * diagMean;
    try {
      u = upperCholeskyOfInverse(hd, n);
    } catch (e) {
      if (!(e instanceof NotPositiveDefiniteError)) throw e;
      damp = damp > 0 ? damp * 10 : 1e-4;
    }
  }
  if (!u) throw new Error("roundToOutput: the layer's input Hessian could not be inverted");

  const lambda = damp * diagMean;
  // Σ_i e_i² is exactly (w − ŵ)(H + λI)(w − ŵ)ᵀ (the LDLᵀ form of the error); λ·‖w − ŵ‖² is taken back off
  const damped = new Float64Array(rows);
  const wp = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) for (let a = 0; a < n; a++) wp[r * n + a] = w[r * k + live[a]];
  const err = new Float64Array(rows * blockSize);
  for (let i1 = 0; i1 < n; i1 += blockSize) {
    options.onBlock?.();
    const i2 = Math.min(i1 + blockSize, n);
    const width = i2 - i1;
    for (let i = i1; i < i2; i++) {
      const d = u[i * n + i];
      const ui = i * n;
      for (let r = 0; r < rows; r++) {
        const ro = r * n;
        const value = wp[ro + i];
        const c = nearestCode(value, grids.scale[r], grids.offset[r], grids.qmax[r]);
        codes[r * k + live[i]] = c;
        const e = (value - (c * grids.scale[r] + grids.offset[r])) / d;
        err[r * blockSize + (i - i1)] = e;
        damped[r] += e * e;
        if (e === 0) continue;
        for (let j = i + 1; j < i2; j++) wp[ro + j] -= e * u[ui + j];
      }
    }
    if (i2 === n) break;
    // the block's errors, applied to every later column at once
    for (let r = 0; r < rows; r++) {
      const ro = r * n;
      const eo = r * blockSize;
      for (let t = 0; t < width; t++) {
        const e = err[eo + t];
        if (e === 0) continue;
        const ut = (i1 + t) * n;
        for (let j = i2; j < n; j++) wp[ro + j] -= e * u[ut + j];
      }
    }
  }
  const rowError = new Float64Array(rows);
  const nearestRowError = new Float64Array(rows);
  const d = new Float64Array(k);
  let nearestRows = 0;
  for (let r = 0; r < rows; r++) {
    const ro = r * k;
    const s = grids.scale[r];
    const o = grids.offset[r];
    let sq = 0;
    for (let a = 0; a < n; a++) sq += (w[ro + live[a]] - (codes[ro + live[a]] * s + o)) ** 2;
    rowError[r] = Math.max(damped[r] - lambda * sq, 0);
    for (let j = 0; j < k; j++) d[j] = w[ro + j] - (nearestCode(w[ro + j], s, o, grids.qmax[r]) * s + o);
    nearestRowError[r] = quadraticForm(d, h, k);
    if ((options.keepBetter ?? true) && nearestRowError[r] < rowError[r]) {
      nearestRows++;
      rowError[r] = nearestRowError[r];
      for (let j = 0; j < k; j++) codes[ro + j] = nearestCode(w[ro + j], s, o, grids.qmax[r]);
    }
  }
  return { codes, damp, nearestRows, rowError, nearestRowError };
}

/** Codes by plain nearest rounding on the same grids: the baseline roundToOutput must beat. */
export function nearestCodes(w: ArrayLike<number>, rows: number, k: number, grids: RowGrids): Uint8Array {
  const codes = new Uint8Array(rows * k);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) codes[r * k + j] = nearestCode(w[r * k + j], grids.scale[r], grids.offset[r], grids.qmax[r]);
  return codes;
}

/** Σ_rows (w − ŵ) H (w − ŵ)ᵀ: the summed squared output error of the quantized layer over the calibration data. */
export function outputError(w: ArrayLike<number>, codes: Uint8Array, rows: number, k: number, h: Float64Array, grids: RowGrids): number {
  const d = new Float64Array(k);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) d[j] = w[r * k + j] - (codes[r * k + j] * grids.scale[r] + grids.offset[r]);
    total += quadraticForm(d, h, k);
  }
  return total;
}

/** vᵀ H v for a symmetric H (the upper triangle is read). */
export function quadraticForm(v: ArrayLike<number>, h: Float64Array, k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) {
    const vi = v[i];
    if (vi === 0) continue;
    const hi = i * k;
    let row = 0;
    for (let j = i + 1; j < k; j++) row += h[hi + j] * v[j];
    s += vi * (h[hi + i] * vi + 2 * row);
  }
  return s;
}
