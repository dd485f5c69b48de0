// Defaults and the one-line explanations shown next to every choice. Kept apart from the components so
// wording stays consistent between the Methods screen, the Run summary and the Compare labels.
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { Calibrator, Method, PresetName, PreprocessConfig, QuantConfig } from "../../shared/types.ts";

export interface BitPreset {
  id: string;
  wBits: number;
  aBits: number;
  why: string;
}

export const BIT_PRESETS: BitPreset[] = [
  { id: "W4A4", wBits: 4, aBits: 4, why: "Smallest model; needs all three methods to stay close to FP32." },
  { id: "W4A8", wBits: 4, aBits: 8, why: "4-bit weights, 8-bit activations: small file, little accuracy lost." },
  { id: "W8A4", wBits: 8, aBits: 4, why: "For hardware with cheap 4-bit activations; ACIQ matters most here." },
  { id: "W8A8", wBits: 8, aBits: 8, why: "The safe INT8 setting, as a reference point." },
];

export function bitPresetOf(c: Pick<QuantConfig, "wBits" | "aBits">): string {
  return BIT_PRESETS.find((p) => p.wBits === c.wBits && p.aBits === c.aBits)?.id ?? "custom";
}

export interface MethodInfo {
  id: Method;
  label: string;
  short: string;
  why: string;
}

export const METHODS: MethodInfo[] = [
  {
    id: "aciq",
    label: "Analytical clipping (ACIQ)",
    short: "ACIQ",
    why: "Clips rare outliers at the range that minimises the expected error, instead of stretching 16 levels over them.",
  },
  {
    id: "bitalloc-w",
    label: "Bit allocation, weights",
    short: "Bit alloc W",
    why: "Gives wide channels more bits and narrow ones fewer, same average: less error for the same size.",
  },
  {
    id: "bitalloc-a",
    label: "Bit allocation, activations",
    short: "Bit alloc A",
    why: "The same trade for activation channels, from the calibration statistics.",
  },
  {
    id: "biascorr",
    label: "Bias correction",
    short: "Bias corr.",
    why: "Quantized weights shift each channel's mean; this puts it back, for free.",
  },
];

export function methodShort(m: string): string {
  return METHODS.find((x) => x.id === m)?.short ?? m;
}

/** "ACIQ + Bit alloc W" or "Baseline" when no method is on. */
export function methodsLabel(methods: readonly string[]): string {
  return methods.length === 0 ? "Baseline" : methods.length === METHODS.length ? "All methods" : methods.map(methodShort).join(" + ");
}

export const CALIBRATORS: { id: Calibrator; label: string; why: string }[] = [
  { id: "minmax", label: "Min/max", why: "The paper's baseline: the full observed range, no clipping." },
  { id: "percentile", label: "Percentile", why: "Clips the most extreme values; common in other tools." },
  { id: "mse", label: "MSE search", why: "Searches the clipping point that minimises the measured error." },
];

export const PRIORS: { id: QuantConfig["prior"]; label: string; why: string }[] = [
  { id: "laplace", label: "Laplace", why: "Fits the heavy-tailed activations of most CNNs (the paper's choice)." },
  { id: "gaussian", label: "Gaussian", why: "For activations that are closer to bell-shaped." },
];

export interface PreprocessPreset {
  id: PresetName;
  label: string;
  detail: string;
}

export const PREPROCESS_PRESETS: PreprocessPreset[] = [
  { id: "imagenet", label: "ImageNet mean/std", detail: "RGB scaled to 0–1, minus mean 0.485/0.456/0.406, divided by std 0.229/0.224/0.225" },
  { id: "inception", label: "Inception, −1 to 1", detail: "RGB scaled to −1…1" },
  { id: "caffe", label: "Caffe BGR", detail: "BGR 0–255 minus mean 103.9/116.8/123.7" },
  { id: "raw255", label: "Raw 0–255", detail: "RGB pixel values as they are" },
  { id: "raw01", label: "Raw 0–1", detail: "RGB divided by 255" },
  { id: "custom", label: "Custom", detail: "Your own scale, mean, std and channel order" },
];

export function defaultPreprocess(): PreprocessConfig {
  return { preset: "imagenet" };
}

export function defaultConfig(): QuantConfig {
  return defaultQuantConfig();
}
