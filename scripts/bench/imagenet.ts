// The bench's "imagenet" part (issue 8's peer row): the ImageNet classifiers of ../shared/fixtures on a fixed split of
// imagenet-val-1300, and UltraFace's detection fidelity on the faces photographs, each against FP32 and against a
// textbook 8-bit quantizer. Every quantized number comes from running the exported bytes in onnxruntime-node.
import path from "node:path";
import { scanImages, type ImageSet } from "../../src-main/engine/data/scan.ts";
import type { Predictions } from "../../src-main/engine/pipeline/evaluate.ts";
import { calibrate, evaluateQuantized, quantizeCalibrated, type Calibrated } from "../../src-main/engine/pipeline/quantize.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { withBestRecipe } from "../../shared/recipes.ts";
import { ALL_METHODS, type DetectionFidelity, type OutputFidelity, type PreprocessConfig, type QuantConfig } from "../../shared/types.ts";
import { calibrationKey, fixed, keepRow, signed, table, textbookConfig } from "./common.ts";
import { imageNames, linkFolder, splitNames, type Split } from "./split.ts";

/** One row of a table: a configuration, quantized from the calibration statistics and evaluated from its exported bytes. */
export interface RowSpec {
  setting: string;
  methods: string;
  config: QuantConfig;
}

const bits = (w: number, a: number, methods: "none" | "all" | "best"): RowSpec => ({
  setting: `W${w}A${a}`,
  methods,
  config: methods === "best" ? withBestRecipe(defaultQuantConfig({ wBits: w, aBits: a })) : defaultQuantConfig({ wBits: w, aBits: a, methods: methods === "all" ? [...ALL_METHODS] : [] }),
});

/** The usual tools' int8 (common.ts); at W4A8 the same quantizer with 4-bit weight grids in INT8 containers. */
const textbook = (w: number): RowSpec => ({ setting: `W${w}A8`, methods: "textbook", config: textbookConfig(w) });

export const CLASSIFIER_ROWS: RowSpec[] = [bits(8, 8, "none"), bits(8, 8, "all"), bits(4, 8, "none"), bits(4, 8, "all"), bits(4, 8, "best"), bits(4, 4, "none"), bits(4, 4, "all"), textbook(8), textbook(4)];
export const DETECTOR_ROWS: RowSpec[] = [bits(8, 8, "none"), bits(8, 8, "all"), bits(4, 8, "best"), textbook(8)];

interface Classifier {
  name: string;
  file: string;
  labels: string;
  preprocess: PreprocessConfig;
}

// fixtures README: centre 224 x 224 crop of the 227 x 227 images, each model's own scaling
export const CLASSIFIERS: Classifier[] = [
  { name: "mobilenet_v1_0.75", file: "mobilenet_v1_0.75_224-imagenet.onnx", labels: "labels.txt", preprocess: { preset: "inception", crop: 224 } },
  { name: "tiny-darknet", file: "tiny-darknet-imagenet.onnx", labels: "labels-darknet.txt", preprocess: { preset: "raw01", crop: 224 } },
];

export const ULTRAFACE = {
  name: "ultraface-rfb-320",
  file: "ultraface-rfb-320.onnx",
  // (x - 127) / 128, stretched to 320 x 240 (fixtures README)
  preprocess: { preset: "custom", scale: 1, mean: [127, 127, 127], std: [128, 128, 128] } satisfies PreprocessConfig,
};

export interface ImagenetOptions {
  fixtures: string;
  /** scratch folder for the calibration folders (symbolic links) */
  tmp: string;
  seed: number;
  calibImages: number;
  evalImages: number;
  /** evaluate on only the first N images of the evaluation split (smoke runs) */
  evalLimit?: number;
  models: string[];
  /** only the rows whose Methods column is one of these (e.g. ["textbook"]); all rows when absent */
  rows?: string[];
  log: (msg: string) => void;
}

interface MeasuredRow {
  setting: string;
  methods: string;
  top1?: number;
  top5?: number;
  top1Interval?: [number, number] | null;
  agreement?: number;
  lost?: number | null;
  gained?: number | null;
  detection?: DetectionFidelity | null;
  outputs?: OutputFidelity[];
  bytes?: number;
  quantizeSeconds?: number;
  evaluateSeconds?: number;
}

export interface ClassifierResult {
  model: string;
  file: string;
  calibImages: number;
  evalImages: number;
  fp32: { top1: number; top5: number; top1Interval: [number, number] | null };
  rows: MeasuredRow[];
  calibrateSeconds: number[];
  totalSeconds: number;
}

/** A subset of a scanned folder, keeping its labels and classes. */
function only(set: ImageSet, names: readonly string[]): ImageSet {
  const keep = new Set(names);
  const files = set.files.filter((f) => keep.has(f.rel));
  if (files.length !== keep.size) throw new Error(`${set.root}: ${keep.size - files.length} images of the split are missing`);
  return { ...set, files };
}

async function measure(
  model: string,
  calibDir: string,
  evalSet: ImageSet,
  preprocess: PreprocessConfig,
  rows: RowSpec[],
  log: (msg: string) => void,
): Promise<{ fp32: Predictions | null; fp32Result: Awaited<ReturnType<typeof evaluateQuantized>>["fp32"] | null; rows: MeasuredRow[]; calibrateSeconds: number[] }> {
  const calibrated = new Map<string, Calibrated>();
  const calibrateSeconds: number[] = [];
  let fp32: Predictions | null = null;
  let fp32Result: Awaited<ReturnType<typeof evaluateQuantized>>["fp32"] | null = null;
  const out: MeasuredRow[] = [];
  for (const row of rows) {
    const config = row.config;
    const key = calibrationKey(config);
    let c = calibrated.get(key);
    if (!c) {
      const t = performance.now();
      c = await calibrate({ model, calib: { dir: calibDir }, preprocess, config, histograms: false });
      calibrateSeconds.push((performance.now() - t) / 1000);
      calibrated.set(key, c);
      log(`${path.basename(model)}: calibrated on ${c.calibSet.files.length} images (${config.activations} activations, target ${config.target}) in ${calibrateSeconds.at(-1)!.toFixed(1)} s`);
    }
    let t = performance.now();
    const { bytes } = await quantizeCalibrated(c, config, { "nibble.methods": `${row.setting} ${row.methods}` });
    const quantizeSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const r = await evaluateQuantized(c, bytes, evalSet, { preprocess, layerErrors: false }, fp32 ?? undefined);
    const evaluateSeconds = (performance.now() - t) / 1000;
    if (!fp32Result) {
      fp32 = r.predictions.fp32;
      fp32Result = r.fp32;
    }
    const m: MeasuredRow = {
      setting: row.setting,
      methods: row.methods,
      top1: r.quantized?.top1 ?? undefined,
      top5: r.quantized?.top5 ?? undefined,
      top1Interval: r.quantized?.top1Interval ?? null,
      agreement: r.agreement?.agreement,
      lost: r.agreement?.lost ?? null,
      gained: r.agreement?.gained ?? null,
      detection: r.detection,
      outputs: r.outputs,
      bytes: bytes.length,
      quantizeSeconds,
      evaluateSeconds,
    };
    out.push(m);
    const score = m.detection ? `${m.detection.kept}/${m.detection.fp32Detections} FP32 detections kept` : `${fixed(m.top1)} / ${fixed(m.top5)}`;
    log(`${path.basename(model)}: ${row.setting} ${row.methods}: ${score} (quantize ${quantizeSeconds.toFixed(1)} s, evaluate ${evaluateSeconds.toFixed(1)} s)`);
  }
  return { fp32, fp32Result, rows: out, calibrateSeconds };
}

export async function classifierAccuracy(o: ImagenetOptions, spec: Classifier, split: Split, calibDir: string): Promise<ClassifierResult> {
  const started = performance.now();
  const images = path.join(o.fixtures, "imagenet-val-1300");
  const all = await scanImages(images, { labels: path.join(images, spec.labels), role: "evaluation" });
  const evalSet = only(all, o.evalLimit === undefined ? split.eval : split.eval.slice(0, o.evalLimit));
  const model = path.join(o.fixtures, "models", spec.file);
  o.log(`${spec.name}: ${split.calib.length} calibration / ${evalSet.files.length} evaluation images (${spec.labels})`);
  const r = await measure(model, calibDir, evalSet, spec.preprocess, CLASSIFIER_ROWS.filter((r) => keepRow(r.methods, o.rows)), o.log);
  return {
    model: spec.name,
    file: spec.file,
    calibImages: split.calib.length,
    evalImages: evalSet.files.length,
    fp32: { top1: r.fp32Result!.top1!, top5: r.fp32Result!.top5!, top1Interval: r.fp32Result!.top1Interval },
    rows: r.rows,
    calibrateSeconds: r.calibrateSeconds,
    totalSeconds: (performance.now() - started) / 1000,
  };
}

export interface DetectorFold {
  fold: string;
  calib: string[];
  eval: string[];
  rows: MeasuredRow[];
  calibrateSeconds: number[];
}

/**
 * 24 photographs are too few to hold out a useful evaluation set once, so two folds: calibrate on one half and
 * evaluate on the other, then the other way round. Every face counted was found on an image calibration never saw.
 */
export async function detectorFidelity(o: ImagenetOptions): Promise<{ model: string; folds: DetectorFold[]; totalSeconds: number }> {
  const started = performance.now();
  const faces = path.join(o.fixtures, "faces");
  const names = await imageNames(faces);
  const half = Math.floor(names.length / 2);
  const s = splitNames(names, half, names.length - half, o.seed);
  const model = path.join(o.fixtures, "models", ULTRAFACE.file);
  const all = await scanImages(faces, { role: "evaluation" });
  const folds: DetectorFold[] = [];
  for (const [fold, calib, evaluation] of [["A", s.calib, s.eval], ["B", s.eval, s.calib]] as const) {
    const dir = await linkFolder(faces, calib, path.join(o.tmp, `faces-seed${o.seed}-fold${fold}`));
    const r = await measure(model, dir, only(all, evaluation), ULTRAFACE.preprocess, DETECTOR_ROWS.filter((r) => keepRow(r.methods, o.rows)), (m) => o.log(`fold ${fold}: ${m}`));
    folds.push({ fold, calib: [...calib], eval: [...evaluation], rows: r.rows, calibrateSeconds: r.calibrateSeconds });
  }
  return { model: ULTRAFACE.name, folds, totalSeconds: (performance.now() - started) / 1000 };
}

export interface ImagenetResult {
  split: { seed: number; calib: number; eval: number };
  classifiers: ClassifierResult[];
  detector: Awaited<ReturnType<typeof detectorFidelity>> | null;
}

/** Runs the part; `onText` gets each table as soon as it is measured (and the results so far, to save). */
export async function imagenetPart(o: ImagenetOptions, onText: (text: string, partial: ImagenetResult) => Promise<void>): Promise<ImagenetResult> {
  const images = path.join(o.fixtures, "imagenet-val-1300");
  const split = splitNames(await imageNames(images), o.calibImages, o.evalImages, o.seed);
  const calibDir = await linkFolder(images, split.calib, path.join(o.tmp, `imagenet-calib-seed${o.seed}`));
  const data: ImagenetResult = {
    split: { seed: o.seed, calib: split.calib.length, eval: split.eval.length },
    classifiers: [],
    detector: null,
  };
  for (const spec of CLASSIFIERS.filter((c) => o.models.includes(c.name))) {
    data.classifiers.push(await classifierAccuracy(o, spec, split, calibDir));
    await onText(printClassifier(data.classifiers.at(-1)!, o.seed), data);
  }
  if (o.models.includes(ULTRAFACE.name)) {
    data.detector = await detectorFidelity(o);
    await onText(printDetector(data.detector), data);
  }
  await onText(printDoneMeans(data), data);
  return data;
}

// ---------------------------------------------------------------------------------------------------
// Tables

const interval = (i: [number, number] | null | undefined) => (i ? `${fixed(i[0], 1)}–${fixed(i[1], 1)}` : "—");

function printClassifier(r: ClassifierResult, seed: number): string {
  const rows: string[][] = [["FP32", "—", fixed(r.fp32.top1), fixed(r.fp32.top5), interval(r.fp32.top1Interval), "+0.00", "100.00", "", "", "", ""]];
  for (const m of r.rows) {
    rows.push([
      m.setting,
      m.methods,
      fixed(m.top1),
      fixed(m.top5),
      interval(m.top1Interval),
      signed(m.top1! - r.fp32.top1),
      fixed(m.agreement),
      `${m.lost ?? "—"} / ${m.gained ?? "—"}`,
      m.bytes!.toLocaleString("en-US"),
      fixed(m.quantizeSeconds, 1),
      fixed(m.evaluateSeconds, 1),
    ]);
  }
  return [
    `### ${r.model}`,
    "",
    `Calibration: ${r.calibImages} images, evaluation: ${r.evalImages} other images of imagenet-val-1300 (split seed ${seed}); exported model run in onnxruntime-node. ` +
      `Calibration passes: ${r.calibrateSeconds.map((s) => `${s.toFixed(1)} s`).join(", ")}; model total ${(r.totalSeconds / 60).toFixed(1)} min.`,
    "",
    table(
      ["Setting", "Methods", "top-1", "top-5", "top-1 95% interval", "Δ top-1 vs FP32", "agree FP32 %", "lost / gained", "bytes", "quantize s", "evaluate s"],
      rows,
      ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r"],
    ),
  ].join("\n");
}

function sumDetections(folds: DetectorFold[], key: string) {
  const ds = folds.map((f) => f.rows.find((r) => `${r.setting} ${r.methods}` === key)?.detection).filter((d): d is DetectionFidelity => !!d);
  if (ds.length !== folds.length) return null;
  const fp32 = ds.reduce((a, d) => a + d.fp32Detections, 0);
  const kept = ds.reduce((a, d) => a + d.kept, 0);
  return { fp32, kept, extra: ds.reduce((a, d) => a + d.extra, 0), quantized: ds.reduce((a, d) => a + d.quantizedDetections, 0), percent: fp32 > 0 ? (100 * kept) / fp32 : null };
}

function printDetector(d: NonNullable<ImagenetResult["detector"]>): string {
  const rows: string[][] = [];
  const settings = d.folds[0].rows;
  for (const f of d.folds) {
    for (const m of f.rows) {
      const det = m.detection!;
      const out = (name: string) => m.outputs?.find((x) => x.output === name);
      rows.push([
        m.setting,
        m.methods,
        f.fold,
        String(det.fp32Detections),
        String(det.kept),
        fixed(det.keptPercent, 1),
        String(det.extra),
        fixed(out(det.scores)?.sqnrDb, 1),
        fixed(out(det.boxes)?.sqnrDb, 1),
        fixed(out(det.scores)?.worstCosine, 4),
        fixed(m.evaluateSeconds, 1),
      ]);
    }
  }
  for (const m of settings) {
    const s = sumDetections(d.folds, `${m.setting} ${m.methods}`);
    if (s) rows.push([m.setting, m.methods, "A + B", String(s.fp32), String(s.kept), fixed(s.percent, 1), String(s.extra), "", "", "", ""]);
  }
  const det = d.folds.flatMap((f) => f.rows).find((r) => r.detection)?.detection;
  return [
    `### ${d.model}: detection fidelity`,
    "",
    `Two folds of the ${d.folds[0].calib.length + d.folds[0].eval.length} faces photographs: fold A calibrates on ${d.folds[0].calib.length} and evaluates on the other ${d.folds[0].eval.length}, fold B the other way round. ` +
      `A face is an FP32 detection at score > ${det?.scoreThreshold ?? "?"} after NMS at IoU ${det?.nmsIou ?? "?"}; it is kept when the quantized model finds one at IoU ≥ ${det?.matchIou ?? "?"}. ` +
      `"extra": quantized detections with no FP32 counterpart. SQNR in dB and worst per-image cosine of the outputs against FP32. Model total ${(d.totalSeconds / 60).toFixed(1)} min.`,
    "",
    table(["Setting", "Methods", "fold", "FP32 faces", "kept", "kept %", "extra", "scores SQNR dB", "boxes SQNR dB", "scores worst cosine", "evaluate s"], rows, ["l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r"]),
  ].join("\n");
}

function printDoneMeans(data: ImagenetResult): string {
  const rows: string[][] = [];
  const verdict = (ok: boolean | null) => (ok === null ? "—" : ok ? "met" : "**not met**");
  for (const r of data.classifiers) {
    const row = (methods: string) => r.rows.find((m) => m.setting === "W8A8" && m.methods === methods);
    for (const [methods, limit] of [["none", 1.0], ["all", 0.5]] as const) {
      const m = row(methods);
      const d = m?.top1 === undefined ? null : m.top1 - r.fp32.top1;
      rows.push([r.model, `W8A8 ${methods} within ${limit.toFixed(1)} of FP32`, m?.top1 === undefined ? "—" : `${fixed(m.top1)} vs ${fixed(r.fp32.top1)} (${signed(d)})`, verdict(d === null ? null : d >= -limit)]);
    }
    const tb = row("textbook");
    rows.push([r.model, "textbook W8A8 (for reference)", tb?.top1 === undefined ? "—" : `${fixed(tb.top1)} (${signed(tb.top1 - r.fp32.top1)})`, ""]);
  }
  if (data.detector) {
    for (const methods of ["none", "all"]) {
      const s = sumDetections(data.detector.folds, `W8A8 ${methods}`);
      rows.push([data.detector.model, `W8A8 ${methods} keeps ≥ 95% of FP32 faces`, s ? `${s.kept} / ${s.fp32} = ${fixed(s.percent, 1)}%` : "—", verdict(s?.percent == null ? null : s.percent >= 95)]);
    }
  }
  return ["### Issue 8's Done-means", "", table(["Model", "target", "measured", "verdict"], rows, ["l", "l", "r", "l"])].join("\n");
}
