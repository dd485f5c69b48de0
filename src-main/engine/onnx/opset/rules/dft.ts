// DFT-20 took `axis` from an attribute (default 1) to an input (default -2), so the old default is
// written out.
import { takeAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const dft: Rule = {
  op: "DFT",
  steps: [
    {
      to: 20,
      apply(node, ctx) {
        const axis = takeAttr(node, "axis");
        while (node.input.length < 2) node.input.push("");
        node.input[2] = ctx.int64(`${node.name || node.output[0]}_axis`, [axis ? axis.i : 1n], true);
      },
    },
  ],
};
