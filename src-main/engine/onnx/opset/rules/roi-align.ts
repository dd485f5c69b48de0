// RoiAlign-16 changed the default coordinate_transformation_mode from output_half_pixel (the only
// behaviour of RoiAlign-10) to half_pixel, so the old one is written out.
import { findAttr, stringAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const roiAlign: Rule = {
  op: "RoiAlign",
  steps: [
    {
      to: 16,
      apply(node) {
        if (findAttr(node, "coordinate_transformation_mode")) return false;
        node.attribute.push(stringAttr("coordinate_transformation_mode", "output_half_pixel"));
      },
    },
  ],
};
