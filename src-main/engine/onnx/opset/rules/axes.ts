// Squeeze, Unsqueeze and ReduceSum took `axes` from an attribute to an input at 13, the other reductions
// at 18. An absent or empty list stays absent: "all axes" for reductions (noop_with_empty_axes is 0) and
// "every axis of size 1" for Squeeze mean the same in both versions.
import { takeAttr } from "../attributes.ts";
import type { Rule, Step } from "../rule.ts";

function axesToInput(to: number): Step {
  return {
    to,
    apply(node, ctx) {
      const axes = takeAttr(node, "axes");
      if (!axes || axes.ints.length === 0) return false;
      node.input = [node.input[0], ctx.int64(`${node.name || node.output[0]}_axes`, axes.ints)];
    },
  };
}

const AT_13 = ["Squeeze", "Unsqueeze", "ReduceSum"];
const AT_18 = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"];

export const axes: Rule[] = [
  ...AT_13.map((op) => ({ op, steps: [axesToInput(13)] })),
  ...AT_18.map((op) => ({ op, steps: [axesToInput(18)] })),
];
