// INT4 QuantizeLinear/DequantizeLinear need opset 21. Between opset 11 and 21 a few operators moved
// attributes to inputs or changed defaults; rewrite those so the graph keeps its meaning at 21.
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType, TensorProtoSchema, TensorProto_DataType, type GraphProto, type ModelProto, type NodeProto } from "onnx-buf";

const AXES_TO_INPUT: Record<string, number> = {
  Squeeze: 13,
  Unsqueeze: 13,
  ReduceSum: 13,
  ReduceMean: 18,
  ReduceMax: 18,
  ReduceMin: 18,
  ReduceProd: 18,
  ReduceL1: 18,
  ReduceL2: 18,
  ReduceLogSum: 18,
  ReduceLogSumExp: 18,
  ReduceSumSquare: 18,
};

export const TARGET_OPSET = 21;

function int64Initializer(graph: GraphProto, name: string, values: bigint[]): void {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  graph.initializer.push(create(TensorProtoSchema, { name, dataType: TensorProto_DataType.INT64, dims: [BigInt(values.length)], rawData: raw }));
}

function takeAttribute(node: NodeProto, name: string) {
  const i = node.attribute.findIndex((a) => a.name === name);
  if (i < 0) return undefined;
  const [attr] = node.attribute.splice(i, 1);
  return attr;
}

/**
 * Rewrites the default-domain nodes of `model` (in place) from its opset to TARGET_OPSET.
 * Returns plain-language notes for anything whose meaning could not be guaranteed.
 */
export function upgradeOpset(model: ModelProto, uniqueName: (base: string) => string): string[] {
  const notes: string[] = [];
  const entry = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
  const from = entry ? Number(entry.version) : TARGET_OPSET;
  if (!model.graph) return notes;
  const graph = model.graph;
  for (const node of graph.node) {
    if (node.domain !== "" && node.domain !== "ai.onnx") continue;
    const movedAt = AXES_TO_INPUT[node.opType];
    if (movedAt !== undefined && from < movedAt) {
      const axes = takeAttribute(node, "axes");
      if (axes) {
        const name = uniqueName(`${node.name || node.opType}_axes`);
        int64Initializer(graph, name, axes.ints.map((v) => BigInt(v)));
        // Reduce ops take (data, axes); Squeeze/Unsqueeze take (data, axes) too.
        node.input.splice(1, node.input.length - 1, name);
      }
    }
    if (node.opType === "Split" && from < 18) {
      const split = from < 13 ? takeAttribute(node, "split") : undefined;
      if (split) {
        const name = uniqueName(`${node.name || "Split"}_split`);
        int64Initializer(graph, name, split.ints.map((v) => BigInt(v)));
        node.input[1] = name;
      } else if (node.input.length < 2 || node.input[1] === "") {
        node.attribute.push(create(AttributeProtoSchema, { name: "num_outputs", type: AttributeProto_AttributeType.INT, i: BigInt(node.output.length) }));
      }
    }
    if ((node.opType === "Softmax" || node.opType === "LogSoftmax" || node.opType === "Hardmax") && from < 13) {
      // Before 13 these flattened everything from `axis` (default 1); from 13 they act on one axis (default −1).
      // The two agree when `axis` is the last axis, which holds for classifier logits [N, K].
      if (!node.attribute.some((a) => a.name === "axis")) {
        node.attribute.push(create(AttributeProtoSchema, { name: "axis", type: AttributeProto_AttributeType.INT, i: 1n }));
      }
      notes.push(`${node.opType} "${node.name}" was written for opset ${from}; it keeps its meaning only on 2-D inputs such as logits.`);
    }
    if (node.opType === "Dropout" && from < 12) takeAttribute(node, "ratio");
  }
  if (entry) entry.version = BigInt(TARGET_OPSET);
  if (model.irVersion < 10n) model.irVersion = 10n;
  return notes;
}
