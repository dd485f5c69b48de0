// What a model's outputs are, read from their declared types alone: shared by the engine (which output top-1
// ranks) and the renderer (whether to offer accuracy, or compare outputs with FP32 instead).
import type { TensorInfo } from "./types.ts";

/** A class vector [N, K] (or [N, K, 1, 1]) of floats, K > 1 or unknown: the output top-1 ranks. */
export function isClassVector(info: TensorInfo): boolean {
  const [, k, ...rest] = info.shape;
  const classes = (typeof k === "number" && k > 1) || typeof k === "string";
  return info.elemType.startsWith("float") && info.shape.length >= 2 && classes && rest.every((d) => d === 1);
}

/** The model's class output (only the first output is ranked), or null for any other model. */
export function classOutputName(outputs: readonly TensorInfo[]): string | null {
  return outputs[0] && isClassVector(outputs[0]) ? outputs[0].name : null;
}
