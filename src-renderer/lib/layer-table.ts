// The per-layer table of the Compare screen: sorting, filtering and the notes that point users at the
// layer to blame. Plain data in, plain rows out, so it is tested without a DOM.
import type { LayerReport } from "../../shared/types.ts";
import { methodShort } from "./presets.ts";

export type SortKey =
  | "order"
  | "name"
  | "op"
  | "precision"
  | "weightBits"
  | "activationBits"
  | "sqnrDb"
  | "rangeKept"
  | "fractionClipped"
  | "biasShift";

export type PrecisionFilter = "all" | LayerReport["precision"];

export interface TableQuery {
  text: string;
  precision: PrecisionFilter;
  /** only layers with a note (the weakest layer, a method that changed nothing) */
  notedOnly: boolean;
  sort: SortKey;
  dir: "asc" | "desc";
}

export interface LayerRow extends LayerReport {
  /** position in the graph, from 1 */
  order: number;
  notes: string[];
}

export const DEFAULT_QUERY: TableQuery = { text: "", precision: "all", notedOnly: false, sort: "order", dir: "asc" };

const PRECISION_RANK: Record<LayerReport["precision"], number> = { low: 0, "8bit": 1, float: 2 };

function sortValue(r: LayerRow, key: SortKey): string | number | null {
  switch (key) {
    case "precision":
      return PRECISION_RANK[r.precision];
    case "name":
    case "op":
      return r[key].toLowerCase();
    default:
      return r[key];
  }
}

/** Quantized below 8 bits (weights or activations): the layers that holding at 8 bits can change. */
export function belowEightBits(l: Pick<LayerReport, "precision" | "weightBits" | "activationBits">): boolean {
  return l.precision === "low" && (l.weightBits < 8 || (l.activationBits !== null && l.activationBits < 8));
}

/**
 * How a layer was stored, in words: "4-bit", "W4 A8", "8-bit", "8-bit, held" (kept at 8 bits by the
 * first/last rule or an override while the run used fewer), "Float". A W8A8 run's layers are 8-bit, not low-bit.
 */
export function precisionLabel(l: Pick<LayerReport, "precision" | "weightBits" | "activationBits">): string {
  if (l.precision === "float") return "Float";
  if (l.precision === "8bit") return "8-bit, held";
  const w = Math.round(l.weightBits);
  const a = l.activationBits === null ? null : Math.round(l.activationBits);
  return a === null || a === w ? `${w}-bit` : `W${w} A${a}`;
}

/** The quantized layer whose output differs most from FP32 (lowest SQNR): the first one to keep at 8 bits. */
export function weakestLayer(layers: LayerReport[]): string | null {
  let worst: LayerReport | null = null;
  for (const l of layers) {
    if (l.precision !== "low" || l.sqnrDb === null) continue;
    if (!worst || l.sqnrDb < (worst.sqnrDb as number)) worst = l;
  }
  return worst?.name ?? null;
}

export const WEAKEST_NOTE = "Differs most from FP32";

export function toRows(layers: LayerReport[]): LayerRow[] {
  const weakest = weakestLayer(layers);
  return layers.map((l, i) => {
    const notes: string[] = [];
    if (l.name === weakest) notes.push(WEAKEST_NOTE);
    if (l.noEffect.length) notes.push(`${l.noEffect.map(methodShort).join(", ")} changed nothing here`);
    return { ...l, order: i + 1, notes };
  });
}

export function queryRows(rows: LayerRow[], q: TableQuery): LayerRow[] {
  const needle = q.text.trim().toLowerCase();
  const kept = rows.filter(
    (r) =>
      (q.precision === "all" || r.precision === q.precision) &&
      (!q.notedOnly || r.notes.length > 0) &&
      (needle === "" || r.name.toLowerCase().includes(needle) || r.op.toLowerCase().includes(needle)),
  );
  const sign = q.dir === "asc" ? 1 : -1;
  // Missing values go last in either direction: they are "not measured", not "smallest".
  return kept.sort((a, b) => {
    const x = sortValue(a, q.sort);
    const y = sortValue(b, q.sort);
    if (x === null || y === null) return x === y ? a.order - b.order : x === null ? 1 : -1;
    if (x < y) return -sign;
    if (x > y) return sign;
    return a.order - b.order;
  });
}

/** Clicking a column header: the same column flips direction, a new one starts with the useful end first. */
export function toggleSort(q: TableQuery, key: SortKey): TableQuery {
  if (q.sort === key) return { ...q, dir: q.dir === "asc" ? "desc" : "asc" };
  // Error-like columns are most useful worst-first.
  const dir = key === "fractionClipped" || key === "biasShift" ? "desc" : "asc";
  return { ...q, sort: key, dir };
}
