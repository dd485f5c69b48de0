// TopK-10 took k from an attribute to a 1-D int64 input; TopK-11 only added largest/sorted, whose
// defaults are the old behaviour.
import { takeAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const topK: Rule = {
  op: "TopK",
  steps: [
    {
      to: 10,
      apply(node, ctx) {
        const k = takeAttr(node, "k");
        if (!k) return ctx.refuse(`${ctx.label(node)} has no k, which operator set ${ctx.from} requires`, "The file is damaged; export the model again.");
        node.input = [node.input[0], ctx.int64(`${node.name || node.output[0]}_k`, [k.i])];
      },
    },
  ],
};
