// How close a model without a labelled class output is to FP32, in plain words: each output's typical and
// largest difference and its direction (the technical terms, SQNR and cosine similarity, go in tooltips), and
// for a detector the share of FP32's detections it finds again.
import type { DetectionFidelity, OutputFidelity, QuantReport } from "../../shared/types.ts";
import { count, percent, shape } from "./format.ts";

export interface Worded {
  text: string;
  /** the technical term and its definition, for a tooltip */
  term: string;
}

export interface OutputRow {
  output: string;
  shape: string;
  samples: number;
  identical: boolean;
  typical: Worded;
  direction: Worded;
  largest: Worded;
}

/** RMS error over RMS signal, percent: what an SQNR in dB means (SQNR = 20·log10(signal/error)). */
export function typicalError(sqnrDb: number): number {
  return 100 * 10 ** (-sqnrDb / 20);
}

/** Three significant digits at most, without exponent notation for ordinary magnitudes. */
function num(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1000 || a < 0.001 ? v.toExponential(2) : String(+v.toPrecision(3));
}

function sharePercent(p: number): string {
  return p >= 10 ? `${p.toFixed(0)}%` : p >= 0.1 ? `${p.toFixed(1)}%` : `${p.toFixed(2)}%`;
}

const SQNR_TERM = "SQNR (signal-to-quantization-noise ratio), 10·log10(Σx² / Σ(x − x̂)²) over every value: higher is closer. 20 dB means a typical difference of 10% of the values' size, 40 dB of 1%.";
const COSINE_TERM = "Cosine similarity of each sample's output with FP32's: 1 means the same direction, 0 unrelated. Shown as the mean and the worst sample.";
const MAX_TERM = "Largest absolute difference over every value of every sample, next to the largest magnitude FP32 produced.";

export function outputRows(outputs: readonly OutputFidelity[]): OutputRow[] {
  return outputs.map((o) => ({
    output: o.output,
    shape: shape(o.shape),
    samples: o.samples,
    identical: o.identical,
    typical: o.identical
      ? { text: "Identical to FP32", term: SQNR_TERM }
      : o.sqnrDb === null
        ? { text: "–", term: SQNR_TERM }
        : { text: `${sharePercent(typicalError(o.sqnrDb))} of the values' size (${o.sqnrDb.toFixed(1)} dB)`, term: SQNR_TERM },
    direction:
      o.cosine === null
        ? { text: "–", term: COSINE_TERM }
        : { text: `${o.cosine.toFixed(4)} on average${o.worstCosine === null ? "" : `, ${o.worstCosine.toFixed(4)} at worst`}`, term: COSINE_TERM },
    largest: { text: `${num(o.maxAbsError)}, where FP32's values reach ${num(o.referenceMaxAbs)}`, term: MAX_TERM },
  }));
}

/** The output that strays furthest from FP32 (lowest SQNR), or null when every output matches or none was compared. */
export function worstOutput(outputs: readonly OutputFidelity[]): OutputFidelity | null {
  const ranked = outputs.filter((o) => !o.identical && o.sqnrDb !== null).sort((a, b) => (a.sqnrDb as number) - (b.sqnrDb as number));
  return ranked[0] ?? null;
}

export interface DetectionRows {
  kept: Worded;
  extra: Worded;
  settings: string;
}

export function detectionRows(d: DetectionFidelity): DetectionRows {
  const settings = `Detections are compared at a score of at least ${d.scoreThreshold}, after removing overlapping boxes (IoU above ${d.nmsIou}); a detection counts as found again when the class is the same and the boxes overlap by IoU ${d.matchIou} or more.`;
  return {
    kept: {
      text: d.keptPercent === null ? "FP32 found nothing to compare" : `${percent(d.keptPercent, 1)} (${count(d.kept)} of ${count(d.fp32Detections)})`,
      term: `FP32's detections the quantized model finds too, on ${count(d.samples)} images. ${settings}`,
    },
    extra: { text: count(d.extra), term: "Detections of the quantized model with no FP32 counterpart (false alarms FP32 does not raise)." },
    settings,
  };
}

/** One short figure for a run: its run chip and export entry. */
export function headline(r: QuantReport): string {
  if (r.quantized?.top1 != null) return percent(r.quantized.top1);
  if (r.agreement) return `${percent(r.agreement.agreement)} same`;
  if (r.detection?.keptPercent != null) return `${percent(r.detection.keptPercent, 1)} of detections`;
  const worst = r.outputs ? worstOutput(r.outputs) : null;
  if (worst) return `differs ${sharePercent(typicalError(worst.sqnrDb as number))}`;
  if (r.outputs?.length) return "identical";
  return "not measured";
}
