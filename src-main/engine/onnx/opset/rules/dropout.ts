// Dropout is the identity outside training. Before 12 its optional mask output was computed by
// onnxruntime as all zeros (nothing dropped); from 12 it is all ones (everything kept), so a graph that
// reads the mask of an old Dropout is refused, and an unread mask is dropped. Version 12 also took
// `ratio` from an attribute to an input (it only matters in training, but is kept).
import { takeAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const dropout: Rule = {
  op: "Dropout",
  steps: [
    {
      to: 12,
      apply(node, ctx) {
        const mask = node.output[1];
        if (mask && ctx.isRead(mask)) {
          return ctx.refuse(
            `${ctx.label(node)} passes its mask to other operators; that mask changed meaning at operator set 12 (onnxruntime gives zeros before, ones after)`,
            "Export the model for inference (model.eval() in PyTorch), which leaves the mask out.",
          );
        }
        const ratio = takeAttr(node, "ratio");
        if (!ratio && node.output.length < 2) return false;
        node.output = [node.output[0]];
        if (ratio) node.input = [node.input[0], ctx.float32(`${node.name || node.output[0]}_ratio`, [ratio.f], [])];
      },
    },
  ],
};
