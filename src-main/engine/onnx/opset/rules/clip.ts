// Clip-11 took min and max from attributes to optional inputs of the data's element type.
import { takeAttr } from "../attributes.ts";
import type { NodeProto } from "onnx-buf";
import type { Rule } from "../rule.ts";

export const clip: Rule = {
  op: "Clip",
  steps: [
    {
      to: 11,
      apply(node, ctx) {
        const min = takeAttr(node, "min");
        const max = takeAttr(node, "max");
        const base = node.name || node.output[0];
        const added: NodeProto[] = [];
        const bound = (a: typeof min, which: string): string => {
          if (!a) return "";
          const v = ctx.scalarLike(`${base}_${which}`, a.f, node.input[0]);
          added.push(...v.nodes);
          return v.name;
        };
        node.input = [node.input[0], bound(min, "min"), bound(max, "max")];
        while (node.input.at(-1) === "") node.input.pop();
        return [...added, node];
      },
    },
  ],
};
