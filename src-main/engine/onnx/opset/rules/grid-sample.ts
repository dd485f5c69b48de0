// GridSample-20 renamed its modes: bilinear became linear and bicubic became cubic.
import { findAttr, setAttr, stringAttr, stringOf } from "../attributes.ts";
import type { Rule } from "../rule.ts";

const RENAMED: Record<string, string> = { bilinear: "linear", bicubic: "cubic" };

export const gridSample: Rule = {
  op: "GridSample",
  steps: [
    {
      to: 20,
      apply(node) {
        // an absent mode meant bilinear, and means linear now
        const renamed = RENAMED[stringOf(findAttr(node, "mode")) ?? ""];
        if (!renamed) return false;
        setAttr(node, stringAttr("mode", renamed));
      },
    },
  ],
};
