// Converts a model's default-domain operators from its operator set (7 to 20) to 21, which INT4
// QuantizeLinear/DequantizeLinear need and which every later stage then assumes. Each operator whose
// signature or meaning changed on the way has a rule (registry.ts); a node walks through its rule's
// steps from the model's version up, subgraphs (If, Loop, Scan bodies) included. What cannot be
// converted exactly is refused with a ModelError that says what to do.
import { create } from "@bufbuild/protobuf";
import { NodeProtoSchema, TensorProto_DataType as DT, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from "onnx-buf";
import { ModelError } from "../errors.ts";
import { isDefaultDomain } from "../graph.ts";
import { float32Tensor, int64Tensor } from "../tensor.ts";
import { Scope } from "./facts.ts";
import { nextStep } from "./registry.ts";
import type { RuleContext } from "./rule.ts";

export const TARGET_OPSET = 21;
/** INT4 tensors need IR version 10. */
const TARGET_IR = 10n;

export interface ConversionResult {
  /** the default-domain operator set the model declared */
  from: number;
  /** op type → how many nodes of that type were rewritten */
  rewritten: Map<string, number>;
  /** plain-language facts for the user (approximations, choices) */
  notes: string[];
}

export interface ConversionOptions {
  /** the file the model came from, so refusals name it */
  file?: string;
  /** the caller's name generator, when it keeps adding names after the conversion */
  unique?: (base: string) => string;
}

/** Rewrites `model` in place to operator set 21. A model already at 21 is left as it is. */
export function convertToTargetOpset(model: ModelProto, options: ConversionOptions = {}): ConversionResult {
  const entry = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
  const from = entry ? Number(entry.version) : TARGET_OPSET;
  const result: ConversionResult = { from, rewritten: new Map(), notes: [] };
  if (!model.graph || !entry || from >= TARGET_OPSET) return result;
  const state = new State(model, from, options, result);
  convertGraph(model.graph, null, state);
  convertFunctions(model, state);
  entry.version = BigInt(TARGET_OPSET);
  if (model.irVersion < TARGET_IR) model.irVersion = TARGET_IR;
  return result;
}

/**
 * The pipeline's entry point (export and the statistics graph): converts `model` in place and returns the
 * notes. Models from loadModel are already at 21, so this only converts models built some other way.
 */
export function upgradeOpset(model: ModelProto, uniqueName: (base: string) => string): string[] {
  return convertToTargetOpset(model, { unique: uniqueName }).notes;
}

/** Everything a conversion run shares across graphs: names, what is read, the outcome. */
class State {
  private readonly used = new Set<string>();
  /** every tensor read by some node of some graph, or returned by some graph */
  readonly reads = new Set<string>();

  constructor(
    model: ModelProto,
    readonly from: number,
    readonly options: ConversionOptions,
    readonly result: ConversionResult,
  ) {
    visitGraphs(model.graph!, (g) => {
      for (const n of g.node) {
        this.used.add(n.name);
        for (const i of n.input) {
          this.used.add(i);
          this.reads.add(i);
        }
        n.output.forEach((o) => this.used.add(o));
      }
      for (const list of [g.input, g.output, g.valueInfo, g.initializer]) for (const v of list) this.used.add(v.name);
      for (const o of g.output) this.reads.add(o.name);
    });
  }

  name(base: string): string {
    let name = base;
    if (this.options.unique) {
      // the caller's generator knows the main graph only; subgraph names must be avoided too
      do name = this.options.unique(base);
      while (this.used.has(name));
    } else {
      for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    }
    this.used.add(name);
    return name;
  }

  count(op: string): void {
    this.result.rewritten.set(op, (this.result.rewritten.get(op) ?? 0) + 1);
  }
}

function visitGraphs(graph: GraphProto, visit: (g: GraphProto) => void): void {
  visit(graph);
  for (const n of graph.node) for (const g of subgraphs(n)) visitGraphs(g, visit);
}

function subgraphs(node: NodeProto): GraphProto[] {
  return node.attribute.flatMap((a: AttributeProto) => [...(a.g ? [a.g] : []), ...a.graphs]);
}

function convertGraph(graph: GraphProto, parent: Scope | null, state: State): void {
  const scope = new Scope(graph, parent);
  const nodes: NodeProto[] = [];
  for (const node of graph.node) {
    // subgraph bodies are written in the model's operator set too
    for (const g of subgraphs(node)) convertGraph(g, scope, state);
    const replaced = isDefaultDomain(node) ? convertNode(node, scope, state) : [node];
    for (const n of replaced) scope.addNode(n);
    nodes.push(...replaced);
  }
  graph.node = nodes;
}

function convertNode(node: NodeProto, scope: Scope, state: State): NodeProto[] {
  const op = node.opType;
  const ctx = contextFor(scope, state);
  let out = [node];
  let changed = false;
  for (let version = state.from, step = nextStep(node.opType, version); step && step.to <= TARGET_OPSET; step = nextStep(node.opType, version)) {
    const r = step.apply(node, ctx);
    version = step.to;
    if (r === false) continue;
    changed = true;
    if (!r) continue;
    const at = out.indexOf(node);
    out = [...out.slice(0, at), ...r, ...out.slice(at + 1)];
    if (!r.includes(node)) break;
  }
  if (changed) state.count(op);
  return out;
}

// Local functions declare their own operator sets; their bodies cannot hold initializers, so a function
// that needs a rewrite is refused rather than half-converted.
function convertFunctions(model: ModelProto, state: State): void {
  for (const f of model.functions) {
    const entry = f.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
    if (!entry) continue;
    const version = Number(entry.version);
    const needs = f.node.find((n) => isDefaultDomain(n) && nextStep(n.opType, version) && nextStep(n.opType, version)!.to <= TARGET_OPSET);
    if (needs) {
      refusal(state, `the model function "${f.name}" uses ${needs.opType}, written for operator set ${version}; Nibble does not rewrite function bodies`, "Re-export the model with operator set 13 or later, or without local functions.");
    }
    entry.version = BigInt(TARGET_OPSET);
  }
}

function refusal(state: State, reason: string, todo: string): never {
  const file = state.options.file;
  const subject = file ? `"${file}"` : "The model";
  throw new ModelError(`${subject} cannot be converted from ONNX operator set ${state.from} to ${TARGET_OPSET}, which Nibble's 4-bit format needs: ${reason}. ${todo}`, { file });
}

function label(node: NodeProto): string {
  return node.name ? `${node.opType} "${node.name}"` : `the ${node.opType} producing "${node.output[0] ?? "?"}"`;
}

function contextFor(scope: Scope, state: State): RuleContext {
  const addInitializer = (t: TensorProto): string => {
    t.name = state.name(t.name);
    scope.addInitializer(t);
    return t.name;
  };
  return {
    from: state.from,
    label,
    name: (base) => state.name(base),
    int64: (base, values, scalar = false) => addInitializer(int64Tensor(base, scalar ? [] : [values.length], values)),
    float32: (base, values, dims) => addInitializer(float32Tensor(base, dims, values)),
    initializer: addInitializer,
    scalarLike(base, value, like) {
      const type = scope.elemType(like);
      const f = addInitializer(float32Tensor(base, [], [value]));
      if (type === DT.FLOAT) return { name: f, nodes: [] };
      const name = state.name(`${base}_typed`);
      return { name, nodes: [node("CastLike", [f, like], [name])] };
    },
    node,
    constant: (t) => scope.constant(t),
    rank: (t) => scope.rank(t),
    channels: (t) => scope.channels(t),
    elemType: (t) => scope.elemType(t),
    isRead: (t) => state.reads.has(t),
    note: (text) => state.result.notes.push(text),
    refuse: (reason, todo) => refusal(state, reason, todo),
  };

  function node(opType: string, inputs: string[], outputs: string[], attribute: AttributeProto[] = []): NodeProto {
    return create(NodeProtoSchema, { name: state.name(`${outputs[0]}_${opType.toLowerCase()}`), opType, input: inputs, output: outputs, attribute });
  }
}
