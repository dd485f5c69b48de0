// GroupNormalization-18 took one scale and one bias per group; version 21 takes one per channel. Each
// group's value is repeated over the group's channels, which needs the channel count: from the input's
// declared shape or the weight of the Conv that produces it.
import { float32Tensor, tensorToFloat32 } from "../../tensor.ts";
import { findAttr } from "../attributes.ts";
import type { Rule } from "../rule.ts";

export const groupNormalization: Rule = {
  op: "GroupNormalization",
  steps: [
    {
      to: 21,
      apply(node, ctx) {
        const groups = Number(findAttr(node, "num_groups")?.i ?? 0n);
        const channels = ctx.channels(node.input[0]);
        const params = [node.input[1], node.input[2]].map((n) => ctx.constant(n ?? ""));
        if (!channels || groups <= 0 || channels % groups !== 0 || !params[0] || !params[1]) {
          return ctx.refuse(
            `${ctx.label(node)} is written for operator set ${ctx.from}, with one scale and bias per group; Nibble needs constant scales and a known channel count to give one per channel as operator set 21 does`,
            "Re-export the model with operator set 21.",
          );
        }
        const per = channels / groups;
        const base = node.name || node.output[0];
        params.forEach((p, k) => {
          const values = tensorToFloat32(p!);
          if (values.length !== groups) ctx.refuse(`${ctx.label(node)} has ${values.length} ${k ? "biases" : "scales"} for ${groups} groups`, "The file is damaged; export the model again.");
          const expanded = Float32Array.from({ length: channels }, (_, c) => values[Math.floor(c / per)]);
          node.input[k + 1] = ctx.initializer(float32Tensor(`${base}_${k ? "bias" : "scale"}_per_channel`, [channels], expanded));
        });
      },
    },
  ],
};
