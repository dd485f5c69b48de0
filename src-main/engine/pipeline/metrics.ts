// Accuracy and error measures that the report shows. All streaming: nothing is kept per image
// except what the paired comparison needs (one top-1 index per image).

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
export function rankOf(logits: Float32Array, offset: number, k: number, label: number): { top1: number; inTop5: boolean } {
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

  add(reference: Float32Array, quantized: Float32Array): void {
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
