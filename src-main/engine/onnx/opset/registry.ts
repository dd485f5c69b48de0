// Operator type → the steps that carry it from any operator set between 7 and 20 to 21. Operators not
// listed kept their signature and meaning over that range (docs/OPSETS.md lists which and why).
import type { Rule, Step } from "./rule.ts";
import { axes } from "./rules/axes.ts";
import { batchNormalization } from "./rules/batch-norm.ts";
import { clip } from "./rules/clip.ts";
import { dft } from "./rules/dft.ts";
import { dropout } from "./rules/dropout.ts";
import { experimental } from "./rules/experimental.ts";
import { gridSample } from "./rules/grid-sample.ts";
import { groupNormalization } from "./rules/group-norm.ts";
import { pad } from "./rules/pad.ts";
import { resize, upsample } from "./rules/resize.ts";
import { roiAlign } from "./rules/roi-align.ts";
import { scan } from "./rules/scan.ts";
import { scatter } from "./rules/scatter.ts";
import { slice } from "./rules/slice.ts";
import { softmax } from "./rules/softmax.ts";
import { split } from "./rules/split.ts";
import { topK } from "./rules/topk.ts";

const ALL: Rule[] = [
  ...axes, batchNormalization, clip, dft, dropout, ...experimental, gridSample, groupNormalization, pad, resize,
  roiAlign, scan, scatter, slice, ...softmax, split, topK, upsample,
];

export const RULES: ReadonlyMap<string, readonly Step[]> = new Map(ALL.map((r) => [r.op, [...r.steps].sort((a, b) => a.to - b.to)]));

/** The first step of `op` past `version`, if any. */
export function nextStep(op: string, version: number): Step | undefined {
  return RULES.get(op)?.find((s) => s.to > version);
}
