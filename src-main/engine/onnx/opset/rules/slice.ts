// Slice-10 took starts, ends and axes from attributes to inputs (and added steps, default 1).
import { takeAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const slice: Rule = {
  op: "Slice",
  steps: [
    {
      to: 10,
      apply(node, ctx) {
        const starts = takeAttr(node, "starts");
        const ends = takeAttr(node, "ends");
        const axes = takeAttr(node, "axes");
        if (!starts || !ends) return ctx.refuse(`${ctx.label(node)} has no starts or ends, which operator set ${ctx.from} requires`, "The file is damaged; export the model again.");
        const base = node.name || node.output[0];
        // bigint all the way: exporters write "to the end" as INT64_MAX, which a JS number cannot hold
        node.input = [node.input[0], ctx.int64(`${base}_starts`, starts.ints), ctx.int64(`${base}_ends`, ends.ints)];
        if (axes) node.input.push(ctx.int64(`${base}_axes`, axes.ints));
      },
    },
  ],
};
