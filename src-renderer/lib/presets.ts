// Defaults and the one-line explanations shown next to every choice. Kept apart from the components so
// wording stays consistent between the Methods screen, the Run summary and the Compare labels.
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { METHOD_NAMES, methodShort, methodsName, PRESET_NAMES } from "../../shared/describe.ts";
import { bestRecipe, withBestRecipe } from "../../shared/recipes.ts";
import type { TargetId } from "../../shared/targets.ts";
import { ALL_METHODS, KNOWN_METHODS, type Calibrator, type Method, type ModelSummary, type PresetName, type PreprocessConfig, type QuantConfig } from "../../shared/types.ts";

export interface BitPreset {
  id: string;
  wBits: number;
  aBits: number;
  why: string;
}

export const BIT_PRESETS: BitPreset[] = [
  { id: "W4A4", wBits: 4, aBits: 4, why: "Smallest model and the hardest setting: expect a drop; the methods below win back part of it." },
  { id: "W4A8", wBits: 4, aBits: 8, why: "4-bit weights, 8-bit activations: about an eighth of the FP32 size. Often close to FP32 on plain CNNs, not always: measure." },
  { id: "W8A4", wBits: 8, aBits: 4, why: "For hardware with cheap 4-bit activations; clipping of outliers matters most here." },
  { id: "W8A8", wBits: 8, aBits: 8, why: "8 bits throughout: a quarter of the FP32 size, usually within a point of FP32. The safe reference." },
];

export function bitPresetOf(c: Pick<QuantConfig, "wBits" | "aBits">): string {
  return BIT_PRESETS.find((p) => p.wBits === c.wBits && p.aBits === c.aBits)?.id ?? "custom";
}

/** What this model in particular is likely to do at these bits, when there is something to say. */
export function bitsAdvice(c: Pick<QuantConfig, "wBits" | "aBits">, model: ModelSummary | null): string | null {
  const depthwise = model?.layers.filter((l) => l.kind === "depthwise").length ?? 0;
  if (depthwise === 0 || (c.wBits >= 8 && c.aBits >= 8)) return null;
  return `This model has ${depthwise} depthwise layer${depthwise === 1 ? "" : "s"}. Depthwise networks (MobileNets) are hard below 8 bits: at 4-bit weights they can lose most of their accuracy. Try W8A8 first, or keep the depthwise layers at 8 bits, and compare.`;
}

export interface MethodInfo {
  id: Method;
  label: string;
  short: string;
  /** the paper's term, for the tooltip */
  term: string;
  why: string;
}

const WHY: Record<Method, string> = {
  aciq: "Clips rare outliers at the range that minimises the expected error, instead of stretching the few levels over them.",
  "bitalloc-w": "Gives wide weight channels more bits and narrow ones fewer, same average: less error for the same size.",
  "bitalloc-a": "The same trade for activation channels, from the calibration statistics.",
  biascorr: "Quantized weights shift each channel's mean; this puts it back, for free.",
  "weight-clip": "Chooses each weight channel's range by the error it gives instead of its extremes: a few large weights no longer waste the levels.",
  equalize: "Rescales neighbouring layers so their channels span similar ranges (same results in float); helps depthwise networks most.",
  "bias-fold": "Measures each channel's average output error on the calibration images and takes it out of the bias.",
  reconstruct: "Picks each weight's rounding up or down so the layer's output stays closest to FP32's; slower, often the largest gain.",
};

const info = (id: Method): MethodInfo => ({ id, label: METHOD_NAMES[id].name, short: METHOD_NAMES[id].short, term: METHOD_NAMES[id].term, why: WHY[id] });

/** Every switch, the paper's four first. */
export const METHODS: MethodInfo[] = KNOWN_METHODS.map(info);
export const PAPER_METHODS: MethodInfo[] = ALL_METHODS.map(info);

export type MethodsPreset = "best" | "paper" | "custom";

export const METHOD_PRESETS: { id: Exclude<MethodsPreset, "custom">; label: string; why: string }[] = [
  { id: "best", label: "Best accuracy", why: "The recipe Nibble measured best for these bits: searched activation ranges (with the paper's activation bit allocation where activations are low-bit), weight clipping, rounding reconstruction and bias folding. Slower than the paper's methods." },
  { id: "paper", label: "The paper's methods", why: "Exactly the four methods of Banner, Nahshan and Soudry (NeurIPS 2019): clipping of outliers, bit allocation for weights and activations, bias correction." },
];

/** What a methods preset does for this target, in words: the integer targets cannot hold every method. */
export function methodsPresetWhy(preset: MethodsPreset, target: TargetId): string {
  if (target === "exact" || preset === "custom") return METHOD_PRESETS.find((p) => p.id === preset)?.why ?? "Your own choice of the switches below.";
  if (preset === "best") {
    return "For this target: weight clipping, rounding reconstruction fitted on the network as this target's file computes it (8-bit activations per tensor), and bias folding into the file's 32-bit biases. Slower than the paper's methods.";
  }
  return `The four methods of Banner, Nahshan and Soudry (NeurIPS 2019), as this target can hold them: activations keep one 8-bit range per tensor, so activation bit allocation is off and clipping leaves their full range${target === "int4-npu" ? ", and so is weight bit allocation (one 4-bit container per layer)" : ""}; bias correction goes into the file's 32-bit biases.`;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((m) => b.includes(m));

/** Which preset the settings are: the best recipe for their bits, the paper's four, or the user's own. */
export function methodsPresetOf(c: QuantConfig): MethodsPreset {
  const best = bestRecipe(c.wBits, c.aBits, c.target ?? "exact");
  if (sameSet(c.methods, best.methods) && c.baseline === best.baseline) return "best";
  if (sameSet(c.methods, ALL_METHODS)) return "paper";
  return "custom";
}

export function withMethodsPreset(c: QuantConfig, preset: Exclude<MethodsPreset, "custom">): QuantConfig {
  return preset === "best" ? withBestRecipe(c) : { ...c, methods: [...ALL_METHODS], baseline: "minmax" };
}

export { methodShort };

/** "Clipping + Weight bits", "All four methods" or "Baseline only". */
export function methodsLabel(methods: readonly string[]): string {
  return methodsName(methods);
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

export const PREPROCESS_PRESETS: PreprocessPreset[] = (Object.keys(PRESET_NAMES) as PresetName[]).map((id) => ({ id, label: PRESET_NAMES[id].name, detail: PRESET_NAMES[id].detail }));

export function defaultPreprocess(): PreprocessConfig {
  return { preset: "imagenet" };
}

/** The app starts from the best recipe; the engine's own default (and `--methods all`) stays the paper's four. */
export function defaultConfig(): QuantConfig {
  return withBestRecipe(defaultQuantConfig());
}
