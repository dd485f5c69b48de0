// Detection fidelity: what a detector's user cares about is whether the quantized model still finds the objects
// FP32 finds. Both models' raw outputs go through the same post-processing a detector's demo applies (score
// threshold, then greedy non-maximum suppression per class), and every FP32 detection is matched to a quantized one
// of the same class by overlap.
import type { DetectionFidelity, TensorInfo } from "../../../shared/types.ts";

export interface DetectorOutputs {
  scores: string;
  boxes: string;
}

export interface DetectionSettings {
  scoreThreshold: number;
  /** overlap above which NMS drops the lower-scored box */
  nmsIou: number;
  /** overlap at which a quantized detection counts as the same object */
  matchIou: number;
}

export const DEFAULT_DETECTION: DetectionSettings = { scoreThreshold: 0.7, nmsIou: 0.45, matchIou: 0.5 };

export interface Detection {
  cls: number;
  score: number;
  /** x1, y1, x2, y2 */
  box: [number, number, number, number];
}

const sameDim = (a: number | string | undefined, b: number | string | undefined) => a !== undefined && a !== "" && a === b && (typeof a === "string" || a > 0);

/**
 * A scores/boxes pair among the outputs: boxes [N, A, 4], scores [N, A, C] (or [N, A]) with the same A. Names
 * decide between several candidates ("box", "score"/"conf"); null when nothing has that shape.
 */
export function findDetectorOutputs(outputs: TensorInfo[]): DetectorOutputs | null {
  const boxes = outputs.filter((o) => o.shape.length === 3 && o.shape[2] === 4);
  boxes.sort((a, b) => Number(/box|loc|bbox/i.test(b.name)) - Number(/box|loc|bbox/i.test(a.name)));
  for (const b of boxes) {
    const scores = outputs.filter((o) => o !== b && (o.shape.length === 3 || o.shape.length === 2) && sameDim(o.shape[1], b.shape[1]));
    scores.sort((x, y) => Number(/score|conf|cls|prob/i.test(y.name)) - Number(/score|conf|cls|prob/i.test(x.name)));
    if (scores.length > 0) return { scores: scores[0].name, boxes: b.name };
  }
  return null;
}

export function iou(a: Detection["box"], b: Detection["box"]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const area = (r: Detection["box"]) => Math.max(0, r[2] - r[0]) * Math.max(0, r[3] - r[1]);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** Greedy NMS, highest score first, as detectors' post-processing does it. */
export function nms(candidates: Detection[], threshold: number): Detection[] {
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const d of sorted) if (kept.every((k) => k.cls !== d.cls || iou(k.box, d.box) <= threshold)) kept.push(d);
  return kept;
}

/**
 * One sample's detections: every anchor whose class score exceeds the threshold, then NMS per class. With two or
 * more score columns column 0 is background (SSD, UltraFace); a single column is the object score.
 */
export function detectionsOf(scores: ArrayLike<number>, boxes: ArrayLike<number>, sample: number, anchors: number, classes: number, s: DetectionSettings): Detection[] {
  const first = classes >= 2 ? 1 : 0;
  const out: Detection[] = [];
  for (let a = 0; a < anchors; a++) {
    const row = (sample * anchors + a) * classes;
    for (let c = first; c < classes; c++) {
      const score = scores[row + c];
      if (!(score > s.scoreThreshold)) continue;
      const b = (sample * anchors + a) * 4;
      out.push({ cls: c, score, box: [boxes[b], boxes[b + 1], boxes[b + 2], boxes[b + 3]] });
    }
  }
  return nms(out, s.nmsIou);
}

/** How many of `reference` have a match in `candidate` (same class, IoU at least `threshold`), each used once. */
export function matchDetections(reference: Detection[], candidate: Detection[], threshold: number): number {
  const used = new Uint8Array(candidate.length);
  let matched = 0;
  for (const r of [...reference].sort((a, b) => b.score - a.score)) {
    let best = -1;
    let bestIou = threshold;
    candidate.forEach((c, i) => {
      if (used[i] || c.cls !== r.cls) return;
      const o = iou(r.box, c.box);
      if (o >= bestIou) {
        bestIou = o;
        best = i;
      }
    });
    if (best >= 0) {
      used[best] = 1;
      matched++;
    }
  }
  return matched;
}

export class DetectionAccumulator {
  private fp32 = 0;
  private quant = 0;
  private kept = 0;
  private samples = 0;
  private classes = 0;

  constructor(
    private readonly outputs: DetectorOutputs,
    private readonly settings: DetectionSettings,
  ) {}

  /** One batch of both models' raw outputs; dims are the scores tensor's. */
  add(ref: { scores: ArrayLike<number>; boxes: ArrayLike<number> }, q: { scores: ArrayLike<number>; boxes: ArrayLike<number> }, count: number, scoreDims: readonly number[]): void {
    const anchors = scoreDims[1];
    const classes = scoreDims.length === 3 ? scoreDims[2] : 1;
    this.classes = classes;
    for (let i = 0; i < count; i++) {
      const a = detectionsOf(ref.scores, ref.boxes, i, anchors, classes, this.settings);
      const b = detectionsOf(q.scores, q.boxes, i, anchors, classes, this.settings);
      this.fp32 += a.length;
      this.quant += b.length;
      this.kept += matchDetections(a, b, this.settings.matchIou);
    }
    this.samples += count;
  }

  result(): DetectionFidelity {
    return {
      ...this.outputs,
      boxFormat: "corners",
      ...this.settings,
      classes: this.classes,
      backgroundClass: this.classes >= 2 ? 0 : null,
      samples: this.samples,
      fp32Detections: this.fp32,
      quantizedDetections: this.quant,
      kept: this.kept,
      keptPercent: this.fp32 > 0 ? (100 * this.kept) / this.fp32 : null,
      extra: this.quant - this.kept,
    };
  }
}
