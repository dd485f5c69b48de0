// An index over a GraphProto and the few graph edits the pipeline needs. The index is a snapshot:
// after editing the graph, build a new one (it is linear in the graph size).
import { clone, create } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AT,
  ModelProtoSchema,
  TensorProtoSchema,
  TensorProto_DataType as DT,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "onnx-buf";
import type { TensorInfo } from "../../../shared/types.ts";
import { dataTypeLabel } from "./tensor.ts";

export interface GraphIndex {
  graph: GraphProto;
  producers: Map<string, NodeProto>;
  /** Nodes reading a tensor, including nodes whose subgraphs read it from the outer scope. */
  consumers: Map<string, NodeProto[]>;
  initializers: Map<string, TensorProto>;
  /** Values of Constant node outputs. */
  constantNodes: Map<string, TensorProto>;
  /** Graph inputs that are real inputs, i.e. not initializers (IR < 4 lists initializers as inputs too). */
  inputs: string[];
  outputs: Set<string>;
}

export function indexGraph(graph: GraphProto): GraphIndex {
  const producers = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  const constantNodes = new Map<string, TensorProto>();
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  for (const node of graph.node) {
    for (const o of node.output) if (o) producers.set(o, node);
    for (const i of readsOf(node)) {
      const list = consumers.get(i);
      if (list) {
        if (!list.includes(node)) list.push(node);
      } else consumers.set(i, [node]);
    }
    if (node.opType === "Constant" && isDefaultDomain(node) && node.output[0]) {
      const value = constantNodeValue(node);
      if (value) constantNodes.set(node.output[0], value);
    }
  }
  return {
    graph,
    producers,
    consumers,
    initializers,
    constantNodes,
    inputs: graph.input.map((v) => v.name).filter((n) => !initializers.has(n)),
    outputs: new Set(graph.output.map((v) => v.name)),
  };
}

export function consumersOf(index: GraphIndex, tensor: string): NodeProto[] {
  return index.consumers.get(tensor) ?? [];
}

/** The constant value of a tensor when it is an initializer or a Constant node's output. */
export function constantOf(index: GraphIndex, tensor: string): TensorProto | undefined {
  return index.initializers.get(tensor) ?? index.constantNodes.get(tensor);
}

export function isDefaultDomain(node: NodeProto): boolean {
  return node.domain === "" || node.domain === "ai.onnx";
}

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attribute(node, name);
  return a ? a.ints.map(Number) : undefined;
}

/** A Constant node's value as a tensor, for the numeric value attributes; undefined otherwise. */
export function constantNodeValue(node: NodeProto): TensorProto | undefined {
  const a = node.attribute[0];
  if (!a || node.attribute.length !== 1) return undefined;
  const make = (dataType: number, dims: bigint[], fields: { floatData?: number[]; int64Data?: bigint[] }): TensorProto =>
    create(TensorProtoSchema, { name: node.output[0], dataType, dims, ...fields });
  switch (a.name) {
    case "value": return a.t;
    case "value_float": return make(DT.FLOAT, [], { floatData: [a.f] });
    case "value_floats": return make(DT.FLOAT, [BigInt(a.floats.length)], { floatData: [...a.floats] });
    case "value_int": return make(DT.INT64, [], { int64Data: [a.i] });
    case "value_ints": return make(DT.INT64, [BigInt(a.ints.length)], { int64Data: [...a.ints] });
    default: return undefined;
  }
}

/** Tensors a node reads: its inputs, plus outer-scope names its subgraphs (If/Loop/Scan bodies) read. */
export function readsOf(node: NodeProto): string[] {
  const reads = node.input.filter((i) => i !== "");
  for (const g of subgraphsOf(node)) reads.push(...outerReads(g));
  return reads;
}

function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.type === AT.GRAPH && a.g) out.push(a.g);
    if (a.type === AT.GRAPHS) out.push(...a.graphs);
  }
  return out;
}

function outerReads(g: GraphProto): string[] {
  const defined = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  const reads: string[] = [];
  for (const n of g.node) {
    for (const i of readsOf(n)) if (!defined.has(i)) reads.push(i);
    for (const o of n.output) defined.add(o);
  }
  for (const o of g.output) if (!defined.has(o.name)) reads.push(o.name);
  return reads;
}

/**
 * Why the graph's nodes are not a valid topologically sorted program, or null. ONNX requires this
 * order and the pipeline walks nodes in it, so a violation means a damaged or hand-edited file.
 */
export function findOrderProblem(graph: GraphProto): string | null {
  const available = new Set<string>(["", ...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name)]);
  const producedSomewhere = new Set(graph.node.flatMap((n) => n.output));
  for (const [i, node] of graph.node.entries()) {
    const label = `operator ${i + 1} (${node.opType}${node.name ? ` "${node.name}"` : ""})`;
    for (const input of readsOf(node)) {
      if (available.has(input)) continue;
      return producedSomewhere.has(input)
        ? `${label} reads "${input}" before the operator producing it; the operators are out of order`
        : `${label} reads "${input}", which nothing produces`;
    }
    for (const o of node.output) {
      if (o === "") continue;
      if (available.has(o)) return `${label} produces "${o}", which is already defined elsewhere`;
      available.add(o);
    }
  }
  const missing = graph.output.find((o) => !available.has(o.name));
  return missing ? `the graph output "${missing.name}" is never produced` : null;
}

/** Makes names unique against everything already named in the graph and everything made so far. */
export function nameGenerator(graph: GraphProto): (base: string) => string {
  const used = new Set<string>();
  for (const n of graph.node) {
    used.add(n.name);
    n.input.forEach((x) => used.add(x));
    n.output.forEach((x) => used.add(x));
  }
  for (const list of [graph.input, graph.output, graph.valueInfo, graph.initializer]) for (const v of list) used.add(v.name);
  return (base: string) => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
}

/** Points every input of `node` that reads `from` at `to`. */
export function replaceInput(node: NodeProto, from: string, to: string): void {
  node.input = node.input.map((i) => (i === from ? to : i));
}

export function removeNodes(graph: GraphProto, nodes: Iterable<NodeProto>): void {
  const drop = new Set(nodes);
  graph.node = graph.node.filter((n) => !drop.has(n));
}

/**
 * Inserts `nodes` (which read `tensor` and produce `output`) right after the producer of `tensor`,
 * and makes every other reader see `output` instead. When `tensor` is a graph output, the graph's
 * public names are kept: the producer is renamed to write a fresh name, the new nodes read that and
 * write `tensor` itself. Returns the name that now carries the new nodes' result. Readers inside
 * subgraphs keep reading the original value.
 */
export function insertNodesAfter(graph: GraphProto, tensor: string, nodes: NodeProto[], output: string): string {
  const added = new Set(nodes);
  const producerAt = graph.node.findIndex((n) => n.output.includes(tensor));
  let result = output;
  if (graph.output.some((o) => o.name === tensor)) {
    const fresh = nameGenerator(graph)(`${tensor}_pre`);
    const producer = graph.node[producerAt];
    if (producer) producer.output = producer.output.map((o) => (o === tensor ? fresh : o));
    else throw new Error(`insertNodesAfter: graph output "${tensor}" must be produced by a node`);
    for (const n of nodes) {
      replaceInput(n, tensor, fresh);
      n.output = n.output.map((o) => (o === output ? tensor : o));
    }
    result = tensor;
  } else {
    for (const n of graph.node) if (!added.has(n)) replaceInput(n, tensor, output);
  }
  graph.node.splice(producerAt + 1, 0, ...nodes);
  return result;
}

/** Drops the named initializers (and their graph input / value_info entries) that nothing reads any more. */
export function removeUnusedInitializers(graph: GraphProto, names: Iterable<string>): void {
  const read = new Set<string>(graph.output.map((o) => o.name));
  for (const n of graph.node) for (const i of readsOf(n)) read.add(i);
  const drop = new Set([...names].filter((n) => !read.has(n)));
  if (drop.size === 0) return;
  graph.initializer = graph.initializer.filter((t) => !drop.has(t.name));
  graph.input = graph.input.filter((v) => !drop.has(v.name));
  graph.valueInfo = graph.valueInfo.filter((v) => !drop.has(v.name));
}

/**
 * Adds an initializer. Before IR version 4 every initializer also had to be declared as a graph
 * input, so for those models it is declared too.
 */
export function addInitializer(graph: GraphProto, tensor: TensorProto, irVersion: number): void {
  graph.initializer.push(tensor);
  if (irVersion >= 4) return;
  graph.input.push(
    create(ValueInfoProtoSchema, {
      name: tensor.name,
      type: {
        value: {
          case: "tensorType",
          value: { elemType: tensor.dataType, shape: { dim: tensor.dims.map((d) => ({ value: { case: "dimValue" as const, value: d } })) } },
        },
      },
    }),
  );
}

/** Name, element type label and shape of a graph input/output; symbolic dims stay strings, unknown dims are "?". */
export function tensorInfoOf(v: ValueInfoProto): TensorInfo {
  const t = v.type?.value;
  if (t?.case !== "tensorType") return { name: v.name, elemType: t?.case ?? "unknown", shape: [] };
  const shape = (t.value.shape?.dim ?? []).map((d) =>
    d.value.case === "dimValue" ? Number(d.value.value) : d.value.case === "dimParam" && d.value.value ? d.value.value : "?",
  );
  return { name: v.name, elemType: dataTypeLabel(t.value.elemType), shape };
}

/** A graph output of element type `elemType` (ONNX TensorProto.DataType) and unknown shape. */
export function tensorOutput(name: string, elemType = 1): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: "tensorType", value: create(TypeProto_TensorSchema, { elemType }) } }),
  });
}

/** A copy of the model that also outputs `tensors`, for reading intermediate values. */
export function withOutputs(model: ModelProto, tensors: string[]): ModelProto {
  const copy = clone(ModelProtoSchema, model);
  const graph = copy.graph!;
  const existing = new Set(graph.output.map((o) => o.name));
  for (const t of tensors) if (!existing.has(t)) graph.output.push(tensorOutput(t));
  return copy;
}
