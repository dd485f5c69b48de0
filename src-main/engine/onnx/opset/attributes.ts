// Reading and writing node attributes the way conversion rules need them: taking an attribute off a node
// (it becomes an input), setting one that a newer version needs spelled out.
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, type AttributeProto, type NodeProto } from "onnx-buf";

const text = new TextDecoder();
const bytes = new TextEncoder();

export function findAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** Removes the attribute from the node and returns it. */
export function takeAttr(node: NodeProto, name: string): AttributeProto | undefined {
  const i = node.attribute.findIndex((a) => a.name === name);
  return i < 0 ? undefined : node.attribute.splice(i, 1)[0];
}

export function stringOf(a: AttributeProto | undefined): string | undefined {
  return a ? text.decode(a.s) : undefined;
}

export function intAttr(name: string, value: number | bigint): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(value) });
}

export function intsAttr(name: string, values: readonly (number | bigint)[]): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AT.INTS, ints: values.map((v) => BigInt(v)) });
}

export function floatAttr(name: string, value: number): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AT.FLOAT, f: value });
}

export function stringAttr(name: string, value: string): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AT.STRING, s: bytes.encode(value) });
}

/** Sets (replacing any existing one) an attribute. */
export function setAttr(node: NodeProto, attr: AttributeProto): void {
  takeAttr(node, attr.name);
  node.attribute.push(attr);
}
