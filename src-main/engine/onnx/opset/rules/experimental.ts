// Operators that early ONNX releases had as "experimental" and removed (onnx 1.5, operator set 10):
// onnxruntime has no kernel for them once the model declares a current operator set. ImageScaler,
// common in models converted from Caffe and CNTK (tiny YOLOv2, emotion FER+), is a per-channel affine
// map and becomes Mul and Add; the others are refused.
import { TensorProto_DataType as DT } from "onnx-buf";
import { findAttr } from "../attributes.ts";
import type { Rule, Step } from "../rule.ts";

const imageScaler: Step = {
  to: 10,
  apply(node, ctx) {
    if (ctx.elemType(node.input[0]) !== undefined && ctx.elemType(node.input[0]) !== DT.FLOAT) {
      ctx.refuse(`${ctx.label(node)} scales a tensor that is not float32`, "Re-export the model with operator set 10 or later.");
    }
    const scale = findAttr(node, "scale")?.f ?? 1;
    const bias = findAttr(node, "bias")?.floats ?? [];
    const base = node.name || node.output[0];
    const scaled = bias.length ? ctx.name(`${base}_scaled`) : node.output[0];
    const nodes = [ctx.node("Mul", [node.input[0], ctx.float32(`${base}_scale`, [scale], [])], [scaled])];
    // bias is per channel of an [N, C, H, W] image: shape [C, 1, 1] broadcasts over it
    if (bias.length) nodes.push(ctx.node("Add", [scaled, ctx.float32(`${base}_bias`, bias, [bias.length, 1, 1])], [node.output[0]]));
    return nodes;
  },
};

const REMOVED = ["ATen", "Affine", "ConstantFill", "Crop", "DynamicSlice", "GRUUnit", "GivenTensorFill", "ParametricSoftplus", "Scale", "ScaledTanh"];

export const experimental: Rule[] = [
  { op: "ImageScaler", steps: [imageScaler] },
  ...REMOVED.map((op) => ({
    op,
    steps: [
      {
        to: 10,
        apply(node, ctx) {
          return ctx.refuse(`${ctx.label(node)} is an experimental operator that ONNX removed at operator set 10`, "Re-export the model with a current exporter and operator set 13 or later.");
        },
      } satisfies Step,
    ],
  })),
];
