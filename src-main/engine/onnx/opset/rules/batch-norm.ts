// BatchNormalization. Version 9 dropped `spatial`: 1 (the default) is what every later version
// computes; 0 normalized each element with its own statistics, [C, D1, ...] shaped, which in inference
// is an elementwise affine map, so it becomes Mul and Add with the folded constants. Up to 13, listing
// the optional outputs (running and saved statistics) meant training mode, and onnxruntime then
// normalizes with each batch's own statistics; such a graph is not an inference model and is refused.
import { TensorProto_DataType as DT, type NodeProto } from "onnx-buf";
import { float32Tensor, tensorToFloat32 } from "../../tensor.ts";
import { findAttr, takeAttr } from "../attributes.ts";
import type { Rule, RuleContext } from "../rule.ts";

function refuseTrainingMode(node: NodeProto, ctx: RuleContext): never {
  return ctx.refuse(
    `${ctx.label(node)} lists the outputs of training mode (running and saved statistics), so it normalizes each batch with that batch's own statistics instead of the stored ones`,
    "Export the model for inference (model.eval() in PyTorch) and try again.",
  );
}

function listsTrainingOutputs(node: NodeProto): boolean {
  return node.output.slice(1).some((o) => o !== "");
}

/** y = x · s + b with s = γ / √(var + ε), b = β − mean · s, from the four constants (computed in float64). */
function perElementAffine(node: NodeProto, ctx: RuleContext): NodeProto[] {
  const params = [1, 2, 3, 4].map((k) => ctx.constant(node.input[k] ?? ""));
  if (params.some((p) => !p || p.dataType !== DT.FLOAT)) {
    ctx.refuse(
      `${ctx.label(node)} normalizes every element separately (spatial = 0) with statistics that are not float32 constants`,
      "Re-export the model with operator set 9 or later.",
    );
  }
  const [gamma, beta, mean, variance] = params.map((p) => tensorToFloat32(p!));
  const dims = params[0]!.dims.map(Number);
  if ([beta, mean, variance].some((p) => p.length !== gamma.length)) {
    ctx.refuse(`${ctx.label(node)} has scale, bias, mean and variance of different sizes`, "The file is damaged; export the model again.");
  }
  const eps = findAttr(node, "epsilon")?.f ?? 1e-5;
  const s = new Float32Array(gamma.length);
  const b = new Float32Array(gamma.length);
  for (let i = 0; i < gamma.length; i++) {
    const scale = gamma[i] / Math.sqrt(variance[i] + eps);
    s[i] = scale;
    b[i] = beta[i] - mean[i] * scale;
  }
  const base = node.name || node.output[0];
  const scaled = ctx.name(`${base}_scaled`);
  return [
    ctx.node("Mul", [node.input[0], ctx.initializer(float32Tensor(`${base}_scale`, dims, s))], [scaled]),
    ctx.node("Add", [scaled, ctx.initializer(float32Tensor(`${base}_shift`, dims, b))], [node.output[0]]),
  ];
}

export const batchNormalization: Rule = {
  op: "BatchNormalization",
  steps: [
    {
      to: 9,
      apply(node, ctx) {
        const spatial = takeAttr(node, "spatial");
        if (!spatial) return false;
        if (spatial.i !== 0n) return;
        return listsTrainingOutputs(node) ? refuseTrainingMode(node, ctx) : perElementAffine(node, ctx);
      },
    },
    {
      to: 14,
      apply(node, ctx) {
        if (listsTrainingOutputs(node)) return refuseTrainingMode(node, ctx);
        if (node.output.length <= 1) return false;
        node.output = [node.output[0]];
      },
    },
  ],
};
