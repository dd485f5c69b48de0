// A few preprocessed images for the data screen, so users can see what the model will see: wrong
// channel order, a bad crop or a wrong preset is obvious in a picture and in the channel statistics.
import { readFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import type { DataPreviewImage, LabelInfo } from "../../../shared/engine-api.ts";
import type { PreprocessConfig } from "../../../shared/types.ts";
import { parseLabelsTxt } from "./labels.ts";
import { inLibvips } from "./libvips-gate.ts";
import { checkGeometry, loadPixels, normalisationTables, resolvePreprocess, writeTensor, type ResolvedPreprocess, type TensorSpec } from "./preprocess.ts";
import { MAX_PIXELS } from "./limits.ts";
import type { ImageSet } from "./scan.ts";

const LABEL_EXAMPLES = 3;

/**
 * How the scan labelled the set, told with a few of its own entries: which source won (scan.ts's order:
 * labels.txt, then class folders), where the class names came from, and which indices are in use, so a
 * numeric labels.txt is seen to be read and can be checked against the model's outputs.
 */
export async function describeLabels(set: ImageSet): Promise<LabelInfo> {
  const labelled = set.files.filter((f) => f.label !== null);
  const indices = new Set(labelled.map((f) => f.label as number));
  const maxIndex = labelled.length ? Math.max(...indices) : null;
  const base = { labelled: labelled.length, distinct: indices.size, maxIndex };
  if (labelled.length === 0) return { source: "none", names: null, examples: [], ...base };
  const named = (i: number) => (set.classes[i] !== undefined ? ` (${set.classes[i]})` : "");
  const text = await readFile(path.join(set.root, "labels.txt"), "utf8").catch(() => null);
  const hasClassesTxt = await readFile(path.join(set.root, "classes.txt"), "utf8").then(() => true, () => false);
  const labelOf = new Map(set.files.map((f) => [f.rel, f.label]));
  const listed = text === null ? [] : parseLabelsTxt(text, "labels.txt").filter((l) => labelOf.get(l.rel) != null);
  if (listed.length > 0) {
    const lines = text!.split(/\r?\n/);
    const examples = listed.slice(0, LABEL_EXAMPLES).map((l) => {
      const label = labelOf.get(l.rel) as number;
      return { text: lines[l.line - 1].trim(), read: `class ${label}${named(label)}` };
    });
    const spelled = new Set(listed.flatMap((l) => (typeof l.label === "string" ? [l.label] : [])));
    const names = set.classes.length === 0 ? null : hasClassesTxt ? "classes-file" : set.classes.every((c) => spelled.has(c)) ? "labels-file" : "class-folders";
    return { source: "labels-file", names, examples, ...base };
  }
  const folders = [...new Set(labelled.map((f) => f.rel.slice(0, f.rel.indexOf("/"))))];
  const examples = folders.slice(0, LABEL_EXAMPLES).map((d) => {
    const label = labelled.find((f) => f.rel.startsWith(`${d}/`))!.label as number;
    return { text: `${d}/`, read: `class ${label}${named(label)}` };
  });
  return { source: "class-folders", names: hasClassesTxt ? "classes-file" : "class-folders", examples, ...base };
}

export interface PreviewOptions extends TensorSpec {
  preprocess: PreprocessConfig;
}

/** Smallest side of a preview picture; CIFAR's 32 px would be a smudge. */
const MIN_PREVIEW_PX = 96;

/**
 * Up to `n` images spread evenly over the set (class folders sort together, so the first n would
 * all be one class). Files that fail to decode are recorded in set.skipped and replaced by the next one.
 */
export async function previewImages(set: ImageSet, n: number, opts: PreviewOptions): Promise<DataPreviewImage[]> {
  checkGeometry(opts.preprocess, opts);
  const norm = resolvePreprocess(opts.preprocess);
  const tables = normalisationTables(norm, opts.channels);
  const total = set.files.length;
  const out: DataPreviewImage[] = [];
  const want = Math.min(n, total);
  for (let k = 0; k < want; k++) {
    // Start at the k-th evenly spaced file and walk forward past undecodable ones.
    for (let i = Math.floor((k * total) / want); i < (k + 1 === want ? total : Math.floor(((k + 1) * total) / want)); i++) {
      const file = set.files[i];
      let pixels;
      try {
        pixels = await loadPixels(file.path, opts.preprocess, opts);
      } catch (e) {
        if (!set.skipped.some((s) => s.file === file.rel)) set.skipped.push({ file: file.rel, reason: (e as Error).message });
        continue;
      }
      // NCHW regardless of the model's layout: only the values matter here, and planes are easier.
      const tensor = new Float32Array(opts.channels * opts.height * opts.width);
      writeTensor(pixels, tables, norm.bgr, "NCHW", tensor, 0);
      out.push({ file: file.rel, png: await toPngDataUrl(tensor, norm, opts), channels: channelStats(tensor, opts.channels) });
      break;
    }
  }
  return out;
}

function channelStats(tensor: Float32Array, channels: number): DataPreviewImage["channels"] {
  const hw = tensor.length / channels;
  return Array.from({ length: channels }, (_, c) => {
    let sum = 0;
    let sq = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = c * hw; i < (c + 1) * hw; i++) {
      const v = tensor[i];
      sum += v;
      sq += v * v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const mean = sum / hw;
    return { mean, std: Math.sqrt(Math.max(0, sq / hw - mean * mean)), min, max };
  });
}

/**
 * Inverts the normalisation of an NCHW tensor back to 0..255 RGB (or gray), so the picture is built
 * from exactly what the model receives, then enlarges it with nearest neighbour to keep pixels sharp.
 */
async function toPngDataUrl(tensor: Float32Array, p: ResolvedPreprocess, spec: TensorSpec): Promise<string> {
  const { height: H, width: W } = spec;
  const C = Math.min(3, spec.channels); // a fourth channel (alpha or a constant) is not part of the picture
  const hw = H * W;
  const rgb = Buffer.alloc(hw * C);
  for (let c = 0; c < C; c++) {
    const dst = C === 3 && p.bgr ? 2 - c : c; // model channel c back to its RGB position
    for (let i = 0; i < hw; i++) {
      const v = (tensor[c * hw + i] * p.std[c] + p.mean[c]) / p.scale;
      rgb[i * C + dst] = Math.min(255, Math.max(0, Math.round(v)));
    }
  }
  const factor = Math.max(1, Math.ceil(MIN_PREVIEW_PX / Math.min(H, W)));
  // Counted like every libvips call: its end clears libvips's error buffer (libvips-gate.ts).
  const png = await inLibvips(() =>
    sharp(rgb, { raw: { width: W, height: H, channels: C as 1 | 3 } })
      .resize(W * factor, H * factor, { kernel: "nearest" })
      .png()
      .toBuffer(),
  );
  return `data:image/png;base64,${png.toString("base64")}`;
}

/** Images whose size is read for a suggestion: enough for a stable median, few enough to stay instant. */
const SIZE_SAMPLE = 32;

/**
 * A [height, width] to feed a model that takes any size: the median size of up to SIZE_SAMPLE images spread over
 * the set, each side rounded to the nearest multiple of `stride` (the model's downsampling). Null without images.
 */
export async function suggestInputSize(set: ImageSet, stride: number): Promise<[number, number] | null> {
  const n = Math.min(SIZE_SAMPLE, set.files.length);
  const heights: number[] = [];
  const widths: number[] = [];
  for (let k = 0; k < n; k++) {
    const f = set.files[Math.floor((k * set.files.length) / n)];
    const meta = await sharp(f.path, { limitInputPixels: MAX_PIXELS }).metadata().catch(() => null);
    if (!meta?.width || !meta.height) continue;
    widths.push(meta.width);
    heights.push(meta.height);
  }
  if (heights.length === 0) return null;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const round = (v: number) => Math.max(stride, Math.round(v / stride) * stride);
  return [round(median(heights)), round(median(widths))];
}
