// Summaries for the Data screen: what the preview tensors look like over all samples, and whether an
// FP32 accuracy looks like a preprocessing mistake.
import type { DataPreviewImage, LabelInfo, PreprocessTrial } from "../../shared/engine-api.ts";
import { preprocessKey, preprocessName } from "../../shared/describe.ts";
import type { Accuracy, PreprocessConfig } from "../../shared/types.ts";

export interface ChannelSummary {
  mean: number;
  std: number;
  min: number;
  max: number;
}

/** Per channel over the samples: mean of means, root-mean of variances, overall min and max. */
export function summariseChannels(samples: DataPreviewImage[]): ChannelSummary[] {
  if (samples.length === 0) return [];
  const n = Math.min(...samples.map((s) => s.channels.length));
  const out: ChannelSummary[] = [];
  for (let c = 0; c < n; c++) {
    const chans = samples.map((s) => s.channels[c]);
    const mean = chans.reduce((a, x) => a + x.mean, 0) / chans.length;
    // Pooled standard deviation (equal-size samples): within-image variance plus spread of the means.
    const variance = chans.reduce((a, x) => a + x.std * x.std + (x.mean - mean) ** 2, 0) / chans.length;
    out.push({ mean, std: Math.sqrt(variance), min: Math.min(...chans.map((x) => x.min)), max: Math.max(...chans.map((x) => x.max)) });
  }
  return out;
}

export type Fp32Verdict = { kind: "ok" | "warn" | "bad"; text: string };

/** Accuracy near chance on labelled data almost always means the wrong preprocessing preset or label order. */
export function fp32Verdict(acc: Accuracy, classes: number, rec: PreprocessAdvice | null = null): Fp32Verdict | null {
  if (acc.top1 === null || classes < 2) return null;
  const chance = 100 / classes;
  if (acc.top1 < chance * 2)
    return {
      kind: "bad",
      text: `Top-1 is close to guessing (${chance.toFixed(0)}% for ${classes} classes). The preprocessing preset or the class order is probably wrong: try another preset before quantizing.`,
    };
  if (rec && rec.better) return { kind: "warn", text: `Another preprocessing scores higher on your labelled images (${rec.best.name}): see the recommendation above before quantizing.` };
  if (rec) return { kind: "ok", text: `The FP32 model works on your data, and these settings are the best of the ${rec.rows.length} Nibble tried.` };
  if (acc.top1 < 50) return { kind: "warn", text: "Top-1 is low. If the model is known to do better, check the preprocessing preset and the resize policy." };
  return { kind: "ok", text: "The FP32 model gives plausible answers with these settings; Nibble has not compared them with the other presets." };
}

export interface TrialRow {
  preprocess: PreprocessConfig;
  name: string;
  top1: number;
  top5: number | null;
  current: boolean;
  best: boolean;
}

export interface PreprocessAdvice {
  rows: TrialRow[];
  best: TrialRow;
  current: TrialRow | null;
  /** the best scores more than one image's worth above the current setting: worth switching */
  better: boolean;
  images: number;
}

/** Trials best first; ties go to the current setting, so Nibble never suggests a change that measures the same. */
export function advisePreprocessing(trials: PreprocessTrial[], current: PreprocessConfig, images: number): PreprocessAdvice | null {
  const own = preprocessKey(current);
  const rows = trials
    .filter((t) => t.accuracy.top1 !== null)
    .map((t) => ({ preprocess: t.preprocess, name: preprocessName(t.preprocess), top1: t.accuracy.top1 as number, top5: t.accuracy.top5, current: preprocessKey(t.preprocess) === own, best: false }));
  if (rows.length === 0) return null;
  rows.sort((a, b) => b.top1 - a.top1 || Number(b.current) - Number(a.current));
  const cur = rows.find((r) => r.current) ?? null;
  const oneImage = 100 / Math.max(1, images);
  const top = cur && rows[0].top1 - cur.top1 <= oneImage + 1e-9 ? cur : rows[0];
  top.best = true;
  return { rows, best: top, current: cur, better: top !== cur, images };
}

export type LabelCheck = { kind: "ok" | "info" | "warn" | "bad"; text: string };

/** What the label summary says, and the warnings that are true for it (and only those). */
export function checkLabels(l: LabelInfo, images: number, classNames: number, outputs: number): LabelCheck[] {
  const n = (x: number) => x.toLocaleString("en-US");
  if (l.source === "none") {
    return [{ kind: "warn", text: "No labels found: this folder has no class sub-folders and no labels.txt. Nibble can compare the quantized model's predictions with FP32's, but cannot measure accuracy." }];
  }
  const out: LabelCheck[] = [];
  const from = l.source === "labels-file" ? `labels.txt (${l.names === null ? "class numbers" : "class names"})` : "one sub-folder per class, in sorted order";
  const classes = classNames > 0 ? `${n(classNames)} classes` : `${n(l.distinct)} different class numbers, up to ${n(l.maxIndex ?? 0)}`;
  const fits = outputs > 0 ? (classNames > 0 ? classNames === outputs : (l.maxIndex ?? 0) < outputs) : true;
  out.push({ kind: fits ? "ok" : "bad", text: `Labels read from ${from}: ${n(l.labelled)} of ${n(images)} images labelled, ${classes}${outputs > 0 ? `; the model has ${n(outputs)} outputs` : ""}.` });
  if (!fits && classNames > 0) out.push({ kind: "bad", text: `The folder names ${n(classNames)} classes but the model has ${n(outputs)} outputs: the labels cannot be this model's classes. Check the class folders or classes.txt.` });
  if (!fits && classNames === 0) out.push({ kind: "bad", text: `Label ${n(l.maxIndex ?? 0)} is beyond the model's ${n(outputs)} outputs (0 to ${n(outputs - 1)}): the labels do not number this model's classes.` });
  if (l.labelled < images) out.push({ kind: "info", text: `${n(images - l.labelled)} images have no label; accuracy is measured on the ${n(l.labelled)} that do.` });
  return out;
}
