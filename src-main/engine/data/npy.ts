// NumPy's .npy format (numpy.lib.format, versions 1.0 to 3.0), read by hand: the npm parsers (npyjs,
// numpy-parser) ignore the byte order, do not check the data length against the shape (a truncated file
// silently becomes a shorter array), do not reorder Fortran-order arrays and cannot report which file is
// wrong, and the format is small: a magic string, a version, a little-endian header length, a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 224, 224), } padded with spaces to a multiple
// of 64 bytes, then the raw elements.
import { DataError } from "./errors.ts";
import type { ElementType, TypedArray } from "../pipeline/runtime.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** The fixed part before the header dict is at most this long (version 2.0 and 3.0: 12 bytes). */
export const NPY_PREAMBLE_BYTES = 12;

export interface NpyHeader {
  /** the dtype descr as written, e.g. "<f4" */
  descr: string;
  type: ElementType;
  /** bytes per element */
  itemSize: number;
  bigEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** where the elements start */
  dataOffset: number;
  /** bytes the elements take */
  dataBytes: number;
}

export interface NpyArray {
  type: ElementType;
  shape: number[];
  /** C order, native (little-endian) byte order; float16 as its bits (Uint16Array), bool as Uint8Array */
  data: TypedArray;
}

const TYPES: Record<string, ElementType> = {
  f2: "float16", f4: "float32", f8: "float64",
  i1: "int8", i2: "int16", i4: "int32", i8: "int64",
  u1: "uint8", u2: "uint16", u4: "uint32", u8: "uint64",
  b1: "bool",
};

const SAVE_AGAIN = "Save it again with numpy.save (or numpy.savez for several arrays).";

/**
 * The header of a .npy file from its first bytes. `available` is how many bytes the whole file has, so a file cut
 * inside its header is told apart from a buffer that only holds the start. Throws a DataError naming `file`.
 */
export function parseNpyHeader(buf: Uint8Array, file: string, available = buf.length): NpyHeader {
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) {
    if (available < 10 && MAGIC.slice(0, Math.min(available, 6)).every((b, i) => buf[i] === b)) {
      throw new DataError(`${file} is cut short: it has only ${available} bytes, less than a .npy header. ${SAVE_AGAIN}`);
    }
    throw new DataError(`${file} is not a NumPy .npy array (it does not start with the .npy signature). ${SAVE_AGAIN}`);
  }
  const major = buf[6];
  if (major < 1 || major > 3) throw new DataError(`${file} uses .npy format version ${major}.${buf[7]}, which Nibble does not read (it reads 1.0 to 3.0). ${SAVE_AGAIN}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const start = major === 1 ? 10 : 12;
  if (buf.length < start) throw new DataError(`${file} is cut short inside its .npy header. ${SAVE_AGAIN}`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = start + headerLength;
  if (dataOffset > available) {
    throw new DataError(`${file} is cut short: its .npy header says it takes ${dataOffset} bytes but the file has only ${available}. ${SAVE_AGAIN}`);
  }
  if (dataOffset > buf.length) throw new RangeError(`need ${dataOffset} bytes of ${file} to read its header`);
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(buf.subarray(start, dataOffset)).trim();
  const bad = (what: string) => new DataError(`${file} has a damaged .npy header (${what}). ${SAVE_AGAIN}`);
  if (!text.startsWith("{") || !text.endsWith("}")) throw bad("not a dictionary");

  const descrField = /['"]descr['"]\s*:\s*(\S)/.exec(text);
  if (!descrField) throw bad("no 'descr'");
  if (descrField[1] === "[") {
    throw new DataError(`${file} holds a structured array (named fields), which cannot feed a model input. Save each field as its own array, as a plain numeric dtype.`);
  }
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined) throw bad("no 'descr'");
  if (fortran === undefined) throw bad("no 'fortran_order'");
  if (shapeText === undefined) throw bad("no 'shape'");
  const parts = shapeText.split(",").map((p) => p.trim()).filter((p) => p !== "");
  if (!parts.every((p) => /^[0-9]+L?$/.test(p))) throw bad(`shape (${shapeText})`);
  const shape = parts.map((p) => Number.parseInt(p, 10));

  const order = descr[0];
  const code = descr.slice(1);
  if (descr === "|O" || code === "O") {
    throw new DataError(`${file} holds Python objects (a pickled array), which Nibble never loads because loading them can run code. Save a numeric array instead (e.g. arr.astype(numpy.float32)).`);
  }
  const type = "<>|=".includes(order) ? TYPES[code] : undefined;
  if (type === undefined) {
    throw new DataError(
      `${file} holds values of dtype '${descr}', which no model input takes. Save it as a plain numeric array: float32, float64, float16, int8 to int64, uint8 to uint64 or bool.`,
    );
  }
  const itemSize = Number(code.slice(1));
  const count = shape.reduce((a, b) => a * b, 1);
  return { descr, type, itemSize, bigEndian: order === ">", fortranOrder: fortran === "True", shape, dataOffset, dataBytes: count * itemSize };
}

/** The whole array of a .npy file held in `buf`, in C order and native byte order. */
export function parseNpy(buf: Uint8Array, file: string): NpyArray {
  const h = parseNpyHeader(buf, file);
  const end = h.dataOffset + h.dataBytes;
  if (end > buf.length) {
    throw new DataError(
      `${file} is cut short: shape (${h.shape.join(", ")}) of ${h.type} needs ${h.dataBytes} bytes of data but the file has ${Math.max(0, buf.length - h.dataOffset)}. ${SAVE_AGAIN}`,
    );
  }
  // Copied (Buffer.slice would share memory), so the array is aligned whatever its offset inside `buf`.
  const bytes = new Uint8Array(h.dataBytes);
  bytes.set(buf.subarray(h.dataOffset, end));
  if (h.bigEndian && h.itemSize > 1) swapBytes(bytes, h.itemSize);
  let data = typedView(h.type, bytes.buffer);
  if (h.fortranOrder && h.shape.length > 1) data = fortranToC(data, h.shape);
  return { type: h.type, shape: h.shape, data };
}

function typedView(type: ElementType, buffer: ArrayBuffer): TypedArray {
  switch (type) {
    case "float32": return new Float32Array(buffer);
    case "float64": return new Float64Array(buffer);
    case "float16": return new Uint16Array(buffer);
    case "int8": return new Int8Array(buffer);
    case "int16": return new Int16Array(buffer);
    case "int32": return new Int32Array(buffer);
    case "int64": return new BigInt64Array(buffer);
    case "uint8": return new Uint8Array(buffer);
    case "uint16": return new Uint16Array(buffer);
    case "uint32": return new Uint32Array(buffer);
    case "uint64": return new BigUint64Array(buffer);
    case "bool": return new Uint8Array(buffer);
  }
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/** Fortran (column-major) to C (row-major) order: element [i0, i1, ...] sits at Σ i_k · Π_{j<k} shape_j. */
export function fortranToC<T extends TypedArray>(src: T, shape: number[]): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const rank = shape.length;
  const strides = new Array<number>(rank);
  for (let k = 0, s = 1; k < rank; k++) {
    strides[k] = s;
    s *= shape[k];
  }
  const index = new Array<number>(rank).fill(0);
  for (let c = 0; c < src.length; c++) {
    let f = 0;
    for (let k = 0; k < rank; k++) f += index[k] * strides[k];
    (out as unknown as number[])[c] = (src as unknown as number[])[f];
    for (let k = rank - 1; k >= 0; k--) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
  return out;
}
