// How many calibration images the chosen settings need, and the warning when there are fewer. The
// statistics behind every activation range (min/max, the Laplace/Gaussian fit of ACIQ, the per-channel
// spreads of bit allocation, the percentile and MSE histograms) are averages over images: on a handful of
// images they describe those images, not the data the model will see.
import type { QuantConfig } from "../../shared/types.ts";
import { methodShort } from "../../shared/describe.ts";

export interface CalibrationNeed {
  /** what needs them, in words */
  what: string;
  /** fewer than this: warned */
  minimum: number;
}

/**
 * The authors' static calibration uses 32 images (ALGORITHMS.md §6) and their reference run 512: 32 is the
 * floor below which a range is one image's accident; fitted and per-channel statistics want more. Weight-only
 * methods (bit allocation of the weights, bias correction) read no images.
 */
const NEEDS: Record<string, number> = { aciq: 64, "bitalloc-a": 64 };
const BASELINE_NEEDS: Record<QuantConfig["baseline"], number> = { minmax: 32, percentile: 128, mse: 64 };

export const RECOMMENDED_CALIBRATION = 256;

export function calibrationNeeds(c: Pick<QuantConfig, "methods" | "baseline">): CalibrationNeed[] {
  const needs: CalibrationNeed[] = [];
  for (const m of c.methods) if (NEEDS[m] !== undefined) needs.push({ what: methodShort(m), minimum: NEEDS[m] });
  if (!c.methods.includes("aciq")) {
    const b = c.baseline;
    needs.push({ what: b === "minmax" ? "Min/max ranges" : b === "mse" ? "MSE search" : "Percentile clipping", minimum: BASELINE_NEEDS[b] });
  } else {
    needs.push({ what: "Activation ranges", minimum: BASELINE_NEEDS.minmax });
  }
  return needs;
}

/** The warning for `images` calibration images, or null when there are enough. */
export function calibrationWarning(images: number, c: Pick<QuantConfig, "methods" | "baseline">): string | null {
  const needs = calibrationNeeds(c);
  const most = needs.reduce((a, b) => (b.minimum > a.minimum ? b : a));
  if (images >= most.minimum) return null;
  const list = needs
    .filter((n) => n.minimum > images)
    .map((n) => `${n.what} needs at least ${n.minimum}`)
    .join(", ");
  return `Only ${images.toLocaleString("en-US")} calibration image${images === 1 ? "" : "s"}: too few for the chosen settings (${list}). The ranges Nibble measures would describe these images, not your data; use ${RECOMMENDED_CALIBRATION} or more typical images.`;
}
