// The benchmark's fixed calibration/evaluation split of a folder of images: drawn from the sorted file list with a
// seeded shuffle, so every run (and every machine) calibrates and evaluates on the same images, and never on both.
import { mkdir, readdir, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { compareCodePoints } from "../../src-main/engine/data/order.ts";
import { IMAGE_EXTENSIONS } from "../../src-main/engine/data/scan.ts";
import { mulberry32 } from "../../src-main/engine/random.ts";

export interface Split {
  seed: number;
  /** file names, each list sorted in code-point order */
  calib: string[];
  eval: string[];
}

/**
 * `calib` then `eval` names from one seeded Fisher-Yates shuffle of the sorted, de-duplicated names: disjoint by
 * construction, and independent of the order the names were listed in.
 */
export function splitNames(names: readonly string[], calib: number, evaluation: number, seed: number): Split {
  const sorted = [...new Set(names)].sort(compareCodePoints);
  if (calib + evaluation > sorted.length) {
    throw new Error(`a split of ${calib} calibration and ${evaluation} evaluation images needs ${calib + evaluation} distinct images; there are ${sorted.length}`);
  }
  const rand = mulberry32(seed);
  for (let i = sorted.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [sorted[i], sorted[j]] = [sorted[j], sorted[i]];
  }
  return {
    seed,
    calib: sorted.slice(0, calib).sort(compareCodePoints),
    eval: sorted.slice(calib, calib + evaluation).sort(compareCodePoints),
  };
}

/** The image files directly in `dir` (the fixture folders keep their images at the top level). */
export async function imageNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !n.startsWith(".") && IMAGE_EXTENSIONS.has(path.extname(n).toLowerCase()));
}

/** A folder of symbolic links to `names` in `from`, rebuilt from scratch so no stale link survives. */
export async function linkFolder(from: string, names: readonly string[], to: string): Promise<string> {
  await rm(to, { recursive: true, force: true });
  await mkdir(to, { recursive: true });
  for (const n of names) await symlink(path.resolve(from, n), path.join(to, n));
  return to;
}
