// Pad-11 took pads and the padding value from attributes to inputs; the value becomes a scalar of the
// data's own element type.
import { takeAttr, stringOf, findAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const pad: Rule = {
  op: "Pad",
  steps: [
    {
      to: 11,
      apply(node, ctx) {
        const pads = takeAttr(node, "pads");
        const value = takeAttr(node, "value");
        if (!pads) return ctx.refuse(`${ctx.label(node)} has no pads, which operator set ${ctx.from} requires`, "The file is damaged; export the model again.");
        const base = node.name || node.output[0];
        node.input = [node.input[0], ctx.int64(`${base}_pads`, pads.ints)];
        const mode = stringOf(findAttr(node, "mode")) ?? "constant";
        // zero is the default of the new input too; reflect and edge never read the value
        if (!value || value.f === 0 || mode !== "constant") return;
        const v = ctx.scalarLike(`${base}_value`, value.f, node.input[0]);
        node.input.push(v.name);
        return [...v.nodes, node];
      },
    },
  ],
};
