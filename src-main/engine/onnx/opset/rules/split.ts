// Split-13 took `split` from an attribute to an input; Split-18 wants num_outputs when there is no
// `split` input (before, equal parts were implied by the number of outputs).
import { findAttr, intAttr, takeAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const split: Rule = {
  op: "Split",
  steps: [
    {
      to: 13,
      apply(node, ctx) {
        const sizes = takeAttr(node, "split");
        if (!sizes) return false;
        node.input = [node.input[0], ctx.int64(`${node.name || node.output[0]}_split`, sizes.ints)];
      },
    },
    {
      to: 18,
      apply(node) {
        if (node.input[1] || findAttr(node, "num_outputs")) return false;
        node.attribute.push(intAttr("num_outputs", node.output.length));
      },
    },
  ],
};
