// Data shaping for the Compare charts, separate from Chart.js so the numbers behind each picture are tested.
import type { AblationRow, LayerHistogram } from "../../shared/engine-api.ts";
import type { LayerReport, MixedPrecisionReport } from "../../shared/types.ts";
import { bytes, percent, points } from "./format.ts";
import { methodsName } from "../../shared/describe.ts";
import { METHODS } from "./presets.ts";

export interface SeriesInput {
  label: string;
  layers: LayerReport[];
}

/**
 * A readable axis label for an ONNX node name: exporters write paths such as "/layer1/layer1.0/conv1/Conv";
 * the leading slash, the operator suffix and a parent repeated by its child add nothing.
 */
export function shortLayerName(name: string): string {
  const parts = name.split("/").filter(Boolean);
  if (parts.length > 1 && /^(Conv|Gemm|MatMul)(_\d+)?$/.test(parts[parts.length - 1])) parts.pop();
  const kept = parts.filter((p, i) => !(i + 1 < parts.length && parts[i + 1].startsWith(p)));
  return kept.join("/") || name;
}

export interface SqnrChartData {
  labels: string[];
  datasets: { label: string; data: (number | null)[] }[];
}

/** One bar group per layer (graph order of the first run, later runs' extra layers appended), one series per run. */
export function sqnrChart(runs: SeriesInput[]): SqnrChartData {
  const labels: string[] = [];
  const seen = new Set<string>();
  for (const r of runs)
    for (const l of r.layers)
      if (!seen.has(l.name)) {
        seen.add(l.name);
        labels.push(l.name);
      }
  const datasets = runs.map((r) => {
    const by = new Map(r.layers.map((l) => [l.name, l.sqnrDb]));
    return { label: r.label, data: labels.map((n) => by.get(n) ?? null) };
  });
  return { labels, datasets };
}

export interface HistogramChartData {
  /** step outline of the histogram: two points per bin */
  points: { x: number; y: number | null }[];
  clipLo: number;
  clipHi: number;
  yMax: number;
  /** share of the histogram's mass outside the clip range, 0..1 (a fused ReLU's negatives excluded) */
  clippedShare: number;
  /** the clip is half-range and values below zero were seen: a ReLU zeroes them */
  reluZeroes: boolean;
}

export function histogramChart(h: LayerHistogram, log: boolean): HistogramChartData {
  const points: { x: number; y: number | null }[] = [];
  let total = 0;
  let clipped = 0;
  let yMax = 0;
  const reluFloor = h.clipLo >= 0 ? 0 : -Infinity;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    const lo = h.edges[i];
    const hi = h.edges[i + 1];
    // Log axes cannot show zero: an empty bin becomes a gap.
    const y = log && c <= 0 ? null : c;
    points.push({ x: lo, y }, { x: hi, y });
    total += c;
    yMax = Math.max(yMax, c);
    // Bins straddling a clip point count by the share of their width beyond it. With a half-range
    // clip (a fused ReLU) negative values are zeroed by the ReLU itself: that is not clipping.
    const width = hi - lo;
    if (width > 0) {
      const below = Math.max(0, Math.min(hi, h.clipLo) - Math.max(lo, reluFloor));
      const above = Math.max(0, hi - Math.max(lo, h.clipHi));
      clipped += (c * (below + above)) / width;
    }
  }
  return { points, clipLo: h.clipLo, clipHi: h.clipHi, yMax, clippedShare: total > 0 ? clipped / total : 0, reluZeroes: h.clipLo >= 0 && h.observedMin < 0 };
}

export interface AblationBar {
  methods: string[];
  label: string;
  value: number;
  /** which metric the value is: top-1 against labels, or agreement with FP32 */
  metric: "top1" | "agreement";
}

const METHOD_ORDER = METHODS.map((m) => m.id as string);
const byMethodOrder = (a: string, b: string) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b);

/** Bars in the paper's order: baseline, then single methods, pairs, ..., all; within a size, method order. */
export function ablationBars(rows: AblationRow[]): AblationBar[] {
  const key = (r: AblationRow) => r.methods.map((m) => METHOD_ORDER.indexOf(m)).sort((a, b) => a - b);
  const sorted = [...rows].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka.length !== kb.length) return ka.length - kb.length;
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
    return 0;
  });
  return sorted.map((r) => ({
    methods: [...r.methods].sort(byMethodOrder),
    label: methodsName(r.methods),
    value: r.top1 ?? r.agreement,
    metric: r.top1 === null ? "agreement" : "top1",
  }));
}

export interface AblationTableRow {
  /** position in the chart, from 1 */
  order: number;
  methods: string[];
  label: string;
  top1: number | null;
  top5: number | null;
  agreement: number;
  bytes: number | null;
}

export type AblationSort = "order" | "label" | "top1" | "top5" | "agreement" | "bytes";

export function ablationTable(rows: AblationRow[]): AblationTableRow[] {
  const bars = ablationBars(rows);
  const byKey = new Map(rows.map((r) => [[...r.methods].sort(byMethodOrder).join("+"), r]));
  return bars.map((b, i) => {
    const r = byKey.get(b.methods.join("+"))!;
    return { order: i + 1, methods: b.methods, label: b.label, top1: r.top1, top5: r.top5 ?? null, agreement: r.agreement, bytes: r.bytes ?? null };
  });
}

/** Sorted by one column; missing values last either way. */
export function sortAblation(rows: AblationTableRow[], by: AblationSort, dir: "asc" | "desc"): AblationTableRow[] {
  const sign = dir === "asc" ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = a[by];
    const y = b[by];
    if (x === null || y === null) return x === y ? a.order - b.order : x === null ? 1 : -1;
    const c = typeof x === "string" ? x.localeCompare(y as string) : x - (y as number);
    return c === 0 ? a.order - b.order : sign * c;
  });
}

/**
 * The candidate `--max-drop` returned: the chosen one, or when none met the target the one that came closest
 * (the engine returns the first with the smallest drop).
 */
export function returnedCandidate(mp: MixedPrecisionReport): number {
  if (mp.chosen !== null) return mp.chosen;
  return mp.candidates.reduce((best, c, i) => (c.drop < mp.candidates[best].drop ? i : best), 0);
}

export interface SensitivityChartData {
  /** layer names, most sensitive first: the order in which the search holds layers at 8 bits */
  labels: string[];
  /** the proxy split in two series, so the legend says which layers the returned model holds at 8 bits */
  proxyLow: (number | null)[];
  proxyEight: (number | null)[];
  /** the drop measured with only that layer at low bits; null when no layer was measured */
  measured: (number | null)[] | null;
  /** layers the returned model holds at 8 bits */
  kept: number;
}

export function sensitivityChart(mp: MixedPrecisionReport): SensitivityChartData {
  const kept = new Set(mp.candidates[returnedCandidate(mp)]?.kept ?? []);
  const s = mp.sensitivity;
  return {
    labels: s.map((x) => x.layer),
    proxyLow: s.map((x) => (kept.has(x.layer) ? null : x.proxy)),
    proxyEight: s.map((x) => (kept.has(x.layer) ? x.proxy : null)),
    measured: s.some((x) => x.measuredDrop !== null) ? s.map((x) => x.measuredDrop) : null,
    kept: s.filter((x) => kept.has(x.layer)).length,
  };
}

export interface CurvePoint {
  /** file size, percent of the FP32 file */
  x: number;
  /** higher is better: the top-1 change in points, or the percentage of FP32's predictions (detections) kept */
  y: number;
  layers8: number;
  bytes: number;
  averageBits: number;
  drop: number;
  /** one standard error of the drop */
  margin: number;
  meets: boolean;
}

export interface SizeAccuracyData {
  /** every measured candidate, smallest file first */
  points: CurvePoint[];
  /** the returned candidate: index into points */
  returned: number;
  /** whether the returned candidate met the target with its margin (false: within the noise, or the closest one) */
  met: boolean;
  /** the returned candidate met the target on these images, but not with its standard error added */
  withinNoise: boolean;
  /** the target on the y axis */
  target: number;
  yLabel: string;
  /** the returned candidate in words, for beside the chart */
  words: string;
}

const Y_LABEL: Record<MixedPrecisionReport["metric"], string> = {
  top1: "Top-1 change (points)",
  agreement: "Same as FP32 (%)",
  detection: "Detections kept (%)",
};

/** A measured drop on the chart's axis, where higher is better on every metric. */
function yOf(metric: MixedPrecisionReport["metric"], drop: number): number {
  // `0 - drop`, not `-drop`: a drop of 0 would read "-0" in a tick
  return metric === "top1" ? 0 - drop : 100 - drop;
}

/** A candidate's accuracy in words, in the metric the search used. */
export function candidateAccuracy(metric: MixedPrecisionReport["metric"], drop: number): string {
  if (metric === "top1") return `${points(-drop)} points`;
  return metric === "agreement" ? `${percent(100 - drop, 1)} same prediction as FP32` : `${percent(100 - drop, 1)} of FP32's detections found`;
}

export function sizeAccuracyCurve(mp: MixedPrecisionReport, fp32Bytes: number): SizeAccuracyData {
  const order = mp.candidates.map((c, i) => ({ c, i })).sort((a, b) => a.c.bytes - b.c.bytes || a.c.layers8 - b.c.layers8);
  const curve = order.map(({ c }) => ({ x: (100 * c.bytes) / fp32Bytes, y: yOf(mp.metric, c.drop), layers8: c.layers8, bytes: c.bytes, averageBits: c.averageBits, drop: c.drop, margin: c.margin, meets: c.meets }));
  const at = returnedCandidate(mp);
  const returned = order.findIndex((o) => o.i === at);
  const r = mp.candidates[at];
  const layers = mp.sensitivity.length;
  const what = `${r.layers8} of ${layers} layer${layers === 1 ? "" : "s"} at 8 bits, ${bytes(r.bytes)}, ${candidateAccuracy(mp.metric, r.drop)}${r.margin > 0 ? ` (± ${r.margin.toFixed(2)})` : ""}`;
  const target = mp.metric === "top1" ? `${mp.maxDrop}-point target` : `target of ${mp.maxDrop} points`;
  const met = mp.chosen !== null && r.meets;
  const withinNoise = mp.chosen !== null && !r.meets;
  const words = met
    ? `Chosen: ${what}.`
    : withinNoise
      ? `None of the ${mp.candidates.length} candidates met the ${target} with its standard error added. Returned, meeting it on these images only: ${what}.`
      : `None of the ${mp.candidates.length} candidates met the ${target}. Closest, and returned: ${what}.`;
  return { points: curve, returned, met, withinNoise, target: yOf(mp.metric, mp.maxDrop), yLabel: Y_LABEL[mp.metric], words };
}
