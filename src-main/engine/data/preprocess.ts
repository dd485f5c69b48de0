// From an image file to the tensor values the model expects.
//
// Conventions, chosen to match how most classifiers were trained and evaluated (PIL + torchvision):
// - Alpha is dropped, not composited: PIL's Image.convert("RGB") discards it, so a transparent PNG gives
//   the model the same colours here as in a torchvision evaluation.
// - EXIF orientation is not applied, as PIL does not apply it either.
// - Grayscale models get PIL's "L" luminance, ITU-R 601: (19595 R + 38470 G + 7471 B + 2^15) >> 16.
// - Resizing uses a linear (triangle) kernel, antialiased when shrinking, the closest libvips match
//   to torchvision's default bilinear resize. Not bit-identical to PIL.
// - Normalisation rounds to float32 after each step, as torch does, ((x * scale) - mean) / std.
// - CMYK, 16-bit and palette images are converted to 8-bit sRGB by sharp; GIF and TIFF give their first frame.
import { open } from "node:fs/promises";
import sharp, { type Sharp } from "sharp";
import type { Layout, PreprocessConfig, PresetName } from "../../../shared/types.ts";
import { decodeBmp, isBmp } from "./bmp.ts";
import { DataError } from "./errors.ts";
import { aloneInLibvips, inLibvips } from "./libvips-gate.ts";
import { MAX_FILE_BYTES, MAX_PIXELS, pixelLimitReason } from "./limits.ts";

export interface ResolvedPreprocess {
  /** applied first: x * scale, x the 0..255 pixel value */
  scale: number;
  /** per model channel, in the model's channel order */
  mean: [number, number, number];
  std: [number, number, number];
  /** model channel 0 is blue */
  bgr: boolean;
  /** what a 4-channel model reads in channel 3: the image's alpha (255 when opaque) times scale, or a constant tensor value */
  fourth: "alpha" | number;
}

/** The tensor the model takes, per image. */
export interface TensorSpec {
  layout: Layout;
  /** 3 (colour), 1 (luminance) or 4 (colour plus alpha or a constant, see ResolvedPreprocess.fourth) */
  channels: number;
  height: number;
  width: number;
}

export const PRESETS: Record<Exclude<PresetName, "custom">, Omit<ResolvedPreprocess, "fourth">> = {
  imagenet: { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false },
  inception: { scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1], bgr: false },
  // Caffe-trained models: BGR, 0..255, mean subtracted in B, G, R order, no std.
  caffe: { scale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1], bgr: true },
  raw255: { scale: 1, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
  raw01: { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], bgr: false },
};

/**
 * The arithmetic of a preprocessing config. mean/std/scale/channelOrder are read only for "custom"
 * (as documented on PreprocessConfig); their defaults there are the identity: 1, 0, 1, RGB.
 */
export function resolvePreprocess(cfg: PreprocessConfig): ResolvedPreprocess {
  const fourth = cfg.fourthChannel ?? "alpha";
  if (fourth !== "alpha" && !Number.isFinite(fourth)) throw new DataError(`The fourth channel must be "alpha" or a number, not ${String(fourth)}.`);
  if (cfg.preset !== "custom") {
    const preset = PRESETS[cfg.preset];
    if (!preset) throw new DataError(`Unknown preprocessing preset "${cfg.preset}". Use one of ${Object.keys(PRESETS).join(", ")} or custom.`);
    return { ...preset, fourth };
  }
  const r: ResolvedPreprocess = {
    scale: cfg.scale ?? 1,
    mean: cfg.mean ?? [0, 0, 0],
    std: cfg.std ?? [1, 1, 1],
    bgr: cfg.channelOrder === "BGR",
    fourth,
  };
  if (!Number.isFinite(r.scale) || r.scale === 0) throw new DataError(`The custom scale must be a non-zero number, not ${r.scale}.`);
  if (r.mean.length !== 3 || !r.mean.every(Number.isFinite)) throw new DataError("The custom mean needs three numbers, one per channel.");
  if (r.std.length !== 3 || !r.std.every((s) => Number.isFinite(s) && s !== 0)) {
    throw new DataError("The custom std needs three non-zero numbers, one per channel.");
  }
  return r;
}

/** Where the model's H x W window sits in the resized image. left/top may be negative: zero padding. */
export interface Geometry {
  resizeWidth: number;
  resizeHeight: number;
  left: number;
  top: number;
}

/**
 * torchvision's Resize(resize) + CenterCrop(crop) arithmetic: shorter side to `resize`, longer side
 * truncated; crop offset rounded half-to-even, or zero padding split floor/ceil when the crop is larger.
 * With neither set the image is stretched to the model input (no aspect preservation, no crop).
 */
export function planGeometry(srcWidth: number, srcHeight: number, cfg: PreprocessConfig, spec: TensorSpec): Geometry {
  checkGeometry(cfg, spec);
  if (cfg.resize === undefined && cfg.crop === undefined) {
    return { resizeWidth: spec.width, resizeHeight: spec.height, left: 0, top: 0 };
  }
  let w = srcWidth;
  let h = srcHeight;
  if (cfg.resize !== undefined) {
    if (w <= h) [w, h] = [cfg.resize, Math.floor((cfg.resize * h) / w)];
    else [w, h] = [Math.floor((cfg.resize * w) / h), cfg.resize];
  }
  return { resizeWidth: w, resizeHeight: h, left: cropOffset(w, spec.width), top: cropOffset(h, spec.height) };
}

/** Rejects settings that cannot produce the model's input size, before any file is touched. */
export function checkGeometry(cfg: PreprocessConfig, spec: TensorSpec): void {
  if (spec.channels !== 1 && spec.channels !== 3 && spec.channels !== 4) {
    throw new DataError(`The model takes ${spec.channels}-channel images; images feed 1 (grayscale), 3 (colour) or 4 (colour plus alpha) channels. Use a folder of .npy or .npz files for other inputs.`);
  }
  if (!isPositiveInt(spec.height) || !isPositiveInt(spec.width)) {
    throw new DataError(`The model's input size ${spec.height}x${spec.width} is not usable; set the input height and width explicitly.`);
  }
  if (cfg.resize !== undefined && !isPositiveInt(cfg.resize)) throw new DataError(`Resize must be a whole number of pixels, not ${cfg.resize}.`);
  // The crop is the tensor: any other size would need a second resize the model was not trained with.
  if (cfg.crop !== undefined && (cfg.crop !== spec.height || cfg.crop !== spec.width)) {
    throw new DataError(`Crop ${cfg.crop} does not match the model input ${spec.height}x${spec.width}. Set crop to ${spec.height === spec.width ? spec.height : "the input size"} or leave it empty.`);
  }
}

function cropOffset(size: number, crop: number): number {
  if (crop > size) return -Math.floor((crop - size) / 2);
  // Python's round(), half to even: an odd margin of 33 puts 16 pixels before the crop, not 17.
  const half = Math.floor((size - crop) / 2);
  return (size - crop) % 2 === 1 && half % 2 === 1 ? half + 1 : half;
}

function isPositiveInt(n: number): boolean {
  return Number.isInteger(n) && n > 0;
}

/** Model-ready 8-bit pixels: spec.height x spec.width x spec.channels, interleaved, RGB order. */
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

// failOn "error" rejects truncated and corrupt data (each level implies the ones below it) but, unlike
// "warning", still accepts the harmless libjpeg warnings many real photos trigger.
const SHARP_INPUT = { limitInputPixels: MAX_PIXELS, failOn: "error", animated: false } as const;

/**
 * Reads, decodes, resizes and crops one image. Throws an Error whose message is a readable skip reason
 * (or a DataError for bad settings); never returns partial data.
 */
export async function loadPixels(file: string, cfg: PreprocessConfig, spec: TensorSpec): Promise<Pixels> {
  const buf = await readImageFile(file);
  try {
    return await inLibvips(() => decodePixels(buf, cfg, spec));
  } catch (e) {
    if (e instanceof DataError) throw e;
    const reason = ownReason(e, buf);
    if (reason !== null) throw new Error(reason);
    // A libvips message read while other images were in flight may be another file's, several files', or
    // empty (libvips-gate.ts). Decode this file again with nothing else in flight to learn its own.
    return await aloneInLibvips(() => decodePixels(buf, cfg, spec)).catch((again: unknown) => {
      if (again instanceof DataError) throw again;
      throw new Error(ownReason(again, buf) ?? libvipsReason(again, buf));
    });
  }
}

async function decodePixels(buf: Buffer, cfg: PreprocessConfig, spec: TensorSpec): Promise<Pixels> {
  let img: Sharp;
  let g: Geometry;
  if (isBmp(buf)) {
    const { width, height, data } = decodeBmp(buf, MAX_PIXELS);
    img = sharp(data, { raw: { width, height, channels: 3 } });
    g = planGeometry(width, height, cfg, spec);
  } else {
    img = sharp(buf, SHARP_INPUT);
    // Only resize + crop depends on the source size; reading the header separately costs ~15%
    // of the decode time of a small image, so skip it when the image is simply stretched.
    const stretched = cfg.resize === undefined && cfg.crop === undefined;
    const meta = stretched ? null : await img.metadata(); // enforces limitInputPixels, as does the decode
    g = planGeometry(meta?.width ?? spec.width, meta?.height ?? spec.height, cfg, spec);
  }
  // Resizing to the image's own size is an exact copy in libvips, so no size check is needed here.
  // A 4-channel model reads alpha too (opaque images get 255); every other model drops it, as PIL's convert("RGB").
  img = img.toColourspace("srgb");
  img = (spec.channels === 4 ? img.ensureAlpha() : img.removeAlpha()).resize(g.resizeWidth, g.resizeHeight, { fit: "fill", kernel: "linear" });
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  const want = spec.channels === 4 ? 4 : 3;
  if (info.channels !== want) throw new Error(`decoded to ${info.channels} channels instead of ${want === 4 ? "RGBA" : "RGB"}`);
  return cropPixels(data, info.width, info.height, g, spec);
}

async function readImageFile(file: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    throw new Error(`file cannot be opened (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) throw new Error("file is empty (0 bytes)");
    if (size > MAX_FILE_BYTES) throw new Error(`file is ${Math.round(size / 2 ** 20)} MiB, above the ${MAX_FILE_BYTES / 2 ** 20} MiB limit`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Which libvips loader's messages belong to a file, from its first bytes. */
const LOADERS: [(b: Buffer) => boolean, RegExp][] = [
  [(b) => b[0] === 0xff && b[1] === 0xd8, /jpeg/i],
  [(b) => b.subarray(0, 4).toString("latin1") === "\x89PNG", /png/i],
  [(b) => b.subarray(0, 3).toString("latin1") === "GIF", /gif/i],
  [(b) => b.subarray(0, 4).toString("latin1") === "RIFF" && b.subarray(8, 12).toString("latin1") === "WEBP", /webp/i],
  [(b) => ["II*\0", "MM\0*"].includes(b.subarray(0, 4).toString("latin1")), /tiff/i],
];

/**
 * Reasons that are certainly this file's whatever else is decoding: sharp's own checks (they do not go
 * through libvips's error buffer), our BMP decoder and channel check. null for libvips's messages.
 */
function ownReason(e: unknown, buf: Buffer): string | null {
  const msg = (e instanceof Error ? e.message : String(e)).trim();
  if (/exceeds pixel limit/i.test(msg)) return pixelLimitReason(MAX_PIXELS);
  if (/unsupported image format/i.test(msg)) return "not an image in a supported format (JPEG, PNG, WebP, BMP, TIFF, GIF), whatever its name says";
  if (isBmp(buf) || /instead of RGB/.test(msg)) return `cannot be decoded: ${msg.split("\n")[0]}`;
  return null;
}

/**
 * A libvips failure read from a decode that ran alone, rephrased for people who did not write libvips,
 * with the decoder's first line about this file's format (a line naming another loader would mean a
 * libvips call outside the gate; it is left out rather than shown as this file's).
 */
function libvipsReason(e: unknown, buf: Buffer): string {
  const msg = (e instanceof Error ? e.message : String(e)).trim();
  const loader = LOADERS.find(([is]) => is(buf))?.[1];
  const detail = msg.split("\n").map((l) => l.trim()).find((l) => l !== "" && !/unknown error/i.test(l) && (!loader || loader.test(l)));
  return `cannot be decoded, the file is damaged or incomplete${detail ? ` (${detail})` : ""}`;
}

/** Copies the model's window out of the resized RGB(A) image, zero outside it; luminance for 1 channel. */
function cropPixels(rgb: Buffer, width: number, height: number, g: Geometry, spec: TensorSpec): Pixels {
  const { height: H, width: W, channels: C } = spec;
  const P = C === 4 ? 4 : 3;
  const out = new Uint8Array(H * W * C);
  for (let y = 0; y < H; y++) {
    const sy = y + g.top;
    if (sy < 0 || sy >= height) continue;
    for (let x = 0; x < W; x++) {
      const sx = x + g.left;
      if (sx < 0 || sx >= width) continue;
      const s = (sy * width + sx) * P;
      const d = (y * W + x) * C;
      if (C >= 3) {
        out[d] = rgb[s];
        out[d + 1] = rgb[s + 1];
        out[d + 2] = rgb[s + 2];
        if (C === 4) out[d + 3] = rgb[s + 3];
      } else {
        out[d] = (19595 * rgb[s] + 38470 * rgb[s + 1] + 7471 * rgb[s + 2] + 0x8000) >> 16;
      }
    }
  }
  return { data: out, width: W, height: H, channels: C };
}

/**
 * Per-channel lookup tables from 0..255 pixel to tensor value, in model channel order. A table per
 * channel makes normalisation exact (float32 after each step) and cheaper than the arithmetic.
 * One-channel models use the first mean/std.
 */
export function normalisationTables(p: ResolvedPreprocess, channels: number): Float32Array[] {
  const f = Math.fround;
  return Array.from({ length: channels }, (_, c) => {
    if (c === 3) return p.fourth === "alpha" ? Float32Array.from({ length: 256 }, (_, v) => f(v * p.scale)) : new Float32Array(256).fill(p.fourth);
    const mean = f(p.mean[c]);
    const std = f(p.std[c]);
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = f(f(v * p.scale) - mean) / std;
    return t;
  });
}

/**
 * Writes one image's normalised values into `out` (a batch buffer) as image number `index`, in the
 * given layout. `tables` come from normalisationTables; `bgr` swaps model channels 0 and 2.
 */
export function writeTensor(px: Pixels, tables: Float32Array[], bgr: boolean, layout: Layout, out: Float32Array, index: number): void {
  const C = px.channels;
  const hw = px.width * px.height;
  const base = index * hw * C;
  const src = px.data;
  for (let c = 0; c < C; c++) {
    const sc = C >= 3 && bgr && c < 3 ? 2 - c : c; // model channel c reads this RGB(A) channel
    const t = tables[c];
    if (layout === "NCHW") {
      const o = base + c * hw;
      for (let i = 0; i < hw; i++) out[o + i] = t[src[i * C + sc]];
    } else {
      for (let i = 0; i < hw; i++) out[base + i * C + c] = t[src[i * C + sc]];
    }
  }
}
