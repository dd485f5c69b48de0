// Summaries for the Data screen: what the preview tensors look like over all samples, and whether an
// FP32 accuracy looks like a preprocessing mistake.
import type { DataPreviewImage } from "../../shared/engine-api.ts";
import type { Accuracy } from "../../shared/types.ts";

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
export function fp32Verdict(acc: Accuracy, classes: number): Fp32Verdict | null {
  if (acc.top1 === null || classes < 2) return null;
  const chance = 100 / classes;
  if (acc.top1 < chance * 2)
    return {
      kind: "bad",
      text: `Top-1 is close to guessing (${chance.toFixed(0)}% for ${classes} classes). The preprocessing preset or the class order is probably wrong: try another preset before quantizing.`,
    };
  if (acc.top1 < 50)
    return { kind: "warn", text: "Top-1 is low. If the model is known to do better, check the preprocessing preset and the resize policy." };
  return { kind: "ok", text: "The FP32 model works on your data with these settings." };
}
