// What the data make of a run, in words for the report: a calibration set too small for the chosen methods, and
// an evaluation folder that is the calibration folder (Nibble then evaluates only on what calibration did not use).
import { realpath } from "node:fs/promises";
import path from "node:path";
import type { QuantConfig } from "../../../shared/types.ts";
import type { ImageSet } from "../data/scan.ts";
import type { TensorStatistics } from "./statistics.ts";

/**
 * Samples each data-driven step needs for usable statistics. The paper's authors collected their offline
 * statistics on 32 images (PAPER-RESULTS.md, ResNet-50 row "collected on 32 images"); with fewer, a layer's range
 * and its Laplace/Gaussian fit rest on a handful of images and the clipping values move from run to run.
 */
export const CALIBRATION_NEEDS: Record<string, { samples: number; label: string }> = {
  minmax: { samples: 32, label: "the min/max ranges" },
  percentile: { samples: 32, label: "the percentile clipping" },
  mse: { samples: 32, label: "the MSE clipping search" },
  aciq: { samples: 32, label: "ACIQ clipping" },
  "bitalloc-a": { samples: 32, label: "per-channel activation bits" },
};

/** A warning when the calibration set is smaller than the chosen methods need, saying how many they need. */
export function calibrationSizeNote(config: QuantConfig, statistics: Map<string, TensorStatistics>): string | null {
  const used = Math.max(0, ...[...statistics.values()].map((s) => s.samples));
  const steps = [config.methods.includes("aciq") ? "aciq" : config.baseline, ...config.methods.filter((m) => m === "bitalloc-a")];
  const needs = steps.map((k) => CALIBRATION_NEEDS[k]).filter((n) => n !== undefined);
  const need = Math.max(0, ...needs.map((n) => n.samples));
  if (statistics.size === 0 || used >= need) return null;
  return (
    `Only ${used} calibration sample${used === 1 ? "" : "s"} could be used; ${needs.map((n) => n.label).join(" and ")} need at least ${need} ` +
    `for stable statistics (more is better). Add images to the calibration folder.`
  );
}

async function real(dir: string): Promise<string> {
  return realpath(dir).catch(() => path.resolve(dir));
}

export async function sameFolder(a: string, b: string): Promise<boolean> {
  return (await real(a)) === (await real(b));
}

/**
 * Calibration samples taken from a folder that also serves for evaluation when the user set no limit: half of it,
 * at most 512 (the reference protocol's calibration size), so the other half measures the model on data
 * calibration never saw.
 */
export function heldOutCalibrationLimit(files: number): number {
  return Math.max(1, Math.min(512, Math.floor(files / 2)));
}

/** The evaluation set without the files calibration used, when both point at the same folder, and a note saying so. */
export async function heldOutSplit(calib: ImageSet, evalSet: ImageSet): Promise<{ set: ImageSet; note: string | null }> {
  if (!(await sameFolder(calib.root, evalSet.root))) return { set: evalSet, note: null };
  const used = new Set(calib.files.map((f) => f.rel));
  const files = evalSet.files.filter((f) => !used.has(f.rel));
  const note =
    files.length === 0
      ? `Calibration and evaluation point at the same folder and calibration used all of it, so accuracy was not measured. Choose a separate evaluation folder, or limit the calibration images.`
      : `Calibration and evaluation point at the same folder: calibration used ${calib.files.length} of its ${evalSet.files.length} files (a seeded random subset), and evaluation ran only on the other ${files.length}, which calibration never saw.`;
  return { set: { ...evalSet, files }, note };
}
