// Checks of a decoded model's contents that later stages rely on and onnxruntime would otherwise turn
// into an internal error: layer parameters with no values or non-finite values, constants holding NaN,
// and declared inputs too large to allocate. Each problem is a sentence that names the tensor.
import { TensorProto_DataType as DT, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import { constantNodeValue, isDefaultDomain } from "./graph.ts";
import { isFloatType, tensorElementCount, tensorToFloat32 } from "./tensor.ts";

/** Inputs of each layer type that hold its learned parameters. */
const PARAMETER_INPUTS: Record<string, number[]> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [1, 2],
  MatMul: [1],
  BatchNormalization: [1, 2, 3, 4],
  InstanceNormalization: [1, 2],
  LayerNormalization: [1, 2],
  GroupNormalization: [1, 2],
  PRelu: [1],
};
/** Ops exporters put between a stored weight and its layer; their output has the same values. */
const PASS_THROUGH = new Set(["Identity", "Transpose", "Reshape", "Cast", "Squeeze", "Unsqueeze"]);

/**
 * Largest declared input Nibble allocates, in values per feed: 2^26 float32 values (256 MB) is a
 * 4,096 x 4,096 RGB image with room to spare, far beyond any CNN's input.
 */
export const MAX_INPUT_VALUES = 2 ** 26;

export interface Problem {
  /** what is wrong, a clause that follows the file's name */
  reason: string;
  /** what to do */
  todo: string;
}

const REEXPORT = "Export the model again from the original checkpoint.";

/** What is wrong with the model's parameters or constants, or null. */
export function parameterProblem(model: ModelProto): Problem | null {
  const graph = model.graph!;
  const constants = new Map<string, TensorProto>(graph.initializer.map((t) => [t.name, t]));
  const producers = new Map<string, NodeProto>();
  for (const n of graph.node) {
    for (const o of n.output) producers.set(o, n);
    const value = n.opType === "Constant" && isDefaultDomain(n) ? constantNodeValue(n) : undefined;
    if (value && n.output[0]) constants.set(n.output[0], value);
  }
  /** The stored tensor a layer input comes from, through pass-through ops; undefined when computed. */
  const source = (name: string): TensorProto | undefined => {
    for (let depth = 0; depth < 16; depth++) {
      const c = constants.get(name);
      if (c) return c;
      const p = producers.get(name);
      if (!p || !isDefaultDomain(p) || !PASS_THROUGH.has(p.opType)) return undefined;
      name = p.input[0];
    }
    return undefined;
  };
  const checked = new Set<TensorProto>();
  for (const n of graph.node) {
    if (!isDefaultDomain(n)) continue;
    for (const k of PARAMETER_INPUTS[n.opType] ?? []) {
      const t = n.input[k] ? source(n.input[k]) : undefined;
      if (!t || !isFloatType(t.dataType)) continue;
      checked.add(t);
      const tensor = `"${t.name || n.input[k]}"`;
      if (t.dims.some((d) => d === 0n)) {
        const missing = n.opType.startsWith("Conv") && k === 1 ? (t.dims[0] === 0n ? "no output channels" : "no input channels or an empty kernel") : "an empty parameter";
        return { reason: `${label(n)} has ${missing}: its ${k === 1 ? `weights ${tensor} have` : `parameter ${tensor} has`} shape ${t.dims.join(" x ")}, with no values at all`, todo: `The file was damaged or cut down by a tool. ${REEXPORT}` };
      }
      const bad = nonFinite(t);
      if (bad) {
        return {
          reason: `${label(n)} has ${bad} among the ${count(tensorElementCount(t))} values of its ${k === 1 ? "weights" : "parameter"} ${tensor}; a trained model has none, so the training diverged or the export went wrong`,
          todo: "Export the model again from a checkpoint whose weights are all finite numbers.",
        };
      }
    }
  }
  for (const t of allConstants(graph)) {
    if (checked.has(t) || !isFloatType(t.dataType)) continue;
    const bad = nonFinite(t, true);
    if (bad) return { reason: `the constant "${t.name}" holds ${bad} among its ${count(tensorElementCount(t))} values, which turns the outputs into NaN`, todo: REEXPORT };
  }
  return null;
}

/** What is wrong with the declared inputs, or null. Only fully fixed shapes can be judged. */
export function inputProblem(model: ModelProto): Problem | null {
  const graph = model.graph!;
  const initializers = new Set(graph.initializer.map((t) => t.name));
  for (const v of graph.input) {
    if (initializers.has(v.name)) continue;
    const t = v.type?.value;
    if (t?.case !== "tensorType" || !t.value.shape) continue;
    const dims = t.value.shape.dim.map((d) => (d.value.case === "dimValue" ? Number(d.value.value) : NaN));
    if (dims.length === 0 || !dims.every((d) => d > 0)) continue;
    const values = dims.reduce((a, b) => a * b, 1);
    if (values > MAX_INPUT_VALUES) {
      return {
        reason:
          `its input "${v.name}" has the fixed shape [${dims.join(", ")}]: ${count(values)} values (${Math.round((values * 4) / 2 ** 30).toLocaleString("en-US")} GB as float32) for one image, ` +
          `more than Nibble can allocate (${count(MAX_INPUT_VALUES)} values, 256 MB)`,
        todo: "The input size written in the file is wrong; re-export the model with the input size it was trained for (for example 1 x 3 x 224 x 224).",
      };
    }
  }
  return null;
}

/** "2 NaN and 1 infinite value" or null; with `nanOnly`, infinities are allowed (masks and bounds use them). */
function nonFinite(t: TensorProto, nanOnly = false): string | null {
  if (t.dataType === DT.STRING || tensorElementCount(t) === 0) return null;
  const values = tensorToFloat32(t);
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== v) nan++;
    else if (!nanOnly && (v === Infinity || v === -Infinity)) inf++;
  }
  const parts = [nan ? `${count(nan)} NaN` : "", inf ? `${count(inf)} infinite value${inf > 1 ? "s" : ""}` : ""].filter(Boolean);
  return parts.length ? parts.join(" and ") : null;
}

function allConstants(graph: GraphProto): TensorProto[] {
  const out = [...graph.initializer];
  for (const n of graph.node) {
    const value = n.opType === "Constant" && isDefaultDomain(n) ? constantNodeValue(n) : undefined;
    if (value) out.push(value);
  }
  return out;
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

function label(node: NodeProto): string {
  return node.name ? `${node.opType} "${node.name}"` : `the ${node.opType} producing "${node.output[0] ?? "?"}"`;
}
