// Scan-8 iterated over a batch axis, with per-sequence lengths; Scan-9 dropped both and changed its
// inputs. Nibble does not rewrite the loop body for that and refuses the node.
import type { Rule } from "../rule.ts";

export const scan: Rule = {
  op: "Scan",
  steps: [
    {
      to: 9,
      apply(node, ctx) {
        return ctx.refuse(`${ctx.label(node)} is written for operator set 8, whose Scan has a batch axis later versions removed`, "Re-export the model with operator set 9 or later.");
      },
    },
  ],
};
