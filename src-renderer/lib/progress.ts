// Turns the stream of progress events into one row per stage (what the Run screen draws), the overall
// share done and the time left over every remaining pass.
//
// Each stage is planned before the job starts, with the number of images (or layers) it will go through
// and a cost per unit relative to one image through one model, so the overall bar weighs a 150-image
// evaluation of two models more than writing the file, and the time left can count the passes that have
// not started yet at the pace the finished ones went.
import type { JobRequest } from "../../shared/engine-api.ts";
import type { Progress, QuantConfig } from "../../shared/types.ts";

export type Stage = Progress["stage"];

/**
 * Cost of one unit of each stage, in "one image through one model" (measured on ResNet-20 and MobileNet v1
 * with the CLI: statistics and the paired evaluation cost about the same per image, the per-layer pass
 * 1.5 to 1.7 times that, an FP32-only pass about half).
 */
const COST: Record<Stage, number> = {
  decode: 0.3,
  statistics: 1,
  equalize: 0.05,
  quantize: 0.05,
  reconstruct: 3,
  export: 2,
  evaluate: 1,
  "layer-error": 1.7,
  fp32: 0.5,
  ablation: 0.8,
  preprocess: 0.5,
  sensitivity: 1,
};

/** The per-layer pass runs on at most this many evaluation images (LAYER_ERROR_IMAGES in the engine). */
export const LAYER_ERROR_IMAGES = 256;
/** The reconstruct stage's default number of calibration images (reconstructOptions in the engine). */
const RECONSTRUCT_IMAGES = 256;

export interface StageRow {
  stage: Stage;
  label: string;
  done: number;
  total: number;
  /** planned units × cost: fixed when planned, so the overall share never moves back */
  weight: number;
  etaSeconds: number | null;
  message: string | null;
  state: "pending" | "active" | "done";
  /** ms timestamps from the job's clock */
  startedAt: number | null;
  endedAt: number | null;
}

export interface PlanContext {
  /** the run's settings: which optional stages (equalize, reconstruct, the mixed-precision search) it has */
  config?: Pick<QuantConfig, "methods" | "maxDrop" | "reconstruct">;
  /** images the statistics pass will read (after the calibration limit) */
  calibImages: number;
  evalImages: number;
  layers: number;
  /** what the run produces, e.g. "W4A4", for the stage names */
  bits: string;
  /** ablation: combinations; recommend: settings to try */
  passes?: number;
  /** recommend: labelled images per setting */
  sample?: number;
}

interface Planned {
  stage: Stage;
  label: string;
  units: number;
  /** planned cost when it is not units × the stage's cost per unit */
  weight?: number;
}

const n = (x: number) => x.toLocaleString("en-US");
const images = (x: number) => `${n(x)} image${x === 1 ? "" : "s"}`;

/** The stages a job goes through, named for this job: what it measures, on how many images. */
export function planStages(req: JobRequest, ctx: PlanContext): Planned[] {
  const stats: Planned = { stage: "statistics", label: `Collecting statistics on ${images(ctx.calibImages)}`, units: ctx.calibImages };
  switch (req.kind) {
    case "evaluate-fp32":
      return [{ stage: "fp32", label: `Measuring the FP32 model on ${images(ctx.evalImages)}`, units: ctx.evalImages }];
    case "recommend-preprocess": {
      const passes = ctx.passes ?? 10;
      const sample = ctx.sample ?? ctx.evalImages;
      return [{ stage: "preprocess", label: `Trying ${passes} preprocessing settings on ${n(sample)} labelled images`, units: passes * sample }];
    }
    case "ablation": {
      const passes = ctx.passes ?? 1;
      // with equalization among the switches, a second calibration on the equalized model comes before the combinations
      const equalize: Planned[] = req.config.methods.includes("equalize") ? [{ stage: "equalize", label: `Equalizing neighbouring layers on ${images(ctx.calibImages)}, then collecting statistics again`, units: ctx.calibImages }] : [];
      return [stats, ...equalize, { stage: "ablation", label: `Measuring ${passes} method combinations at ${ctx.bits} on ${images(ctx.evalImages)}`, units: passes * ctx.evalImages }];
    }
    case "quantize": {
      const methods = ctx.config?.methods ?? [];
      const rows: Planned[] = [
        ...(methods.includes("equalize") ? [{ stage: "equalize" as const, label: `Equalizing neighbouring layers on ${images(ctx.calibImages)}`, units: ctx.calibImages }] : []),
        stats,
        { stage: "quantize", label: `Quantizing ${n(ctx.layers)} layers to ${ctx.bits}`, units: ctx.layers },
      ];
      if (methods.includes("reconstruct") || methods.includes("bias-fold")) {
        // each layer is solved on the reconstruction images passed through the network up to it: on average half a pass each
        const recon = Math.min(ctx.calibImages, ctx.config?.reconstruct?.images ?? RECONSTRUCT_IMAGES);
        rows.push({ stage: "reconstruct", label: `Choosing the rounding of ${n(ctx.layers)} layers on ${images(recon)}`, units: ctx.layers, weight: 0.5 * ctx.layers * recon });
      }
      rows.push({ stage: "export", label: `Writing the ${ctx.bits} model`, units: 1 });
      if (req.evalDir === null) return rows;
      const sample = Math.min(ctx.evalImages, LAYER_ERROR_IMAGES);
      if (ctx.config?.maxDrop != null) {
        // a bisection over how many layers to hold at 8 bits (mixed-precision.ts plans log2(layers + 1) + 3 candidates)
        const candidates = Math.ceil(Math.log2(ctx.layers + 1)) + 3;
        rows.push({ stage: "sensitivity", label: `Finding the smallest model within ${ctx.config.maxDrop} points: up to ${candidates} candidates on ${images(ctx.evalImages)}`, units: candidates, weight: candidates * ctx.evalImages * COST.evaluate });
      }
      return [
        ...rows,
        { stage: "evaluate", label: `Measuring FP32 and ${ctx.bits} on ${images(ctx.evalImages)}`, units: ctx.evalImages },
        { stage: "layer-error", label: `Comparing every layer with FP32 on ${images(sample)}`, units: sample },
      ];
    }
  }
}

const STAGE_FALLBACK: Record<Stage, string> = {
  decode: "Reading images",
  statistics: "Collecting statistics",
  equalize: "Equalizing layers",
  quantize: "Quantizing layers",
  reconstruct: "Choosing roundings",
  export: "Writing the model",
  evaluate: "Measuring FP32 and the quantized model",
  "layer-error": "Comparing every layer with FP32",
  fp32: "Measuring the FP32 model",
  ablation: "Measuring method combinations",
  preprocess: "Trying preprocessing settings",
  sensitivity: "Layer sensitivity and mixed precision",
};

export function initialRows(planned: Planned[]): StageRow[] {
  return planned.map((p) => ({
    stage: p.stage,
    label: p.label,
    done: 0,
    total: p.units,
    weight: p.weight ?? Math.max(p.units, 1) * COST[p.stage],
    etaSeconds: null,
    message: null,
    state: "pending",
    startedAt: null,
    endedAt: null,
  }));
}

export function applyProgress(rows: StageRow[], p: Progress, now: number): StageRow[] {
  let next = rows;
  if (!rows.some((r) => r.stage === p.stage)) {
    // A stage the plan did not list goes where the job is now: before the first stage not yet started.
    const at = rows.findIndex((r) => r.state === "pending");
    const i = at < 0 ? rows.length : at;
    const extra = initialRows([{ stage: p.stage, label: STAGE_FALLBACK[p.stage], units: p.total }]);
    next = [...rows.slice(0, i), ...extra, ...rows.slice(i)];
  }
  const at = next.findIndex((r) => r.stage === p.stage);
  return next.map((r, i) => {
    if (i === at) {
      const finished = p.total > 0 && p.done >= p.total;
      return {
        ...r,
        // a stage never counts backwards (a late event from an earlier batch, or a second pass over it)
        done: r.total === p.total ? Math.max(r.done, p.done) : p.done,
        total: p.total,
        etaSeconds: p.etaSeconds,
        message: p.message ?? null,
        state: finished || r.state === "done" ? "done" : "active",
        startedAt: r.startedAt ?? now,
        endedAt: finished ? (r.endedAt ?? now) : r.endedAt,
      };
    }
    // Reaching a stage means every stage listed before it has finished.
    if (i < at && r.state !== "done") return { ...r, state: "done", done: Math.max(r.done, r.total), startedAt: r.startedAt ?? now, endedAt: now };
    return r;
  });
}

export function finishRows(rows: StageRow[], now: number): StageRow[] {
  return rows.map((r) => (r.state === "done" ? r : { ...r, state: "done", done: r.total, endedAt: now }));
}

function fractionOf(r: StageRow): number {
  return r.state === "done" ? 1 : r.total > 0 ? Math.min(1, r.done / r.total) : 0;
}

/** 0..1 over the whole job, each stage weighted by its planned cost. */
export function overall(rows: StageRow[]): number {
  const total = rows.reduce((s, r) => s + r.weight, 0);
  if (total === 0) return 0;
  return rows.reduce((s, r) => s + r.weight * fractionOf(r), 0) / total;
}

/**
 * Seconds left for the whole job: the engine's estimate for the stage under way, plus the stages still
 * waiting at the pace the job has kept so far (seconds per unit of planned cost). Null until there is a pace.
 */
export function timeLeft(rows: StageRow[], now: number): number | null {
  let spent = 0;
  let work = 0;
  for (const r of rows) {
    if (r.startedAt === null) continue;
    spent += ((r.endedAt ?? now) - r.startedAt) / 1000;
    work += r.weight * fractionOf(r);
  }
  const pace = work > 0 && spent > 0 ? spent / work : null;
  let left = 0;
  for (const r of rows) {
    if (r.state === "done") continue;
    if (r.state === "active" && r.etaSeconds !== null) left += r.etaSeconds;
    else if (pace === null) return null;
    else left += pace * r.weight * (1 - fractionOf(r));
  }
  return left;
}
