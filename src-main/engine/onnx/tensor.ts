// Reading and writing TensorProto payloads. ONNX stores numbers either in raw_data (little-endian,
// sub-byte types packed) or in typed repeated fields; everything here accepts both on read and
// writes raw_data, which is what onnxruntime and every exporter produce.
import { create } from "@bufbuild/protobuf";
import { TensorProtoSchema, TensorProto_DataType as DT, type TensorProto } from "onnx-buf";
import { ModelError } from "./errors.ts";

/** Largest element count we accept for one tensor; beyond it typed arrays and protobuf both break. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31;

const BITS: Partial<Record<number, number>> = {
  [DT.FLOAT]: 32, [DT.UINT8]: 8, [DT.INT8]: 8, [DT.UINT16]: 16, [DT.INT16]: 16, [DT.INT32]: 32,
  [DT.INT64]: 64, [DT.BOOL]: 8, [DT.FLOAT16]: 16, [DT.DOUBLE]: 64, [DT.UINT32]: 32, [DT.UINT64]: 64,
  [DT.COMPLEX64]: 64, [DT.COMPLEX128]: 128, [DT.BFLOAT16]: 16, [DT.FLOAT8E4M3FN]: 8,
  [DT.FLOAT8E4M3FNUZ]: 8, [DT.FLOAT8E5M2]: 8, [DT.FLOAT8E5M2FNUZ]: 8, [DT.UINT4]: 4, [DT.INT4]: 4,
  [DT.FLOAT4E2M1]: 4, [DT.FLOAT8E8M0]: 8, [DT.UINT2]: 2, [DT.INT2]: 2,
};

const LABELS: Partial<Record<number, string>> = {
  [DT.FLOAT]: "float32", [DT.DOUBLE]: "float64", [DT.FLOAT16]: "float16", [DT.BFLOAT16]: "bfloat16",
  [DT.UINT8]: "uint8", [DT.INT8]: "int8", [DT.UINT16]: "uint16", [DT.INT16]: "int16",
  [DT.INT32]: "int32", [DT.INT64]: "int64", [DT.UINT32]: "uint32", [DT.UINT64]: "uint64",
  [DT.BOOL]: "bool", [DT.STRING]: "string", [DT.UINT4]: "uint4", [DT.INT4]: "int4",
};

const FLOAT_TYPES = new Set<number>([DT.FLOAT, DT.DOUBLE, DT.FLOAT16, DT.BFLOAT16]);

/** The ONNX enum name of a data type, e.g. "FLOAT", "INT4"; unknown codes stay visible as numbers. */
export function dataTypeName(type: number): string {
  return DT[type] ?? `data type ${type}`;
}

/** A short user-facing label, e.g. "float32", "int64"; falls back to the ONNX name. */
export function dataTypeLabel(type: number): string {
  return LABELS[type] ?? dataTypeName(type).toLowerCase();
}

/** Bits per element, or undefined for strings and unknown types. */
export function dataTypeBits(type: number): number | undefined {
  return BITS[type];
}

export function isFloatType(type: number): boolean {
  return FLOAT_TYPES.has(type);
}

/** Product of dims as a number; may exceed MAX_TENSOR_ELEMENTS, callers check before allocating. */
export function tensorElementCount(t: Pick<TensorProto, "dims">): number {
  let n = 1;
  for (const d of t.dims) n *= Number(d);
  return n;
}

/** Bytes raw_data must hold for `count` elements of `type`; undefined when not fixed-size. */
export function rawByteLength(type: number, count: number): number | undefined {
  const bits = BITS[type];
  return bits === undefined ? undefined : Math.ceil((count * bits) / 8);
}

/**
 * Why a tensor's declared shape and its stored data disagree, or null when they agree. External data
 * must already be resolved. Runs before any conversion so a hostile file cannot make us allocate
 * billions of elements on the strength of its dims alone.
 */
export function tensorStorageProblem(t: TensorProto): string | null {
  for (const d of t.dims) {
    if (d < 0n) return `has a negative dimension (${t.dims.join(" x ")})`;
  }
  const count = tensorElementCount(t);
  if (count > MAX_TENSOR_ELEMENTS) return `claims ${t.dims.join(" x ")} = ${count} elements, more than Nibble can hold`;
  if (t.dataType === DT.STRING) return t.stringData.length === count ? null : storedMismatch(count, t.stringData.length);
  if (BITS[t.dataType] === undefined) return `has an unsupported data type (${dataTypeName(t.dataType)})`;
  if (t.rawData.length > 0) {
    const need = rawByteLength(t.dataType, count)!;
    if (t.rawData.length === need) return null;
    return `claims ${t.dims.join(" x ")} ${dataTypeLabel(t.dataType)} values (${need} bytes) but holds ${t.rawData.length} bytes`;
  }
  const stored = typedFieldLength(t);
  return stored === typedFieldNeed(t.dataType, count) ? null : storedMismatch(count, stored);
}

function storedMismatch(count: number, stored: number): string {
  return `claims ${count} elements but stores ${stored} values`;
}

function typedFieldLength(t: TensorProto): number {
  return t.floatData.length + t.int32Data.length + t.int64Data.length + t.doubleData.length + t.uint64Data.length;
}

// Typed fields hold one value per element, except complex (two) and sub-byte types, which the
// spec packs into int32_data one packed byte per entry.
function typedFieldNeed(type: number, count: number): number {
  if (type === DT.COMPLEX64 || type === DT.COMPLEX128) return 2 * count;
  const bits = BITS[type]!;
  return bits < 8 ? Math.ceil((count * bits) / 8) : count;
}

/** Float values of a FLOAT, DOUBLE, FLOAT16 or BFLOAT16 tensor, from raw_data or the typed field. */
export function tensorToFloat32(t: TensorProto): Float32Array {
  const n = tensorElementCount(t);
  const raw = t.rawData.length > 0 ? new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength) : null;
  const out = new Float32Array(n);
  switch (t.dataType) {
    case DT.FLOAT:
      if (raw) for (let i = 0; i < n; i++) out[i] = raw.getFloat32(4 * i, true);
      else out.set(t.floatData.slice(0, n));
      return out;
    case DT.DOUBLE:
      if (raw) for (let i = 0; i < n; i++) out[i] = raw.getFloat64(8 * i, true);
      else out.set(t.doubleData.slice(0, n));
      return out;
    case DT.FLOAT16:
      for (let i = 0; i < n; i++) out[i] = halfToFloat(raw ? raw.getUint16(2 * i, true) : t.int32Data[i]);
      return out;
    case DT.BFLOAT16: {
      const bits = new Uint32Array(1);
      const f = new Float32Array(bits.buffer);
      for (let i = 0; i < n; i++) {
        bits[0] = (raw ? raw.getUint16(2 * i, true) : t.int32Data[i]) << 16;
        out[i] = f[0];
      }
      return out;
    }
    default:
      throw new ModelError(`Tensor "${t.name}" holds ${dataTypeLabel(t.dataType)} values, not floating point numbers.`);
  }
}

/** Integer values of an integer tensor (shapes, axes, Slice bounds) as JS numbers. */
export function tensorToIntegers(t: TensorProto): number[] {
  const n = tensorElementCount(t);
  const raw = t.rawData.length > 0 ? new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength) : null;
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    switch (t.dataType) {
      case DT.INT64: out[i] = Number(raw ? raw.getBigInt64(8 * i, true) : t.int64Data[i]); break;
      case DT.UINT64: out[i] = Number(raw ? raw.getBigUint64(8 * i, true) : t.uint64Data[i]); break;
      case DT.INT32: out[i] = raw ? raw.getInt32(4 * i, true) : t.int32Data[i]; break;
      case DT.UINT32: out[i] = Number(raw ? raw.getUint32(4 * i, true) : t.uint64Data[i]); break;
      case DT.INT16: out[i] = raw ? raw.getInt16(2 * i, true) : t.int32Data[i]; break;
      case DT.UINT16: out[i] = raw ? raw.getUint16(2 * i, true) : t.int32Data[i]; break;
      case DT.INT8: out[i] = raw ? raw.getInt8(i) : t.int32Data[i]; break;
      case DT.UINT8: case DT.BOOL: out[i] = raw ? raw.getUint8(i) : t.int32Data[i]; break;
      default:
        throw new ModelError(`Tensor "${t.name}" holds ${dataTypeLabel(t.dataType)} values, not integers.`);
    }
  }
  return out;
}

/** IEEE 754 binary16 bits to a number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function dimsOf(dims: readonly number[]): bigint[] {
  return dims.map((d) => BigInt(d));
}

function checkCount(name: string, dims: readonly number[], length: number): void {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== length) throw new RangeError(`tensor "${name}": dims ${dims.join("x")} need ${count} values, got ${length}`);
}

export function float32Tensor(name: string, dims: readonly number[], data: ArrayLike<number>): TensorProto {
  checkCount(name, dims, data.length);
  const raw = new Uint8Array(4 * data.length);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
  return create(TensorProtoSchema, { name, dims: dimsOf(dims), dataType: DT.FLOAT, rawData: raw });
}

export function int64Tensor(name: string, dims: readonly number[], data: ArrayLike<number | bigint>): TensorProto {
  checkCount(name, dims, data.length);
  const raw = new Uint8Array(8 * data.length);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setBigInt64(8 * i, BigInt(data[i]), true);
  return create(TensorProtoSchema, { name, dims: dimsOf(dims), dataType: DT.INT64, rawData: raw });
}

export function int32Tensor(name: string, dims: readonly number[], data: ArrayLike<number>): TensorProto {
  checkCount(name, dims, data.length);
  const raw = new Uint8Array(4 * data.length);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setInt32(4 * i, data[i], true);
  return create(TensorProtoSchema, { name, dims: dimsOf(dims), dataType: DT.INT32, rawData: raw });
}

export type PackedIntType = "INT4" | "UINT4" | "INT8" | "UINT8";

const PACKED_RANGE: Record<PackedIntType, [number, number]> = {
  INT4: [-8, 7], UINT4: [0, 15], INT8: [-128, 127], UINT8: [0, 255],
};

/**
 * An integer tensor from one code per element. INT4/UINT4 go two per byte, the element with the
 * lower index in the low nibble (ONNX IR "4 bit integer types"); odd counts leave the last high
 * nibble zero.
 */
export function packedIntTensor(
  name: string,
  dims: readonly number[],
  codes: Int8Array | Uint8Array,
  type: PackedIntType,
): TensorProto {
  checkCount(name, dims, codes.length);
  const [lo, hi] = PACKED_RANGE[type];
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] < lo || codes[i] > hi) throw new RangeError(`tensor "${name}": code ${codes[i]} at ${i} is outside ${type} [${lo}, ${hi}]`);
  }
  let raw: Uint8Array;
  if (type === "INT8" || type === "UINT8") {
    raw = new Uint8Array(codes.buffer.slice(codes.byteOffset, codes.byteOffset + codes.byteLength));
  } else {
    raw = new Uint8Array(Math.ceil(codes.length / 2));
    for (let i = 0; i < codes.length; i++) raw[i >> 1] |= (codes[i] & 0xf) << ((i & 1) * 4);
  }
  return create(TensorProtoSchema, { name, dims: dimsOf(dims), dataType: DT[type], rawData: raw as Uint8Array<ArrayBuffer> });
}

/** The codes of an INT4/UINT4/INT8/UINT8 tensor, one per element, sign-extended for the signed types. */
export function unpackIntTensor(t: TensorProto): Int8Array | Uint8Array {
  const n = tensorElementCount(t);
  const signed = t.dataType === DT.INT4 || t.dataType === DT.INT8;
  const bytes = t.rawData.length > 0 ? t.rawData : Uint8Array.from(t.int32Data, (v) => v & 0xff);
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  if (t.dataType === DT.INT8 || t.dataType === DT.UINT8) {
    out.set(signed ? new Int8Array(bytes.buffer, bytes.byteOffset, n) : bytes.subarray(0, n));
    return out;
  }
  if (t.dataType !== DT.INT4 && t.dataType !== DT.UINT4) {
    throw new ModelError(`Tensor "${t.name}" holds ${dataTypeLabel(t.dataType)} values, not packed integers.`);
  }
  for (let i = 0; i < n; i++) {
    const nibble = (bytes[i >> 1] >> ((i & 1) * 4)) & 0xf;
    out[i] = signed && nibble >= 8 ? nibble - 16 : nibble;
  }
  return out;
}
