// The one quantization grid of ALGORITHMS.md §1: asymmetric, unsigned codes, zero exactly representable
// whenever the clip interval contains it. Everything else in quant/ only chooses (lo, range, bits).

export interface GridParams {
  /** Δ, the step between neighbouring codes */
  scale: number;
  /** integer zero point, deliberately not clamped to [0, qmax] (a grid for an all-positive range has zp < 0) */
  zeroPoint: number;
  qmax: number;
}

/** Smallest step the reference allows; it also turns a zero range or a 0-bit channel into a constant. */
const MIN_SCALE = 1e-8;

/** torch.round semantics; Math.round alone sends every .5 tie towards +∞. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** C roundf, used by the reference's CUDA kernel. */
function roundHalfAwayFromZero(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

export function gridParams(lo: number, range: number, bits: number): GridParams {
  const qmax = 2 ** bits - 1;
  const scale = Math.max(qmax > 0 ? range / qmax : 0, MIN_SCALE);
  // + 0 turns a −0 zero point (lo slightly positive of 0) into +0
  return { scale, zeroPoint: roundHalfEven(-lo / scale) + 0, qmax };
}

/** The integer code of x; clamping before rounding is safe because both bounds are integers. */
export function quantizeValue(x: number, p: GridParams): number {
  const v = x / p.scale + p.zeroPoint;
  return roundHalfEven(v < 0 ? 0 : v > p.qmax ? p.qmax : v);
}

export function fakeQuantValue(x: number, p: GridParams): number {
  return (quantizeValue(x, p) - p.zeroPoint) * p.scale;
}

/** Per-tensor fake-quant on the primary path; `out` may alias `x`. */
export function fakeQuantInto(out: Float32Array, x: Float32Array, lo: number, range: number, bits: number): Float32Array {
  const p = gridParams(lo, range, bits);
  for (let i = 0; i < x.length; i++) out[i] = fakeQuantValue(x[i], p);
  return out;
}

/**
 * Per-channel fake-quant of a tensor laid out [outer, channels, inner] (NCHW activations: outer = N,
 * inner = H·W; weights [OC, …]: outer = 1, inner = the rest). Channel c uses [lo[c], lo[c] + range[c]] and bits[c].
 */
export function fakeQuantPerChannel(
  x: Float32Array,
  channels: number,
  inner: number,
  outer: number,
  lo: ArrayLike<number>,
  range: ArrayLike<number>,
  bits: ArrayLike<number>,
): Float32Array {
  if (x.length !== outer * channels * inner) {
    throw new RangeError(`tensor has ${x.length} elements, expected ${outer}×${channels}×${inner}`);
  }
  if (lo.length !== channels || range.length !== channels || bits.length !== channels) {
    throw new RangeError(`need one lo/range/bits per channel (${channels})`);
  }
  const out = new Float32Array(x.length);
  for (let c = 0; c < channels; c++) {
    const p = gridParams(lo[c], range[c], bits[c]);
    for (let n = 0; n < outer; n++) {
      const start = (n * channels + c) * inner;
      for (let i = start; i < start + inner; i++) out[i] = fakeQuantValue(x[i], p);
    }
  }
  return out;
}

/**
 * The reference's per-tensor CUDA kernel (8-bit min/max quantizers), emulated op by op in float32 so that
 * its half-away-from-zero ties land where the kernel's do. No 1e-8 floor: a non-positive range returns
 * the input unchanged, as the kernel does. The zero-point shift is used only when 0 lies strictly inside the range.
 */
export function fakeQuantKernel(x: Float32Array, lo: number, range: number, bits: number): Float32Array {
  if (!Number.isInteger(bits) || bits < 1) throw new RangeError(`kernel path needs an integer bit-width ≥ 1, got ${bits}`);
  const f = Math.fround;
  const range32 = f(range);
  if (!(range32 > 0)) return Float32Array.from(x);
  const lo32 = f(lo);
  const qmax = 2 ** bits - 1;
  const scale = f(range32 / qmax);
  const clampRound = (v: number): number => roundHalfAwayFromZero(v < 0 ? 0 : v > qmax ? qmax : v);
  const out = new Float32Array(x.length);
  if (lo32 < 0 && f(lo32 + range32) > 0) {
    const zp = roundHalfAwayFromZero(f(-lo32 / scale));
    for (let i = 0; i < x.length; i++) out[i] = f((clampRound(f(f(x[i] / scale) + zp)) - zp) * scale);
  } else {
    for (let i = 0; i < x.length; i++) out[i] = f(f(clampRound(f(f(x[i] - lo32) / scale)) * scale) + lo32);
  }
  return out;
}
