// The one place that talks to onnxruntime-node, so every measured number comes from the same runtime setup.
import "../offline.ts"; // before onnxruntime-node: switches its telemetry off
import * as ort from "onnxruntime-node";
import { nativeCall } from "../native-calls.ts";
import { halfToFloat } from "../onnx/tensor.ts";
import { CancelledError } from "./progress.ts";

export interface InputGeometry {
  name: string;
  layout: "NCHW" | "NHWC";
  channels: number;
  height: number;
  width: number;
  /** a model whose batch dimension is fixed can only be fed that many images at a time */
  fixedBatch: number | null;
}

/** Element types onnxruntime-node accepts as input tensors, by its own names. */
export type ElementType = "float32" | "float16" | "float64" | "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64" | "bool";

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** One input tensor of a batch, the batch axis first. float16 travels as its raw bits (Uint16Array), bool as Uint8Array. */
export interface TensorData {
  type: ElementType;
  data: TypedArray;
  dims: number[];
}

/** What one run of a model reads: a tensor per graph input name. */
export type Feeds = Record<string, TensorData>;

/** quiet: a session used to try something that may fail (its failure is an answer, not news for the terminal) */
export interface SessionOpts {
  quiet?: boolean;
  /** default "all" */
  level?: "disabled" | "basic" | "extended" | "all";
  /** write the graph onnxruntime optimized to this file (what it really runs) */
  optimizedModelFilePath?: string;
  /** intra-op threads; default onnxruntime's */
  threads?: number;
}

export async function openSession(model: Uint8Array | string, opts: SessionOpts = {}): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: opts.level ?? "all",
    executionMode: "sequential",
    logSeverityLevel: opts.quiet ? 4 : 3,
    ...(opts.optimizedModelFilePath ? { optimizedModelFilePath: opts.optimizedModelFilePath } : {}),
    ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
  };
  return nativeCall(() => (typeof model === "string" ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options)), stopped);
}

export async function closeSession(session: ort.InferenceSession | null): Promise<void> {
  if (session) await nativeCall(() => session.release(), stopped);
}

/** Every onnxruntime call goes through nativeCall, so a cancelled job's thread is never torn down inside one. */
const stopped = () => new CancelledError();

export function imageFeeds(geometry: InputGeometry, data: Float32Array, count: number): Feeds {
  const { layout, channels, height, width } = geometry;
  const dims = layout === "NCHW" ? [count, channels, height, width] : [count, height, width, channels];
  const used = count * channels * height * width;
  return { [geometry.name]: { type: "float32", data: data.length === used ? data : data.subarray(0, used), dims } };
}

function ortTensor(t: TensorData): ort.Tensor {
  // onnxruntime-node reads bool tensors from a Uint8Array, one byte per element
  return new ort.Tensor(t.type, t.data as ort.Tensor.DataType, t.dims);
}

export async function runFeeds(session: ort.InferenceSession, feeds: Feeds, outputs: readonly string[]): Promise<Record<string, ort.Tensor>> {
  const tensors = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, ortTensor(t)]));
  return nativeCall(() => session.run(tensors, outputs as string[]), stopped);
}

/** A run of a model with one image input (tests and benchmarks). */
export function runBatch(
  session: ort.InferenceSession,
  geometry: InputGeometry,
  data: Float32Array,
  count: number,
  outputs: readonly string[],
): Promise<Record<string, ort.Tensor>> {
  return runFeeds(session, imageFeeds(geometry, data, count), outputs);
}

export function tensorData(t: ort.Tensor): Float32Array {
  if (t.type !== "float32") throw new Error(`Expected a float32 output, got ${t.type}.`);
  return t.data as Float32Array;
}

/** Any numeric output as float64 values, for comparisons that do not care about the stored type. */
export function tensorValues(t: ort.Tensor): Float64Array | Float32Array {
  if (t.type === "float32") return t.data as Float32Array;
  if (t.type === "float16") return Float32Array.from(t.data as Uint16Array, halfToFloat);
  if (t.type === "int64" || t.type === "uint64") return Float64Array.from(t.data as BigInt64Array, Number);
  if (t.type === "string") throw new Error("Expected a numeric output, got strings.");
  return Float64Array.from(t.data as ArrayLike<number>);
}

export type { ort };
