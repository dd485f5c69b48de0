// Lists the images of a calibration or evaluation folder and works out their labels.
// Only names are read here; decoding (and rejecting undecodable files) happens in the loader.
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { DataError } from "./errors.ts";
import { parseClassesTxt, parseLabelsTxt, type LabelLine } from "./labels.ts";
import { compareCodePoints } from "./order.ts";
import { mulberry32 } from "../random.ts";

export interface ImageFile {
  /** absolute path */
  path: string;
  /** path relative to the set's root, "/"-separated on every platform */
  rel: string;
  /** class index, null when the folder carries no labels for this image */
  label: number | null;
}

/** What a folder is for, so every message about it can say which folder it means. */
export type DataRole = "calibration" | "evaluation" | "data";

export interface Skipped {
  /** relative path; folders end in "/" */
  file: string;
  reason: string;
}

export interface ImageSet {
  root: string;
  /** image files, or .npy/.npz arrays (see tensors.ts); absent means images */
  kind?: "images" | "tensors";
  role?: DataRole;
  /** sorted by `rel` in code-point order */
  files: ImageFile[];
  /** class names by index; empty when labels are bare integers or absent */
  classes: string[];
  /** found by the scan and, as batches are decoded, by the loader (see loader.ts) */
  skipped: Skipped[];
}

export interface ScanOptions {
  /** keep only this many images, a seeded random subset (see pickSubset) */
  limit?: number;
  /** seed of the subset; default 0 */
  seed?: number;
  role?: DataRole;
  /** a labels file ("relative/path label" lines) to use instead of the folder's own labels.txt */
  labels?: string;
  /** also accept a folder of .npy/.npz arrays (every engine job does; image-only callers keep the default) */
  arrays?: boolean;
}

export const ARRAY_EXTENSIONS: ReadonlySet<string> = new Set([".npy", ".npz"]);

/** Matched case-insensitively. BMP is decoded by bmp.ts, the rest by sharp (GIF: first frame). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif",
]);

const EXPECTED =
  "Expected JPEG, PNG, WebP, BMP, TIFF or GIF files, either directly in the folder or in one sub-folder per class (e.g. cat/001.png, dog/002.png).";

const EXPECTED_ARRAYS = "For non-image data: .npy or .npz files (one sample or a batch each; .npz keys named after the model's inputs).";

/** "the evaluation folder /x", or "/x" when the role is not known. */
export function folderName(root: string, role: DataRole | undefined): string {
  return role === "calibration" || role === "evaluation" ? `the ${role} folder ${root}` : root;
}

export async function scanImages(dir: string, opts: ScanOptions = {}): Promise<ImageSet> {
  const root = path.resolve(dir);
  const { role } = opts;
  const where = folderName(root, role);
  const expected = opts.arrays ? `${EXPECTED} ${EXPECTED_ARRAYS}` : EXPECTED;
  const Where = where.charAt(0).toUpperCase() + where.slice(1);
  let info;
  try {
    info = await stat(root);
  } catch (e) {
    throw new DataError(`${role === "calibration" || role === "evaluation" ? Where : `The image folder ${root}`} cannot be opened (${errorCode(e)}). Choose an existing folder. ${expected}`);
  }
  if (!info.isDirectory()) throw new DataError(`${root} is a file, not a folder. Choose the folder that contains the ${role ?? "image"} data. ${expected}`);

  const walk: Walk = { root, rels: [], arrays: [], topDirs: [], skipped: [], visited: new Set([await realpath(root)]) };
  await walkDir(walk, root, "");
  walk.rels.sort(compareCodePoints);
  walk.arrays.sort(compareCodePoints);

  const kind = opts.arrays && walk.arrays.length > 0 ? "tensors" : "images";
  if (kind === "tensors" && walk.rels.length > 0) {
    throw new DataError(
      `${Where} holds both images (e.g. ${walk.rels[0]}) and NumPy arrays (e.g. ${walk.arrays[0]}). Keep one kind per folder: images for an image model, .npy/.npz files for any model.`,
    );
  }
  if (kind === "tensors") walk.rels = walk.arrays;
  if (walk.rels.length === 0) {
    const unreadable = walk.skipped.length ? ` ${walk.skipped.length} entries could not be read, e.g. ${walk.skipped[0].file}: ${walk.skipped[0].reason}.` : "";
    const empty = role === "calibration" || role === "evaluation" ? `${Where} is empty: no images found in it` : `No images found in ${root}`;
    throw new DataError(`${empty}. ${expected}${unreadable}`);
  }

  const { classes, labelOf } = await resolveLabels(root, walk, opts.labels);
  let files = walk.rels.map((rel) => ({ path: path.join(root, ...rel.split("/")), rel, label: labelOf(rel) }));
  if (opts.limit !== undefined) files = pickSubset(files, opts.limit, opts.seed ?? 0);
  return { root, kind, role, files, classes, skipped: walk.skipped };
}

interface Walk {
  root: string;
  rels: string[];
  /** .npy/.npz files, listed apart: a folder is either images or arrays */
  arrays: string[];
  /** names of the non-hidden folders directly under the root (candidate class folders) */
  topDirs: string[];
  skipped: Skipped[];
  /** real paths of folders already listed: symbolic links are followed, but never into a loop */
  visited: Set<string>;
}

async function walkDir(w: Walk, abs: string, rel: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(abs, { withFileTypes: true });
  } catch (e) {
    w.skipped.push({ file: `${rel}/`, reason: `folder could not be read (${errorCode(e)})` });
    return;
  }
  // Sorted so that, when two links reach the same folder, the same one wins on every run.
  entries.sort((a, b) => compareCodePoints(a.name, b.name));
  for (const entry of entries) {
    // Hidden entries (.git, .DS_Store, macOS "._x.jpg" resource forks) are never images of the set.
    if (entry.name.startsWith(".")) continue;
    const childAbs = path.join(abs, entry.name);
    const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const target = await stat(childAbs);
        isDir = target.isDirectory();
        isFile = target.isFile();
      } catch (e) {
        if (isImageName(entry.name)) w.skipped.push({ file: childRel, reason: `broken symbolic link (${errorCode(e)})` });
        continue;
      }
    }
    if (isDir) {
      const real = await realpath(childAbs).catch(() => childAbs);
      if (w.visited.has(real)) {
        w.skipped.push({ file: `${childRel}/`, reason: "folder already scanned through another path (symbolic-link loop or duplicate link)" });
        continue;
      }
      w.visited.add(real);
      if (rel === "") w.topDirs.push(entry.name);
      await walkDir(w, childAbs, childRel);
    } else if (isFile && isImageName(entry.name)) {
      w.rels.push(childRel);
    } else if (isFile && ARRAY_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) {
      w.arrays.push(childRel);
    }
  }
}

function isImageName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/**
 * Label sources, strongest first: labels.txt entries, then class folders. Class names come from
 * classes.txt, else the class folders (sorted, as torchvision's ImageFolder does, including folders
 * without images so indices line up with a model trained that way), else the names used in labels.txt.
 * Class folders means: no image directly at the root and at least two sub-folders; a single sub-folder
 * is more likely "images/" than a one-class dataset.
 */
async function resolveLabels(root: string, w: Walk, labelsFile?: string): Promise<{ classes: string[]; labelOf: (rel: string) => number | null }> {
  const classesTxt = await readOptional(path.join(root, "classes.txt"));
  const labelsName = labelsFile === undefined ? "labels.txt" : path.resolve(labelsFile);
  const labelsTxt = labelsFile === undefined ? await readOptional(path.join(root, "labels.txt")) : await readLabelsFile(labelsName);
  const listed = labelsTxt === null ? [] : parseLabelsTxt(labelsTxt, labelsName);

  const folderClasses = w.topDirs.length >= 2 && w.rels.every((r) => r.includes("/")) ? [...w.topDirs].sort(compareCodePoints) : null;
  const namesInLabels = [...new Set(listed.flatMap((l) => (typeof l.label === "string" ? [l.label] : [])))].sort(compareCodePoints);
  const classes = classesTxt !== null ? parseClassesTxt(classesTxt, "classes.txt") : (folderClasses ?? namesInLabels);
  const index = new Map(classes.map((c, i) => [c, i]));

  const fromFile = new Map<string, number>();
  for (const l of listed) fromFile.set(l.rel, resolveLabel(l, index, classes.length, labelsName));
  if (listed.length > 0 && !w.rels.some((r) => fromFile.has(r))) {
    throw new DataError(
      `${labelsName} lists ${listed.length} images but none of them is in ${root}, e.g. "${listed[0].rel}". Paths must be relative to that folder, e.g. "${w.rels[0]}".`,
    );
  }

  if (folderClasses !== null) {
    const unknown = w.topDirs.filter((d) => !index.has(d) && w.rels.some((r) => r.startsWith(`${d}/`) && !fromFile.has(r)));
    if (unknown.length > 0) {
      throw new DataError(
        `classes.txt does not list the class folder(s) ${unknown.slice(0, 5).map((d) => `"${d}"`).join(", ")}. Add them to classes.txt, or label their images in labels.txt.`,
      );
    }
  }
  const labelOf = (rel: string): number | null => {
    const listedLabel = fromFile.get(rel);
    if (listedLabel !== undefined) return listedLabel;
    if (folderClasses === null) return null;
    return index.get(rel.slice(0, rel.indexOf("/"))) ?? null;
  };
  return { classes, labelOf };
}

function resolveLabel(l: LabelLine, index: Map<string, number>, classCount: number, file: string): number {
  if (typeof l.label === "string") {
    const i = index.get(l.label);
    if (i === undefined) throw new DataError(`${file} line ${l.line}: class "${l.label}" is not a known class (${[...index.keys()].slice(0, 10).join(", ")}${index.size > 10 ? ", ..." : ""}). Fix the name or add it to classes.txt.`);
    return i;
  }
  if (classCount > 0 && l.label >= classCount) {
    throw new DataError(`${file} line ${l.line}: label ${l.label} is out of range; there are ${classCount} classes (0 to ${classCount - 1}).`);
  }
  return l.label;
}

async function readLabelsFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new DataError(`The labels file ${file} cannot be read (${errorCode(e)}). Choose an existing file of "relative/path label" lines.`);
  }
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    if (errorCode(e) === "ENOENT") return null;
    throw new DataError(`${file} exists but cannot be read (${errorCode(e)}). Fix its permissions or remove it.`);
  }
}

/**
 * A deterministic random subset of `limit` files: the first `limit` of a seeded Fisher–Yates shuffle,
 * returned in path order. Random rather than the first N because sorted paths group classes, so the
 * first 512 of a class-folder set would be one or two classes.
 */
export function pickSubset<T>(files: T[], limit: number, seed: number): T[] {
  if (!Number.isInteger(limit) || limit < 1) throw new DataError(`The image limit must be a whole number of at least 1, not ${limit}.`);
  if (limit >= files.length) return files;
  const rand = mulberry32(seed);
  const order = files.map((_, i) => i);
  for (let i = 0; i < limit; i++) {
    const j = i + Math.floor(rand() * (order.length - i));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order
    .slice(0, limit)
    .sort((a, b) => a - b)
    .map((i) => files[i]);
}


function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? (e instanceof Error ? e.message : String(e));
}
