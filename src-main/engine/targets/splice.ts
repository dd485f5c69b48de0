// The last step every target's emitter shares: the nodes it made go in around the nodes they quantize, the
// tensors they replaced go unless something still reads them, and the file carries Nibble's metadata.
import { create } from "@bufbuild/protobuf";
import { StringStringEntryProtoSchema, type ModelProto, type NodeProto } from "onnx-buf";

export function spliceQuantizers(
  model: ModelProto,
  before: ReadonlyMap<NodeProto, NodeProto[]>,
  after: ReadonlyMap<NodeProto, NodeProto[]>,
  dropped: ReadonlySet<string>,
  metadata: Readonly<Record<string, string>>,
): void {
  const graph = model.graph!;
  const nodes: NodeProto[] = [];
  for (const n of graph.node) nodes.push(...(before.get(n) ?? []), n, ...(after.get(n) ?? []));
  graph.node = nodes;
  const stillUsed = new Set(nodes.flatMap((n) => n.input));
  graph.initializer = graph.initializer.filter((t) => !dropped.has(t.name) || stillUsed.has(t.name));
  graph.input = graph.input.filter((v) => !dropped.has(v.name) || stillUsed.has(v.name));
  for (const [key, value] of Object.entries(metadata)) {
    const existing = model.metadataProps.find((p) => p.key === key);
    if (existing) existing.value = value;
    else model.metadataProps.push(create(StringStringEntryProtoSchema, { key, value }));
  }
}
