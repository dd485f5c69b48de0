// Turns the stream of progress events into one row per stage (what the Run screen draws).
import type { JobRequest } from "../../shared/engine-api.ts";
import type { Progress } from "../../shared/types.ts";

export type Stage = Progress["stage"];

export const STAGE_LABELS: Record<Stage, string> = {
  decode: "Reading images",
  statistics: "Collecting statistics",
  equalize: "Equalizing layers",
  quantize: "Quantizing layers",
  reconstruct: "Choosing roundings",
  export: "Writing the model",
  evaluate: "Evaluating FP32 and 4-bit",
  fp32: "Evaluating the FP32 model",
  ablation: "Method combinations",
  sensitivity: "Layer sensitivity and mixed precision",
};

export interface StageRow {
  stage: Stage;
  label: string;
  done: number;
  total: number;
  etaSeconds: number | null;
  message: string | null;
  state: "pending" | "active" | "done";
}

/** The stages a job is expected to go through; stages the engine reports beyond these are added as they come. */
export function expectedStages(kind: JobRequest["kind"], evaluates: boolean): Stage[] {
  if (kind === "evaluate-fp32") return ["fp32"];
  if (kind === "ablation") return ["statistics", "ablation"];
  return evaluates ? ["statistics", "quantize", "export", "evaluate"] : ["statistics", "quantize", "export"];
}

export function initialRows(stages: Stage[]): StageRow[] {
  return stages.map((stage) => ({ stage, label: STAGE_LABELS[stage], done: 0, total: 0, etaSeconds: null, message: null, state: "pending" }));
}

export function applyProgress(rows: StageRow[], p: Progress): StageRow[] {
  let next = rows;
  if (!rows.some((r) => r.stage === p.stage)) {
    // A stage the plan did not list goes where the job is now: before the first stage not yet started.
    const at = rows.findIndex((r) => r.state === "pending");
    const i = at < 0 ? rows.length : at;
    next = [...rows.slice(0, i), ...initialRows([p.stage]), ...rows.slice(i)];
  }
  const at = next.findIndex((r) => r.stage === p.stage);
  next = next.map((r, i) => {
    if (i === at)
      return {
        ...r,
        done: p.done,
        total: p.total,
        etaSeconds: p.etaSeconds,
        message: p.message ?? null,
        state: p.total > 0 && p.done >= p.total ? "done" : "active",
      };
    // Reaching a stage means every stage listed before it has finished.
    if (i < at && r.state !== "done") return { ...r, state: "done", done: Math.max(r.done, r.total) };
    return r;
  });
  return next;
}

export function finishRows(rows: StageRow[]): StageRow[] {
  return rows.map((r) => (r.state === "done" ? r : { ...r, state: "done", done: r.total }));
}

/** 0..1 over the whole job, each stage weighted equally. */
export function overall(rows: StageRow[]): number {
  if (rows.length === 0) return 0;
  const sum = rows.reduce((s, r) => s + (r.state === "done" ? 1 : r.total > 0 ? Math.min(1, r.done / r.total) : 0), 0);
  return sum / rows.length;
}
