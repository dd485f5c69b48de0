// Shared pieces of the benchmark: fixture locations, the default configuration, the one quantize run
// that the speed and memory parts both measure, and a plain-text table printer.
import { readFileSync, statSync } from "node:fs";
import { writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { quantize } from "../../src-main/engine/pipeline/quantize.ts";
import type { PreprocessConfig, QuantConfig } from "../../shared/types.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** ../shared/fixtures next to the checkout, or $NIBBLE_FIXTURES. */
export function fixturesDir(override?: string): string {
  return path.resolve(override ?? process.env.NIBBLE_FIXTURES ?? path.join(REPO_ROOT, "../shared/fixtures"));
}

export function modelPath(fixtures: string, model: string): string {
  return path.join(fixtures, "models", `${model}-cifar10.onnx`);
}

export const PREPROCESS: PreprocessConfig = { preset: "imagenet" };

/** The engine's defaults (the CLI's with no flags): reference constants, Laplace, per-channel activations. */
export const BASE_CONFIG: QuantConfig = defaultQuantConfig();

/**
 * The usual tools' int8 (issue 8's peer row, onnxruntime's quantize_static rebuilt): global min/max over the
 * calibration set, per-tensor activations at the inputs of the quantized operators, symmetric per-channel
 * weights, no other method. The "ort" target places and quantizes tensors that way (and its activations are
 * 8-bit whatever aBits says); docs/BENCHMARKS.md says where it differs from quantize_static's defaults.
 */
export function textbookConfig(wBits: number): QuantConfig {
  return defaultQuantConfig({ wBits, aBits: 8, methods: [], activations: "per-tensor", calibration: "global", baseline: "minmax", target: "ort" });
}

/** Calibration statistics depend on the activation granularity, the baseline and the target: one pass per kind. */
export function calibrationKey(c: QuantConfig): string {
  return JSON.stringify([c.activations, c.baseline, c.target]);
}

/** Rows kept by a --rows filter (names of the Methods column, e.g. "textbook"); all rows without one. */
export function keepRow(methods: string, filter: readonly string[] | undefined): boolean {
  return filter === undefined || filter.includes(methods);
}

export interface QuantizeRunResult {
  model: string;
  calibDir: string;
  calibLimit: number;
  calibImages: number;
  /** wall-clock seconds of the whole run: decode + statistics + quantize + export + write */
  seconds: number;
  timings: Record<string, number>;
  bytes: number;
}

/**
 * One `nibble quantize` job without evaluation, W4A4 all methods: decode, statistics, quantize, export,
 * report, and the atomic write of the model file. This is what the speed and memory parts time.
 */
export async function quantizeRun(model: string, calibDir: string, calibLimit: number, seed: number, out: string): Promise<QuantizeRunResult> {
  await mkdir(path.dirname(out), { recursive: true });
  const t = performance.now();
  const r = await quantize({
    model,
    calib: { dir: calibDir, limit: calibLimit, seed },
    eval: null,
    preprocess: PREPROCESS,
    config: BASE_CONFIG,
    layerErrors: false,
  });
  await writeFile(out, r.bytes);
  const seconds = (performance.now() - t) / 1000;
  return { model, calibDir, calibLimit, calibImages: r.report.calibration.images, seconds, timings: r.report.timings, bytes: r.bytes.length };
}

/** Peak resident set size of this process, in bytes: VmHWM from /proc, else resourceUsage().maxRSS. */
export function peakRss(): { vmHWM: number | null; maxRSS: number } {
  let vmHWM: number | null = null;
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) vmHWM = Number(m[1]) * 1024;
  } catch {
    vmHWM = null;
  }
  return { vmHWM, maxRSS: process.resourceUsage().maxRSS * 1024 };
}

export function fileBytes(file: string): number {
  return statSync(file).size;
}

export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

export function fixed(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || Number.isNaN(x) ? "—" : x.toFixed(digits);
}

export function signed(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  const s = x.toFixed(digits);
  return x >= 0 && !s.startsWith("-") ? `+${s}` : s;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A markdown table whose columns are padded so it also reads as plain text. */
export function table(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length), 3));
  const a = align ?? header.map((_, i) => (i === 0 ? "l" : "r"));
  const cell = (s: string, i: number) => (a[i] === "r" ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const line = (cells: string[]) => `| ${cells.map(cell).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (a[i] === "r" ? `${"-".repeat(w + 1)}:` : `:${"-".repeat(w + 1)}`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
