// Upsample and Resize. Upsample-9 took `scales` from an attribute to an input; Upsample was deprecated
// at 10 for Resize-10, which computes the same thing: asymmetric coordinates (x_in = x_out / scale) and,
// for nearest, onnxruntime's "simple" rounding: truncation when enlarging, rounding up when shrinking.
// Resize-11 made both explicit (coordinate_transformation_mode, nearest_mode) with other defaults, and
// put an roi input before the scales. Later versions (13, 18, 19) only added modes and attributes whose
// defaults keep the meaning, so nothing more is needed; tf_half_pixel_for_nn, dropped from the spec at
// 13, is still computed by onnxruntime and is left as it is.
import { findAttr, setAttr, stringAttr, stringOf, takeAttr } from "../attributes.ts";
import type { NodeProto } from "onnx-buf";
import type { Rule, RuleContext } from "../rule.ts";
import { tensorToFloat32 } from "../../tensor.ts";

/**
 * The nearest_mode that reproduces Resize-10's rounding, or null when no single mode does. Rounding only
 * matters where the source coordinate x / scale can be fractional: on every enlarged axis (rounded down),
 * and on shrunk axes whose 1 / scale is not a whole number (rounded up).
 */
function nearestModeFor(node: NodeProto, ctx: RuleContext): "floor" | "ceil" | null {
  const scales = ctx.constant(node.input[1] ?? "");
  if (!scales) {
    ctx.note(`${ctx.label(node)} computes its scales while running; it is converted as an enlarging resize (nearest pixel rounded down), which is what upsampling layers do.`);
    return "floor";
  }
  const values = Array.from(tensorToFloat32(scales));
  const down = values.some((s) => s < 1 && !Number.isInteger(1 / s));
  const up = values.some((s) => s > 1);
  if (down && up) return null;
  return down ? "ceil" : "floor";
}

/** Resize-10 (or Upsample) inputs and meaning in Resize-11 terms. */
function toResize11(node: NodeProto, rounding: "floor" | "ceil"): void {
  setAttr(node, stringAttr("coordinate_transformation_mode", "asymmetric"));
  if ((stringOf(findAttr(node, "mode")) ?? "nearest") === "nearest") setAttr(node, stringAttr("nearest_mode", rounding));
  node.input = [node.input[0], "", node.input[1]];
}

export const upsample: Rule = {
  op: "Upsample",
  steps: [
    {
      to: 9,
      apply(node, ctx) {
        const scales = takeAttr(node, "scales");
        if (!scales) return ctx.refuse(`${ctx.label(node)} has no scales, which operator set ${ctx.from} requires`, "The file is damaged; export the model again.");
        node.input = [node.input[0], ctx.float32(`${node.name || node.output[0]}_scales`, scales.floats, [scales.floats.length])];
      },
    },
    {
      // Upsample-10 is Upsample-9 deprecated; Resize-11 with these settings is the same computation
      to: 11,
      apply(node) {
        node.opType = "Resize";
        toResize11(node, "floor");
      },
    },
  ],
};

export const resize: Rule = {
  op: "Resize",
  steps: [
    {
      to: 11,
      apply(node, ctx) {
        const nearest = (stringOf(findAttr(node, "mode")) ?? "nearest") === "nearest";
        const rounding = nearest ? nearestModeFor(node, ctx) : "floor";
        if (!rounding) {
          return ctx.refuse(
            `${ctx.label(node)} enlarges some axes and shrinks others with nearest-pixel rounding, which operator set 11 and later cannot express in one node`,
            "Re-export the model with operator set 11 or later.",
          );
        }
        toResize11(node, rounding);
      },
    },
  ],
};
