// Softmax, LogSoftmax and Hardmax before 13 flattened the input to 2-D at `axis` (default 1) and
// normalized each row over everything from `axis` on; from 13 they act on the single axis `axis`
// (default -1). The two agree when `axis` is the last axis, so a node whose input rank is known and
// whose axis is the last one only gets the axis written out. Otherwise the old meaning is rebuilt
// exactly, for any rank: Flatten at `axis`, the operator on the last axis, Reshape back to the input's
// shape.
import { findAttr, intAttr, setAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

function coercedTo2d(op: string): Rule {
  return {
    op,
    steps: [
      {
        to: 13,
        apply(node, ctx) {
          const axis = Number(findAttr(node, "axis")?.i ?? 1n);
          const x = node.input[0];
          // the output has the input's shape, and graph outputs often declare theirs
          const rank = ctx.rank(x) ?? ctx.rank(node.output[0]);
          if (rank !== undefined && (axis === rank - 1 || axis === -1)) {
            setAttr(node, intAttr("axis", -1));
            return;
          }
          const base = node.name || node.output[0];
          const shape = ctx.name(`${base}_input_shape`);
          const flat = ctx.name(`${base}_flat`);
          const normalized = ctx.name(`${base}_flat_out`);
          const out = node.output[0];
          setAttr(node, intAttr("axis", -1));
          node.input = [flat];
          node.output = [normalized];
          return [
            ctx.node("Shape", [x], [shape]),
            ctx.node("Flatten", [x], [flat], [intAttr("axis", axis)]),
            node,
            ctx.node("Reshape", [normalized, shape], [out]),
          ];
        },
      },
    ],
  };
}

export const softmax: Rule[] = ["Softmax", "LogSoftmax", "Hardmax"].map(coercedTo2d);
