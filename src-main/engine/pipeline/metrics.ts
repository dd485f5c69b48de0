// Accuracy and error measures that the report shows. All streaming: nothing is kept per image
// except what the paired comparison needs (one top-1 index per image).
import type { OutputFidelity } from "../../../shared/types.ts";

/** 95% Wilson score interval for k successes in n trials, in percent. */
export function wilsonInterval(k: number, n: number, z = 1.959964): [number, number] {
  if (n === 0) return [0, 0];
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [100 * Math.max(0, centre - half), 100 * Math.min(1, centre + half)];
}

/** Index of the largest of `k` logits starting at `offset`, and whether `label` is among the top 5. */
export function rankOf(logits: ArrayLike<number>, offset: number, k: number, label: number): { top1: number; inTop5: boolean } {
  let top1 = 0;
  let best = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = logits[offset + j];
    if (v > best) {
      best = v;
      top1 = j;
    }
  }
  if (label < 0 || label >= k) return { top1, inTop5: false };
  const target = logits[offset + label];
  let above = 0;
  for (let j = 0; j < k; j++) {
    const v = logits[offset + j];
    // ties resolved by index, as a stable sort would
    if (v > target || (v === target && j < label)) above++;
  }
  return { top1, inTop5: above < 5 };
}

/** Signal-to-quantization-noise ratio accumulated over batches: 10·log10(Σx² / Σ(x−x̂)²). */
export class SqnrAccumulator {
  private signal = 0;
  private noise = 0;

  add(reference: ArrayLike<number>, quantized: ArrayLike<number>): void {
    let s = 0;
    let e = 0;
    for (let i = 0; i < reference.length; i++) {
      const r = reference[i];
      const d = r - quantized[i];
      s += r * r;
      e += d * d;
    }
    this.signal += s;
    this.noise += e;
  }

  db(): number | null {
    if (this.signal === 0) return null;
    if (this.noise === 0) return Infinity;
    return 10 * Math.log10(this.signal / this.noise);
  }
}

/**
 * How close one quantized output is to FP32's, accumulated over batches: SQNR over all elements, cosine similarity
 * per sample (mean and worst), the largest absolute difference, and FP32's largest magnitude to read it against.
 */
export class FidelityAccumulator {
  private readonly sqnr = new SqnrAccumulator();
  private cosineSum = 0;
  private worst = Infinity;
  private cosines = 0;
  private maxAbsError = 0;
  private referenceMaxAbs = 0;
  samples = 0;

  add(reference: ArrayLike<number>, quantized: ArrayLike<number>, count: number): void {
    const per = reference.length / count;
    for (let s = 0; s < count; s++) {
      let dot = 0;
      let rr = 0;
      let qq = 0;
      for (let i = s * per; i < (s + 1) * per; i++) {
        const r = reference[i];
        const q = quantized[i];
        dot += r * q;
        rr += r * r;
        qq += q * q;
        const e = Math.abs(r - q);
        if (e > this.maxAbsError || Number.isNaN(e)) this.maxAbsError = e;
        if (Math.abs(r) > this.referenceMaxAbs) this.referenceMaxAbs = Math.abs(r);
      }
      // a sample where both are all zero agrees perfectly; one where only one is zero has no direction to compare
      const cos = rr === 0 && qq === 0 ? 1 : rr === 0 || qq === 0 ? 0 : dot / Math.sqrt(rr * qq);
      this.cosineSum += cos;
      this.worst = Math.min(this.worst, cos);
      this.cosines++;
    }
    this.sqnr.add(reference, quantized);
    this.samples += count;
  }

  result(output: string, shape: (number | string)[]): OutputFidelity {
    const db = this.sqnr.db();
    return {
      output,
      shape,
      samples: this.samples,
      // JSON has no Infinity: identical outputs are told by `identical`
      sqnrDb: db === null || !Number.isFinite(db) ? null : db,
      identical: db === Infinity,
      cosine: this.cosines ? this.cosineSum / this.cosines : null,
      worstCosine: this.cosines ? this.worst : null,
      maxAbsError: this.maxAbsError,
      referenceMaxAbs: this.referenceMaxAbs,
    };
  }
}
