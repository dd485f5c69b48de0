// Phase-1 experiments of issue 9: top-1 on unseen images of each rounding / clipping / bias-folding variant,
// every number measured on the exported file (weights as INT4/INT8 DequantizeLinear, activations through
// QDQ at A8, or left float for the W4A-float probes), with the time of each stage.
//
//   node --import tsx scripts/bench/recon-probe.ts --model FILE --calib DIR --eval DIR --preset inception \
//     --resize 224 --crop 224 [--calib-limit 300] [--eval-limit 1000] [--equalize] --variants V1,V2,...
//
// A variant is a '+'-separated list of tokens:
//   af | aN          activations float, or N-bit (per channel, min/max as the plan sets them; default 8)
//   w3 | w4          low-bit weight width (default 4)
//   dw8              depthwise layers' weights at 8 bits
//   clip             weight-clip (per-channel MSE interval search)
//   gptq             reconstruct: second-order rounding
//   bf               reconstruct: bias folding (alone: codes stay nearest)
//   in=fp | in=q     layer inputs from the float model or from the quantized network (default q)
//   tgt=own          with in=q, reproduce W·x_q instead of the float output W·x_f
//   noact            no act-order;  damp=F  dampening;  n=N  calibration images used
//   paper            the paper's four methods (aciq, bitalloc-w, bitalloc-a, biascorr), as `--methods all`
//   aciq             ACIQ activation clipping alone;  abits  ACIQ + activation bit allocation
//   bcw | baw | baa  the paper's weight bias correction / weight or activation bit allocation
//   mse | pct        activation intervals by the MSE-search or 99.99th-percentile calibrator (needs --histograms)
//   pt               per-tensor activations
import { parseArgs } from "node:util";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { ALL_METHODS, type Method, type PreprocessConfig, type PresetName, type QuantConfig } from "../../shared/types.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import type { EvaluationResult } from "../../src-main/engine/pipeline/evaluate.ts";
import { EXACT, exportQuantizedModel } from "../../src-main/engine/targets/exact.ts";
import { exactPlacement, planLayer, type LayerPlan } from "../../src-main/engine/pipeline/plan.ts";
import { calibrate, evaluateQuantized } from "../../src-main/engine/pipeline/quantize.ts";
import { DEFAULT_RECONSTRUCT, reconstruct, type ReconstructOptions } from "../../src-main/engine/pipeline/reconstruct.ts";
import { table } from "./common.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    calib: { type: "string" },
    eval: { type: "string" },
    preset: { type: "string", default: "imagenet" },
    resize: { type: "string" },
    crop: { type: "string" },
    "calib-limit": { type: "string", default: "300" },
    "eval-limit": { type: "string", default: "1000" },
    variants: { type: "string", default: "af,af+gptq+in=fp" },
    equalize: { type: "boolean", default: false },
    histograms: { type: "boolean", default: false },
  },
});
if (!values.model || !values.calib || !values.eval) {
  console.error("usage: recon-probe.ts --model FILE --calib DIR --eval DIR [--preset P --resize N --crop N] --variants V1,V2");
  process.exit(2);
}
const preprocess: PreprocessConfig = { preset: values.preset as PresetName, resize: values.resize ? Number(values.resize) : undefined, crop: values.crop ? Number(values.crop) : undefined };

interface Variant {
  name: string;
  floatActivations: boolean;
  wBits: number;
  aBits: number;
  dw8: boolean;
  methods: Method[];
  recon: ReconstructOptions | null;
  baseline: QuantConfig["baseline"];
  activations: QuantConfig["activations"];
}

function parseVariant(name: string): Variant {
  const v: Variant = { name, floatActivations: false, wBits: 4, aBits: 8, dw8: false, methods: [], recon: null, baseline: "minmax", activations: "per-channel" };
  const r: Partial<ReconstructOptions> = {};
  let gptq = false;
  let bf = false;
  for (const t of name.split("+")) {
    if (t === "af") v.floatActivations = true;
    else if (/^a\d$/.test(t)) v.aBits = Number(t.slice(1));
    else if (/^w\d$/.test(t)) v.wBits = Number(t.slice(1));
    else if (t === "dw8") v.dw8 = true;
    else if (t === "clip") v.methods.push("weight-clip");
    else if (t === "paper") v.methods.push(...ALL_METHODS);
    else if (t === "abits") v.methods.push("aciq", "bitalloc-a");
    else if (t === "bcw") v.methods.push("biascorr");
    else if (t === "baw") v.methods.push("bitalloc-w");
    else if (t === "baa") v.methods.push("bitalloc-a");
    else if (t === "aciq") v.methods.push("aciq");
    else if (t === "mse") v.baseline = "mse";
    else if (t === "pct") v.baseline = "percentile";
    else if (t === "pt") v.activations = "per-tensor";
    else if (t === "gptq") gptq = true;
    else if (t === "bf") bf = true;
    else if (t === "in=fp") r.inputs = "float";
    else if (t === "in=q") r.inputs = "quantized";
    else if (t === "tgt=own") r.floatTarget = false;
    else if (t === "noact") r.actOrder = false;
    else if (t.startsWith("damp=")) r.damp = Number(t.slice(5));
    else if (t.startsWith("n=")) r.images = Number(t.slice(2));
    else throw new Error(`unknown variant token "${t}" in ${name}`);
  }
  if (gptq || bf) v.recon = { ...DEFAULT_RECONSTRUCT, ...r, rounding: gptq, biasFold: bf };
  return v;
}

const variants = values.variants.split(",").map((s) => s.trim()).filter(Boolean).map(parseVariant);
const base = defaultQuantConfig({ wBits: 4, aBits: 8, methods: [] });
let t = performance.now();
const c = await calibrate({ model: values.model, calib: { dir: values.calib, limit: Number(values["calib-limit"]) }, preprocess, config: { ...base, methods: values.equalize ? ["equalize"] : [], baseline: values.histograms ? "mse" : "minmax", activations: variants.some((v) => v.activations === "per-tensor") ? "per-tensor" : "per-channel" }, histograms: false });
const calibSeconds = (performance.now() - t) / 1000;
const evalSet = await scanImages(values.eval, { limit: Number(values["eval-limit"]) });
console.log(`${values.model}: calibration ${c.calibSet.files.length} images, prepare+statistics ${calibSeconds.toFixed(1)} s; evaluation ${evalSet.files.length} images`);
// FP32's predictions come with the first variant's evaluation and are reused by the others
let fp32: EvaluationResult | null = null;

const layers = c.prepared.layers.map(exactPlacement);
const activationRanks = new Map([...c.statistics].map(([k, s]) => [k, s.sampleShape.length + 1]));
const rows: string[][] = [];
let lastProgress = 0;
const progressLine = (p: { done: number; total: number; etaSeconds: number | null; message?: string }) => {
  const now = performance.now();
  if (now - lastProgress < 30000) return;
  lastProgress = now;
  console.log(`    reconstruct ${p.done}/${p.total} ${p.message ?? ""}, ${p.etaSeconds === null ? "?" : Math.round(p.etaSeconds)} s left`);
};
const weightShapes = new Map([...c.weights].map(([k, w]) => [k, w.shape]));
for (const v of variants) {
  const keep: QuantConfig["keep"] = {};
  if (v.dw8) for (const l of layers) if (l.kind === "depthwise") keep[l.name] = "8";
  const config = defaultQuantConfig({ wBits: v.wBits, aBits: v.aBits, methods: v.methods, keep, baseline: v.baseline, activations: v.activations });
  t = performance.now();
  let plans: LayerPlan[] = layers.map((l) => planLayer(l, c.weights.get(l.weightName)!, v.floatActivations ? undefined : c.statistics.get(l.output), config, EXACT));
  const planSeconds = (performance.now() - t) / 1000;
  let model = c.prepared.model;
  let pass = 0;
  let solve = 0;
  if (v.recon) {
    const network = (m: typeof model, sofar: LayerPlan[]) => exportQuantizedModel({ model: m, plans: sofar, weightShapes, activationRanks, metadata: {} }).model;
    const r = await reconstruct({ prepared: c.prepared, feeder: c.feeder, calibSet: c.calibSet, batching: c.batching, weights: c.weights, plans, network, options: v.recon, onProgress: progressLine });
    plans = r.plans;
    model = r.model;
    pass = r.passSeconds;
    solve = r.solveSeconds;
  }
  t = performance.now();
  const exported = exportQuantizedModel({ model, plans, weightShapes, activationRanks, metadata: {} });
  const bytes = encodeModel(exported.model);
  const exportSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const e = await evaluateQuantized(c, bytes, evalSet, { preprocess, layerErrors: false }, fp32?.predictions.fp32);
  if (!fp32) {
    fp32 = e;
    console.log(`  FP32: top-1 ${e.fp32.top1?.toFixed(2)}`);
  }
  const evalSeconds = (performance.now() - t) / 1000;
  const top1 = e.quantized!.top1!;
  rows.push([v.name, top1.toFixed(2), (fp32.fp32.top1! - top1).toFixed(2), e.agreement!.agreement.toFixed(1), planSeconds.toFixed(1), pass.toFixed(1), solve.toFixed(1), exportSeconds.toFixed(1), evalSeconds.toFixed(1), (bytes.length / 1e6).toFixed(2)]);
  console.log(`  ${v.name}: top-1 ${top1.toFixed(2)}, agreement ${e.agreement!.agreement.toFixed(1)} (plan ${planSeconds.toFixed(1)} s, passes ${pass.toFixed(1)} s, solve ${solve.toFixed(1)} s, export ${exportSeconds.toFixed(1)} s, eval ${evalSeconds.toFixed(1)} s)`);
}
console.log();
console.log(table(["variant", "top-1", "drop", "agree %", "plan s", "recon passes s", "recon solve s", "export s", "eval s", "MB"], rows));
