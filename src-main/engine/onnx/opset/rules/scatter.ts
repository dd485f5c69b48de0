// Scatter (9) was deprecated at 11 for ScatterElements, which has the same inputs, attribute and meaning.
import type { Rule } from "../rule.ts";

export const scatter: Rule = {
  op: "Scatter",
  steps: [
    {
      to: 11,
      apply(node) {
        node.opType = "ScatterElements";
      },
    },
  ],
};
