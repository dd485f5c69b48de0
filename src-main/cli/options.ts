// The command line is a contract: scripts depend on these names, so they are parsed and checked here, once.
import { TARGET_IDS, type TargetId } from "../../shared/targets.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { withBestRecipe } from "../../shared/recipes.ts";
import { ALL_METHODS, CALIBRATIONS, KNOWN_METHODS, type Calibration, type Method, type PreprocessConfig, type PresetName, type QuantConfig } from "../../shared/types.ts";

export class UsageError extends Error {}

const PRESETS: PresetName[] = ["imagenet", "inception", "caffe", "raw255", "raw01", "custom"];

export function parseBits(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2 || n > 8) throw new UsageError(`${flag} must be a whole number from 2 to 8, got "${value}".`);
  return n;
}

export function parseMethods(value: string | undefined): Method[] {
  if (value === undefined || value === "all") return [...ALL_METHODS];
  if (value === "none") return [];
  const out: Method[] = [];
  for (const raw of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(KNOWN_METHODS as readonly string[]).includes(raw)) {
      throw new UsageError(`Unknown method "${raw}" in --methods. Use a comma list of ${KNOWN_METHODS.join(", ")}, or "best", "all" or "none".`);
    }
    if (!out.includes(raw as Method)) out.push(raw as Method);
  }
  return out;
}

export function parseKeep(value: string | undefined): Record<string, "8" | "float"> {
  const keep: Record<string, "8" | "float"> = {};
  if (!value) return keep;
  for (const item of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [name, mode = "8"] = item.split("=");
    if (mode !== "8" && mode !== "float") throw new UsageError(`--keep ${item}: use NAME, NAME=8 or NAME=float.`);
    keep[name] = mode;
  }
  return keep;
}

function parseTriple(flag: string, value: string): [number, number, number] {
  const parts = value.split(",").map(Number);
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p))) throw new UsageError(`${flag} takes three numbers separated by commas, got "${value}".`);
  return parts as [number, number, number];
}

function parsePositive(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive whole number, got "${value}".`);
  return n;
}

export interface PreprocessFlags {
  preset?: string;
  "input-size"?: string;
  "fourth-channel"?: string;
  resize?: string;
  crop?: string;
  mean?: string;
  std?: string;
  scale?: string;
  bgr?: boolean;
}

export function parsePreprocess(f: PreprocessFlags): PreprocessConfig {
  const preset = (f.preset ?? "imagenet") as PresetName;
  if (!PRESETS.includes(preset)) throw new UsageError(`Unknown --preset "${f.preset}". Use one of ${PRESETS.join(", ")}.`);
  const custom = f.mean !== undefined || f.std !== undefined || f.scale !== undefined || f.bgr;
  if (custom && preset !== "custom") throw new UsageError("--mean, --std, --scale and --bgr go with --preset custom.");
  const cfg: PreprocessConfig = { preset, resize: parsePositive("--resize", f.resize), crop: parsePositive("--crop", f.crop) };
  if (f["input-size"] !== undefined) cfg.inputSize = parseInputSize(f["input-size"]);
  if (f["fourth-channel"] !== undefined) {
    const v = f["fourth-channel"];
    if (v !== "alpha" && !Number.isFinite(Number(v))) throw new UsageError(`--fourth-channel must be "alpha" or a number (the constant value fed), got "${v}".`);
    cfg.fourthChannel = v === "alpha" ? "alpha" : Number(v);
  }
  if (preset === "custom") {
    cfg.mean = f.mean ? parseTriple("--mean", f.mean) : [0, 0, 0];
    cfg.std = f.std ? parseTriple("--std", f.std) : [1, 1, 1];
    cfg.scale = f.scale ? Number(f.scale) : 1 / 255;
    cfg.channelOrder = f.bgr ? "BGR" : "RGB";
  }
  return cfg;
}

/** "HxW" (also "H,W" or "HXW"), height first as everywhere in ONNX. */
export function parseInputSize(value: string): [number, number] {
  const m = /^\s*(\d+)\s*[xX,*]\s*(\d+)\s*$/.exec(value);
  const dims = m ? [Number(m[1]), Number(m[2])] : [];
  if (dims.length !== 2 || dims.some((d) => !Number.isInteger(d) || d < 1 || d > 16384)) {
    throw new UsageError(`--input-size takes HEIGHTxWIDTH in pixels, e.g. 640x640, got "${value}".`);
  }
  return dims as [number, number];
}

export interface DetectionFlags {
  "score-threshold"?: string;
  "nms-iou"?: string;
  "match-iou"?: string;
}

export function parseDetection(f: DetectionFlags): { scoreThreshold?: number; nmsIou?: number; matchIou?: number } | undefined {
  const out: Record<string, number> = {};
  for (const [flag, key] of [["score-threshold", "scoreThreshold"], ["nms-iou", "nmsIou"], ["match-iou", "matchIou"]] as const) {
    const v = f[flag];
    if (v === undefined) continue;
    const n = Number(v);
    if (!(n >= 0 && n <= 1)) throw new UsageError(`--${flag} must be a number from 0 to 1, got "${v}".`);
    out[key] = n;
  }
  return Object.keys(out).length ? out : undefined;
}

export interface QuantFlags {
  "w-bits"?: string;
  "a-bits"?: string;
  methods?: string;
  activations?: string;
  keep?: string;
  prior?: string;
  baseline?: string;
  "exact-constants"?: boolean;
  "strict-budget"?: boolean;
  "variance-correction"?: boolean;
  "no-keep-first-last"?: boolean;
  "max-drop"?: string;
  "recon-images"?: string;
  calibration?: string;
  target?: string;
}

export function parseQuantConfig(f: QuantFlags): QuantConfig {
  const activations = f.activations ?? "per-channel";
  if (activations !== "per-channel" && activations !== "per-tensor") throw new UsageError(`--activations must be per-channel or per-tensor, got "${activations}".`);
  const prior = f.prior ?? "laplace";
  if (prior !== "laplace" && prior !== "gaussian") throw new UsageError(`--prior must be laplace or gaussian, got "${prior}".`);
  const baseline = f.baseline ?? "minmax";
  if (baseline !== "minmax" && baseline !== "percentile" && baseline !== "mse") throw new UsageError(`--baseline must be minmax, percentile or mse, got "${baseline}".`);
  const calibration = f.calibration ?? "global";
  if (!(CALIBRATIONS as readonly string[]).includes(calibration)) throw new UsageError(`--calibration must be global or reference, got "${calibration}".`);
  const target = f.target ?? "exact";
  if (!(TARGET_IDS as readonly string[]).includes(target)) throw new UsageError(`--target must be ${TARGET_IDS.join(", ")}, got "${target}".`);
  const best = f.methods === "best";
  let maxDrop: number | null = null;
  if (f["max-drop"] !== undefined) {
    maxDrop = Number(f["max-drop"]);
    if (!(Number.isFinite(maxDrop) && maxDrop >= 0 && maxDrop <= 100)) throw new UsageError(`--max-drop must be a number of points from 0 to 100, got "${f["max-drop"]}".`);
  }
  const reconImages = parsePositive("--recon-images", f["recon-images"]);
  const config = defaultQuantConfig({
    wBits: parseBits("--w-bits", f["w-bits"], 4),
    aBits: parseBits("--a-bits", f["a-bits"], 4),
    methods: best ? [] : parseMethods(f.methods),
    prior,
    aciqConstants: f["exact-constants"] ? "exact" : "reference",
    bitAllocMode: f["strict-budget"] ? "strict" : "reference",
    varianceCorrection: f["variance-correction"] === true,
    baseline,
    activations,
    keepFirstLast8: !f["no-keep-first-last"],
    keep: parseKeep(f.keep),
    calibration: calibration as Calibration,
    target: target as TargetId,
    maxDrop,
    ...(reconImages ? { reconstruct: { images: reconImages } } : {}),
  });
  return best ? withBestRecipe(config, config.reconstruct) : config;
}
