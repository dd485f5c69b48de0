// Names for runs that tell them apart: every run is named by its bits and methods, and by whatever else
// differs between the runs on screen (layers held at 8 bits, granularity, prior, preprocessing, ...), so two
// W4A4 runs never both read "W4A4 · All four methods".
import { methodsName, preprocessName } from "../../shared/describe.ts";
import { methodsPresetOf } from "./presets.ts";
import { TARGET_SHORT, targetOf } from "./targets.ts";
import type { LayerInfo, PreprocessConfig, QuantConfig } from "../../shared/types.ts";

export interface RunSettings {
  config: QuantConfig;
  preprocess?: PreprocessConfig;
  /** the data it was made and measured with, when known */
  calibImages?: number;
  evaluated?: boolean;
}

/** What a layer override list amounts to, in words: "13 depthwise layers at 8 bits + 2 layers in float". */
export function overridesName(keep: Record<string, "8" | "float">, layers: readonly LayerInfo[] = []): string {
  const at8 = Object.keys(keep).filter((k) => keep[k] === "8");
  const float = Object.keys(keep).filter((k) => keep[k] === "float");
  const parts: string[] = [];
  const depthwise = layers.filter((l) => l.kind === "depthwise").map((l) => l.name);
  const allDepthwise = depthwise.length > 0 && depthwise.every((d) => at8.includes(d));
  const rest = allDepthwise ? at8.filter((k) => !depthwise.includes(k)) : at8;
  const some = (names: string[], how: string) => (names.length === 1 ? `${names[0]} ${how}` : `${names.length} layers ${how}`);
  if (allDepthwise) parts.push("depthwise at 8 bits");
  if (rest.length) parts.push(some(rest, "at 8 bits"));
  if (float.length) parts.push(some(float, "in float"));
  return parts.join(" + ");
}

interface Facet {
  key: string;
  text: string;
  /** shown in every name, not only where the runs differ */
  always?: boolean;
}

function facets(r: RunSettings, layers: readonly LayerInfo[]): Facet[] {
  const c = r.config;
  const best = methodsPresetOf(c) === "best";
  const out: Facet[] = [
    { key: "bits", text: `W${c.wBits}A${c.aBits}` },
    { key: "methods", text: best ? "Best accuracy" : methodsName(c.methods) },
    // where the file runs changes the file and its accuracy: said whenever it is not the default
    { key: "target", text: TARGET_SHORT[targetOf(c)], always: targetOf(c) !== "exact" },
    { key: "maxDrop", text: c.maxDrop === undefined || c.maxDrop === null ? "" : `smallest within ${c.maxDrop} pts` },
    { key: "keep", text: overridesName(c.keep, layers) },
    { key: "firstLast", text: c.keepFirstLast8 ? "" : "first/last not held" },
    // the integer targets set the activations themselves (8 bits, per tensor) and take no clipping baseline
    { key: "activations", text: c.activations === "per-tensor" && targetOf(c) === "exact" ? "per-tensor activations" : "" },
    { key: "baseline", text: best || c.methods.includes("aciq") || targetOf(c) !== "exact" ? "" : `${c.baseline === "minmax" ? "min/max" : c.baseline === "mse" ? "MSE" : "percentile"} clipping` },
    { key: "prior", text: c.methods.includes("aciq") && c.prior === "gaussian" ? "Gaussian prior" : "" },
    { key: "constants", text: c.aciqConstants === "exact" ? "exact constants" : "" },
    { key: "budget", text: c.bitAllocMode === "strict" ? "strict budget" : "" },
    { key: "variance", text: c.varianceCorrection ? "variance correction" : "" },
  ];
  if (r.preprocess) out.push({ key: "preprocess", text: preprocessName(r.preprocess) });
  if (r.calibImages !== undefined) out.push({ key: "calib", text: `${r.calibImages.toLocaleString("en-US")} calibration image${r.calibImages === 1 ? "" : "s"}` });
  if (r.evaluated !== undefined) out.push({ key: "evaluated", text: r.evaluated ? "" : "not measured" });
  return out;
}

/** One name per run: bits and methods always, every other setting only where the runs differ. */
export function runNames(runs: readonly RunSettings[], layers: readonly LayerInfo[] = []): string[] {
  const all = runs.map((r) => facets(r, layers));
  const differs = (key: string) => new Set(all.map((f) => f.find((x) => x.key === key)?.text ?? "")).size > 1;
  const names = all.map((f) =>
    f
      .filter((x) => x.key === "bits" || x.key === "methods" || x.always || (x.text !== "" && differs(x.key)))
      .map((x) => x.text)
      .join(" · "),
  );
  // Runs with the same settings are repeats: number them in order.
  const seen = new Map<string, number>();
  return names.map((name) => {
    const k = (seen.get(name) ?? 0) + 1;
    seen.set(name, k);
    return k === 1 ? name : `${name} (run ${k})`;
  });
}

/** The name of a single setting, as the run it would make would be called on its own. */
export function settingsName(r: RunSettings, layers: readonly LayerInfo[] = []): string {
  return facets(r, layers)
    .filter((x) => x.key === "bits" || x.key === "methods" || x.always || (x.text !== "" && !["preprocess", "calib", "evaluated", "target"].includes(x.key)))
    .map((x) => x.text)
    .join(" · ");
}

/** A short tag for file names: "w4a4" for the defaults, "w4a4-keep3" etc. when settings differ. */
export function fileTag(c: QuantConfig, allMethods: boolean): string {
  const parts = [`w${c.wBits}a${c.aBits}`];
  if (!allMethods) parts.push(c.methods.length === 0 ? "baseline" : c.methods.join("-"));
  const kept = Object.keys(c.keep).length;
  if (kept) parts.push(`keep${kept}`);
  if (c.activations === "per-tensor" && targetOf(c) === "exact") parts.push("pertensor");
  if (targetOf(c) !== "exact") parts.push(targetOf(c).replace("-", ""));
  return parts.join("-");
}
