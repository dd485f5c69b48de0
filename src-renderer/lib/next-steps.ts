// Whether a run is good enough for the user, and what to try when it is not. The verdict compares the
// measured loss with what the user accepts; the next steps are a registry of providers, each proposing
// settings to run (one click each) or a result already measured, so new remedies (measured sensitivity,
// other methods) are one more provider, not another branch in a screen.
import { ALL_METHODS, type LayerReport, type ModelSummary, type QuantConfig, type QuantReport } from "../../shared/types.ts";
import { methodsName, preprocessKey } from "../../shared/describe.ts";
import { typicalError, worstOutput } from "./fidelity.ts";
import { methodsPresetOf, withMethodsPreset } from "./presets.ts";

export interface Goal {
  /** top-1 points the user accepts to lose, when the evaluation images have labels */
  maxDrop: number;
  /** share of predictions that must equal FP32's, percent, when they have none */
  minAgreement: number;
}

export const DEFAULT_GOAL: Goal = { maxDrop: 2, minAgreement: 95 };

export type Verdict =
  | { kind: "unmeasured"; title: string; text: string }
  | { kind: "ok" | "useless"; metric: "top1" | "agreement" | "detection"; title: string; text: string; note: string | null }
  /** measured, but with no accuracy to hold against a goal: the outputs compared with FP32's */
  | { kind: "compared"; metric: "outputs"; title: string; text: string; note: string | null };

const pct = (v: number) => `${v.toFixed(1)}%`;
const pts = (v: number) => `${v.toFixed(1)} point${v.toFixed(1) === "1.0" ? "" : "s"}`;
const n = (v: number) => v.toLocaleString("en-US");

export function verdictOf(r: QuantReport, goal: Goal): Verdict {
  const compared = !!r.agreement || !!r.detection || !!r.outputs?.length;
  if (!r.evaluation || r.evaluation.images === 0 || r.evaluation.measured === false || !compared) {
    return {
      kind: "unmeasured",
      title: "Accuracy not measured",
      text: "This run had no evaluation images, so nothing says how well the quantized model works. Choose an evaluation folder on the Data screen and run again before you rely on it.",
    };
  }
  const images = r.evaluation.images;
  if (r.fp32?.top1 != null && r.quantized?.top1 != null) {
    const loss = r.fp32.top1 - r.quantized.top1;
    const iv = r.quantized.top1Interval;
    const note = iv && images < 5000 ? `Measured on ${n(images)} images: the quantized top-1 is known to within about ±${((iv[1] - iv[0]) / 2).toFixed(1)} points.` : null;
    const change = `${pct(r.fp32.top1)} → ${pct(r.quantized.top1)}`;
    if (loss > goal.maxDrop) {
      return {
        kind: "useless",
        metric: "top1",
        title: "Useless as it stands",
        text: `This model loses ${pts(loss)} of top-1 accuracy (${change}), more than the ${pts(goal.maxDrop)} you accept.`,
        note,
      };
    }
    const how = loss > 0 ? `loses ${pts(loss)} of top-1 (${change})` : `keeps its top-1 accuracy (${change})`;
    return { kind: "ok", metric: "top1", title: "Within what you accept", text: `This model ${how}; you accept a loss of up to ${pts(goal.maxDrop)}.`, note };
  }
  if (r.agreement) {
    const a = r.agreement.agreement;
    const note = "The evaluation images have no labels, so this is agreement with the FP32 model, not accuracy.";
    if (a < goal.minAgreement) {
      return {
        kind: "useless",
        metric: "agreement",
        title: "Useless as it stands",
        text: `Only ${pct(a)} of this model's predictions equal the FP32 model's (${n(r.agreement.flipped)} of ${n(images)} changed), below the ${pct(goal.minAgreement)} you ask for.`,
        note,
      };
    }
    return { kind: "ok", metric: "agreement", title: "Within what you accept", text: `${pct(a)} of this model's predictions equal the FP32 model's; you ask for at least ${pct(goal.minAgreement)}.`, note };
  }
  const d = r.detection;
  if (d && d.keptPercent !== null) {
    const found = `${pct(d.keptPercent)} of the objects the FP32 model detects (${n(d.kept)} of ${n(d.fp32Detections)} on ${n(d.samples)} images)`;
    const note = `It also makes ${n(d.extra)} detection${d.extra === 1 ? "" : "s"} FP32 does not. This is agreement with the FP32 model, not accuracy against ground truth.`;
    if (d.keptPercent < goal.minAgreement) {
      return { kind: "useless", metric: "detection", title: "Useless as it stands", text: `This model finds only ${found}, below the ${pct(goal.minAgreement)} you ask for.`, note };
    }
    return { kind: "ok", metric: "detection", title: "Within what you accept", text: `This model finds ${found}; you ask for at least ${pct(goal.minAgreement)}.`, note };
  }
  const worst = worstOutput(r.outputs ?? []);
  const text = worst
    ? `This model has no class output, so Nibble compared its outputs with the FP32 model's on ${n(images)} samples: ${r.outputs!.length === 1 ? "its output differs" : `its furthest output, ${worst.output}, differs`} from FP32's by about ${typicalError(worst.sqnrDb as number).toFixed(1)}% of the values' size.`
    : `This model's outputs are identical to the FP32 model's on ${n(images)} samples.`;
  return {
    kind: "compared",
    metric: "outputs",
    title: "Compared with FP32",
    text,
    note: "No accuracy can be measured without a class output: whether this difference matters depends on what your application does with the outputs.",
  };
}

/** A finished run, as the next steps see it. */
export interface RunView {
  jobId: string;
  name: string;
  report: QuantReport;
}

export interface AblationView {
  config: QuantConfig;
  rows: { methods: string[]; top1: number | null; agreement: number }[];
}

export interface StepContext {
  run: RunView;
  runs: readonly RunView[];
  ablations: readonly AblationView[];
  model: ModelSummary | null;
  goal: Goal;
}

export interface ProposedStep {
  id: string;
  title: string;
  /** why it may help, and what is known of it already */
  detail: string;
  /** settings to run; null when the step is to look at a result that exists */
  config: QuantConfig | null;
  /** the finished run the step refers to, when there is one */
  jobId?: string;
}

export interface NextStep extends ProposedStep {
  /** a finished run with exactly these settings: shown instead of running them again */
  measured: { jobId: string; name: string; verdict: Verdict } | null;
}

export type StepProvider = (ctx: StepContext) => ProposedStep[];

/** Quantized below 8 bits: the only layers holding one at 8 bits can change. */
function lowBit(l: LayerReport): boolean {
  return l.precision === "low" && (l.weightBits < 8 || (l.activationBits !== null && l.activationBits < 8));
}

function keepAt8(c: QuantConfig, names: string[]): QuantConfig {
  return { ...c, keep: { ...c.keep, ...Object.fromEntries(names.map((n) => [n, "8" as const])) } };
}

/** Runs already measured that meet the goal: the cheapest next step is the one already taken. */
const measuredRuns: StepProvider = ({ run, runs, goal }) =>
  runs
    .filter((x) => x.jobId !== run.jobId && verdictOf(x.report, goal).kind === "ok")
    .map((x) => ({
      id: `run:${x.jobId}`,
      title: `Use the ${x.name} run`,
      detail: `Already measured: ${verdictOf(x.report, goal).text}`,
      config: null,
      jobId: x.jobId,
    }));

/**
 * The layers whose output strays furthest from FP32 (lowest SQNR in this run's per-layer pass) are
 * held at 8 bits: a proxy for sensitivity until sensitivity is measured directly. Two sizes, so the user
 * can trade size for accuracy.
 */
const sensitiveLayers: StepProvider = ({ run }) => {
  const ranked = run.report.layers.filter((l) => lowBit(l) && l.sqnrDb !== null).sort((a, b) => (a.sqnrDb as number) - (b.sqnrDb as number));
  const sizes = [...new Set([Math.min(3, ranked.length), Math.min(ranked.length, Math.max(3, Math.round(ranked.length / 4)))])].filter((k) => k > 0);
  return sizes.map((k) => {
    const names = ranked.slice(0, k).map((l) => l.name);
    const shown = k <= 3 ? names.join(", ") : `${names.slice(0, 3).join(", ")} and ${k - 3} more`;
    return {
      id: `sensitive:${k}`,
      title: `Keep the ${k} most sensitive layer${k === 1 ? "" : "s"} at 8 bits`,
      detail: `${shown}: the layers whose output differs most from FP32 in this run.`,
      config: keepAt8(run.report.config, names),
    };
  });
};

const depthwiseLayers: StepProvider = ({ run, model }) => {
  const low = new Set(run.report.layers.filter(lowBit).map((l) => l.name));
  const names = (model?.layers ?? []).filter((l) => l.kind === "depthwise" && low.has(l.name)).map((l) => l.name);
  if (names.length === 0) return [];
  return [
    {
      id: "depthwise",
      title: `Keep every depthwise layer at 8 bits (${names.length})`,
      detail: "Depthwise layers have few weights per channel and suffer most at 4 bits; they are a small part of the model's size.",
      config: keepAt8(run.report.config, names),
    },
  ];
};

const moreBits: StepProvider = ({ run }) => {
  const c = run.report.config;
  const out: ProposedStep[] = [];
  if (c.aBits < 8) out.push({ id: "bits:a8", title: `More bits: W${c.wBits}A8`, detail: "8-bit activations: the file stays the same size; activations are often the harder half at 4 bits.", config: { ...c, aBits: 8 } });
  if (c.wBits < 8) out.push({ id: "bits:w8", title: `More bits: W8A${c.aBits}`, detail: "8-bit weights: a larger file (about a quarter of FP32 instead of an eighth).", config: { ...c, wBits: 8 } });
  if (c.wBits < 8 && c.aBits < 8) out.push({ id: "bits:w8a8", title: "More bits: W8A8", detail: "8 bits throughout: usually within a point of FP32, at a quarter of its size.", config: { ...c, wBits: 8, aBits: 8 } });
  return out;
};

/** The recipe measured best for these bits, when the run used something else. */
const bestAccuracy: StepProvider = ({ run }) => {
  const c = run.report.config;
  if (methodsPresetOf(c) === "best") return [];
  return [
    {
      id: "methods:best",
      title: "Best accuracy",
      detail: "Searched clipping ranges, weight clipping, rounding chosen per layer and bias folding: usually the largest gain at the same size, and a slower run.",
      config: withMethodsPreset(c, "best"),
    },
  ];
};

/** The paper's four together, for a run that picked some of them by hand. */
const allMethods: StepProvider = ({ run }) => {
  const c = run.report.config;
  if (methodsPresetOf(c) !== "custom" || ALL_METHODS.every((m) => c.methods.includes(m))) return [];
  return [{ id: "methods:all", title: "Turn on all four methods", detail: `This run used ${methodsName(c.methods).toLowerCase()}; together the methods recover the most at 4 bits.`, config: { ...c, methods: [...ALL_METHODS] } }];
};

/** The best combination an ablation measured at the same bits, when it is not what this run used. */
const ablationBest: StepProvider = ({ run, ablations }) => {
  const c = run.report.config;
  const out: ProposedStep[] = [];
  for (const a of ablations) {
    if (a.config.wBits !== c.wBits || a.config.aBits !== c.aBits || a.rows.length === 0) continue;
    const score = (r: AblationView["rows"][number]) => r.top1 ?? r.agreement;
    const best = a.rows.reduce((x, y) => (score(y) > score(x) ? y : x));
    if (sameMethods(best.methods, c.methods)) continue;
    out.push({
      id: `ablation:${best.methods.join("+")}`,
      title: `Use ${methodsName(best.methods)}`,
      detail: `The best combination of the ablation at W${c.wBits}A${c.aBits}: ${best.top1 !== null ? `${best.top1.toFixed(1)}% top-1` : `${best.agreement.toFixed(1)}% agreement`}.`,
      config: { ...c, methods: [...best.methods] as QuantConfig["methods"] },
    });
  }
  return out;
};

/** Tried in this order; the first to propose a setting keeps it. */
export const STEP_PROVIDERS: StepProvider[] = [measuredRuns, ablationBest, bestAccuracy, sensitiveLayers, depthwiseLayers, moreBits, allMethods];

function sameMethods(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((m) => b.includes(m));
}

/** Equal exactly when two configs quantize alike (method order and override order do not matter). */
export function configKey(c: QuantConfig): string {
  const keep = Object.keys(c.keep)
    .sort()
    .map((k) => [k, c.keep[k]]);
  return JSON.stringify({ ...c, methods: [...c.methods].sort(), keep });
}

export function nextSteps(ctx: StepContext, providers: readonly StepProvider[] = STEP_PROVIDERS): NextStep[] {
  // Same settings on the same images: a run of one of them answers the other.
  const keyOf = (r: QuantReport) => configKey(r.config) + preprocessKey(r.preprocess);
  const seen = new Set<string>([keyOf(ctx.run.report)]);
  const out: NextStep[] = [];
  for (const step of providers.flatMap((p) => p(ctx))) {
    const shown = step.jobId ? ctx.runs.find((x) => x.jobId === step.jobId) : undefined;
    const key = shown ? keyOf(shown.report) : step.config ? configKey(step.config) + preprocessKey(ctx.run.report.preprocess) : step.id;
    if (seen.has(key)) continue;
    seen.add(key);
    const done = step.config ? ctx.runs.find((x) => keyOf(x.report) === key) : undefined;
    out.push({ ...step, measured: done ? { jobId: done.jobId, name: done.name, verdict: verdictOf(done.report, ctx.goal) } : null });
  }
  return out;
}
