// Plain names for settings, shared by the engine's progress messages, the reports and the renderer, so a
// setting reads the same everywhere. The technical term each name stands for is kept beside it (`term`)
// for tooltips and reports.
import { ALL_METHODS, KNOWN_METHODS, type PreprocessConfig, type PresetName } from "./types.ts";

export const PRESET_NAMES: Record<PresetName, { name: string; detail: string }> = {
  imagenet: { name: "ImageNet mean/std", detail: "RGB scaled to 0–1, minus mean 0.485/0.456/0.406, divided by std 0.229/0.224/0.225" },
  inception: { name: "Inception, −1 to 1", detail: "RGB scaled to −1…1" },
  caffe: { name: "Caffe BGR", detail: "BGR 0–255 minus mean 103.9/116.8/123.7" },
  raw255: { name: "Raw 0–255", detail: "RGB pixel values as they are" },
  raw01: { name: "Raw 0–1", detail: "RGB divided by 255" },
  custom: { name: "Custom", detail: "Your own scale, mean, std and channel order" },
};

/** "straight to the input size" or "shorter side to 256, centre crop 224". */
export function resizeName(p: Pick<PreprocessConfig, "resize" | "crop">): string {
  if (p.resize === undefined && p.crop === undefined) return "resized straight to the input size";
  if (p.resize === undefined) return `centre crop ${p.crop}`;
  return `shorter side to ${p.resize}${p.crop === undefined ? "" : `, centre crop ${p.crop}`}`;
}

/** "Inception, −1 to 1 · shorter side to 256, centre crop 224", plus the size fed to a dynamic-size model */
export function preprocessName(p: PreprocessConfig): string {
  const size = p.inputSize ? ` · fed at ${p.inputSize[0]} × ${p.inputSize[1]}` : "";
  return `${PRESET_NAMES[p.preset]?.name ?? p.preset} · ${resizeName(p)}${size}`;
}

/** A key that is equal for two configs exactly when they preprocess alike. */
export function preprocessKey(p: PreprocessConfig): string {
  const custom = p.preset === "custom" ? [p.scale ?? 1, p.mean ?? [0, 0, 0], p.std ?? [1, 1, 1], p.channelOrder ?? "RGB"] : [];
  // appended only when set, so keys of settings without them stay as they were
  const size = p.inputSize ? [{ inputSize: p.inputSize }] : [];
  const fourth = p.fourthChannel !== undefined ? [{ fourthChannel: p.fourthChannel }] : [];
  return JSON.stringify([p.preset, p.resize ?? null, p.crop ?? null, ...custom, ...size, ...fourth]);
}

const TRIED_PRESETS: Exclude<PresetName, "custom">[] = ["imagenet", "inception", "caffe", "raw255", "raw01"];

/**
 * The preprocessing settings worth trying on a model with an H x W input: each preset resized straight to
 * the input and, for a square input, the evaluation recipe most ImageNet models were trained with (shorter
 * side to 256/224 of the input, then a centre crop), plus the user's own setting if it is neither.
 */
export function preprocessCandidates(height: number, width: number, current: PreprocessConfig): PreprocessConfig[] {
  const policies: Pick<PreprocessConfig, "resize" | "crop">[] = [{}];
  if (height > 0 && height === width) policies.push({ resize: Math.round((height * 256) / 224), crop: height });
  // the input size and fourth channel are not preprocessing choices to try: every candidate keeps the user's
  const kept = { ...(current.inputSize && { inputSize: current.inputSize }), ...(current.fourthChannel !== undefined && { fourthChannel: current.fourthChannel }) };
  const out: PreprocessConfig[] = TRIED_PRESETS.flatMap((preset) => policies.map((p) => ({ preset, ...p, ...kept })));
  if (!out.some((c) => preprocessKey(c) === preprocessKey(current))) out.push(current);
  return out;
}

export interface MethodName {
  /** what it does, in plain words */
  name: string;
  /** for chart labels and run names */
  short: string;
  /** the paper's term */
  term: string;
}

export const METHOD_NAMES: Record<string, MethodName> = {
  aciq: { name: "Clipping of rare outliers", short: "Clipping", term: "ACIQ" },
  "bitalloc-w": { name: "Bit allocation, weights", short: "Weight bits", term: "per-channel bit allocation (weights)" },
  "bitalloc-a": { name: "Bit allocation, activations", short: "Activation bits", term: "per-channel bit allocation (activations)" },
  biascorr: { name: "Bias correction", short: "Bias correction", term: "bias correction" },
  "weight-clip": { name: "Weight clipping", short: "Weight clip", term: "per-channel weight range by MSE search" },
  equalize: { name: "Equalizing neighbouring layers", short: "Equalize", term: "cross-layer equalization" },
  "bias-fold": { name: "Output error folded into the bias", short: "Bias fold", term: "empirical bias correction" },
  reconstruct: { name: "Rounding chosen per layer", short: "Rounding", term: "rounding reconstruction (GPTQ-style)" },
};

export function methodShort(m: string): string {
  return METHOD_NAMES[m]?.short ?? m;
}

/** "Clipping + Bias correction"; "Baseline only" when none is on; "All four methods" for the paper's set. */
export function methodsName(methods: readonly string[]): string {
  if (methods.length === 0) return "Baseline only";
  if (methods.length === ALL_METHODS.length && ALL_METHODS.every((m) => methods.includes(m))) return "All four methods";
  const order = (m: string) => {
    const i = KNOWN_METHODS.indexOf(m as (typeof KNOWN_METHODS)[number]);
    return i < 0 ? KNOWN_METHODS.length : i;
  };
  return [...methods].sort((a, b) => order(a) - order(b)).map(methodShort).join(" + ");
}

/** Engine messages may end with technical details (for a bug report) after this marker; screens fold them away. */
export const DETAILS_MARKER = "\nDetails: ";

export function splitDetails(message: string): { text: string; details: string | null } {
  const at = message.indexOf(DETAILS_MARKER);
  return at < 0 ? { text: message, details: null } : { text: message.slice(0, at), details: message.slice(at + DETAILS_MARKER.length) };
}
