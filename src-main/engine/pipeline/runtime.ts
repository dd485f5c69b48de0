// The one place that talks to onnxruntime-node, so every measured number comes from the same runtime setup.
import "../offline.ts"; // before onnxruntime-node: switches its telemetry off
import * as ort from "onnxruntime-node";
import { nativeCall } from "../native-calls.ts";
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

export async function openSession(model: Uint8Array | string): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    logSeverityLevel: 3,
  };
  return nativeCall(() => (typeof model === "string" ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options)), stopped);
}

export async function closeSession(session: ort.InferenceSession | null): Promise<void> {
  if (session) await nativeCall(() => session.release(), stopped);
}

/** Every onnxruntime call goes through nativeCall, so a cancelled job's thread is never torn down inside one. */
const stopped = () => new CancelledError();

export function inputTensor(geometry: InputGeometry, data: Float32Array, count: number): ort.Tensor {
  const { layout, channels, height, width } = geometry;
  const dims = layout === "NCHW" ? [count, channels, height, width] : [count, height, width, channels];
  const used = count * channels * height * width;
  return new ort.Tensor("float32", data.length === used ? data : data.subarray(0, used), dims);
}

export async function runBatch(
  session: ort.InferenceSession,
  geometry: InputGeometry,
  data: Float32Array,
  count: number,
  outputs: readonly string[],
): Promise<Record<string, ort.Tensor>> {
  return nativeCall(() => session.run({ [geometry.name]: inputTensor(geometry, data, count) }, outputs as string[]), stopped);
}

export function tensorData(t: ort.Tensor): Float32Array {
  if (t.type !== "float32") throw new Error(`Expected a float32 output, got ${t.type}.`);
  return t.data as Float32Array;
}

export type { ort };
