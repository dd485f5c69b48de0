// Small ONNX graphs of a few operators at any operator set (7 and up), for testing the opset converter
// against onnxruntime: build the graph as an old exporter would, run it at its own opset, convert it,
// run it at 21, and compare.
import { clone, create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType as AT,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  TensorProto_DataType as DT,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "onnx-buf";
import * as ort from "onnxruntime-node";
import { mulberry32 } from "../../src-main/engine/random.ts";

/** Attribute constructors: i(1), is([0, 2]), f(0.5), fs([1, 2]), s("nearest"), t(tensor), g(graph). */
export const attr = {
  i: (value: number | bigint) => ({ type: AT.INT, i: BigInt(value) }),
  is: (values: readonly (number | bigint)[]) => ({ type: AT.INTS, ints: values.map((v) => BigInt(v)) }),
  f: (value: number) => ({ type: AT.FLOAT, f: value }),
  fs: (values: readonly number[]) => ({ type: AT.FLOATS, floats: [...values] }),
  s: (value: string) => ({ type: AT.STRING, s: new TextEncoder().encode(value) }),
  t: (value: TensorProto) => ({ type: AT.TENSOR, t: value }),
  g: (value: GraphProto) => ({ type: AT.GRAPH, g: value }),
};
type AttrValue = ReturnType<(typeof attr)[keyof typeof attr]>;

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  name?: string;
  domain?: string;
}

export interface GraphSpec {
  /** graph inputs: float32 unless a type is given */
  inputs: Record<string, number[] | { dims: (number | string)[]; type: DT }>;
  initializers?: TensorProto[];
  nodes: NodeSpec[];
  /** graph outputs, float32 and shapeless unless given */
  outputs: (string | { name: string; type?: DT; dims?: number[] })[];
}

export interface ModelSpec extends GraphSpec {
  opset: number;
  irVersion?: number;
}

/** The IR version the ONNX release that introduced each opset wrote (4 for opset 7 and 8: IR 3 has its own test). */
const IR_FOR_OPSET: Record<number, number> = { 7: 4, 8: 4, 9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

function valueInfo(name: string, type: DT, dims?: (number | string)[]): ValueInfoProto {
  const shape = dims && { dim: dims.map((d) => ({ value: typeof d === "number" ? { case: "dimValue" as const, value: BigInt(d) } : { case: "dimParam" as const, value: d } })) };
  return create(ValueInfoProtoSchema, { name, type: { value: { case: "tensorType", value: { elemType: type, ...(shape ? { shape } : {}) } } } });
}

export function node(spec: NodeSpec): NodeProto {
  const attribute: AttributeProto[] = Object.entries(spec.attrs ?? {}).map(([name, v]) => create(AttributeProtoSchema, { name, ...v }));
  return create(NodeProtoSchema, { name: spec.name ?? spec.outputs[0], opType: spec.op, domain: spec.domain ?? "", input: spec.inputs, output: spec.outputs, attribute });
}

/** A graph (also a subgraph body: If branches, Loop bodies). */
export function graph(spec: GraphSpec, name = "g"): GraphProto {
  return create(GraphProtoSchema, {
    name,
    node: spec.nodes.map(node),
    initializer: spec.initializers ?? [],
    input: Object.entries(spec.inputs).map(([n, d]) => (Array.isArray(d) ? valueInfo(n, DT.FLOAT, d) : valueInfo(n, d.type, d.dims))),
    output: spec.outputs.map((o) => (typeof o === "string" ? valueInfo(o, DT.FLOAT) : valueInfo(o.name, o.type ?? DT.FLOAT, o.dims))),
  });
}

export function opModel(spec: ModelSpec): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: BigInt(spec.irVersion ?? IR_FOR_OPSET[spec.opset]),
    opsetImport: [{ domain: "", version: BigInt(spec.opset) }],
    producerName: "nibble-op-model",
    graph: graph(spec, "op_model"),
  });
}

export type Feeds = Record<string, ort.Tensor>;

/** Seeded uniform float32 values in [-1, 1) for every float graph input (other inputs must be given). */
export function randomFeeds(model: ModelProto, seed = 1, given: Feeds = {}): Feeds {
  const r = mulberry32(seed);
  const feeds: Feeds = { ...given };
  const inits = new Set(model.graph!.initializer.map((t) => t.name));
  for (const v of model.graph!.input) {
    if (inits.has(v.name) || feeds[v.name]) continue;
    const t = v.type!.value;
    if (t.case !== "tensorType") throw new Error(`input ${v.name} is not a tensor`);
    const dims = t.value.shape!.dim.map((d) => Number(d.value.value));
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[v.name] = new ort.Tensor("float32", Float32Array.from({ length: n }, () => 2 * r() - 1), dims);
  }
  return feeds;
}

export interface RunResult {
  names: string[];
  values: Record<string, { dims: number[]; data: number[] }>;
}

export async function run(model: ModelProto | Uint8Array, feeds: Feeds): Promise<RunResult> {
  const bytes = model instanceof Uint8Array ? model : toBinary(ModelProtoSchema, model);
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const out = await session.run(feeds);
    const values: RunResult["values"] = {};
    for (const name of session.outputNames) {
      const t = out[name];
      values[name] = { dims: t.dims.map(Number), data: Array.from(t.data as ArrayLike<number | bigint | boolean>, (v) => Number(v)) };
    }
    return { names: [...session.outputNames], values };
  } finally {
    await session.release();
  }
}

export function copy(model: ModelProto): ModelProto {
  return clone(ModelProtoSchema, model);
}
