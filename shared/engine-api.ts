// The transport-neutral engine API. The Electron preload, the loopback web host and the CLI all speak it;
// src-main/service implements it over worker threads. Requests and events are plain JSON.
import type { ModelSummary, PreprocessConfig, Progress, QuantConfig, QuantReport, Accuracy } from "./types.ts";

export interface DataPreviewImage {
  file: string;
  /** data: URL of a PNG of the preprocessed image, mapped back to 0..255 for display */
  png: string;
  /** per-channel mean/std/min/max of the tensor the model will see */
  channels: { mean: number; std: number; min: number; max: number }[];
}

/** How a folder's labels were read, so the user can check them before any accuracy depends on them. */
export interface LabelInfo {
  /** labels.txt at the folder's root, one sub-folder per class, or nothing */
  source: "labels-file" | "class-folders" | "none";
  /** where the class names came from; null for bare numeric labels */
  names: "classes-file" | "class-folders" | "labels-file" | null;
  /** a few entries as written and as Nibble read them, e.g. "x.JPEG 472" read as "class 472" */
  examples: { text: string; read: string }[];
  /** images with a label */
  labelled: number;
  /** different labels among them */
  distinct: number;
  /** the highest class index used, null without labels */
  maxIndex: number | null;
}

export interface DataPreview {
  dir: string;
  /** a folder of images, or of NumPy arrays (.npy/.npz: no pictures, samples counts them) */
  kind?: "images" | "tensors";
  images: number;
  /** samples the folder holds (arrays: a file may hold a batch) */
  sampleCount?: number;
  /** the model's input takes any height and width: the user chooses inputSize */
  dynamicInputSize?: boolean;
  /** [height, width] to offer for such a model: the images' median size rounded to the model's stride */
  suggestedInputSize?: [number, number] | null;
  /** what the model's input size must be a multiple of (its total downsampling) */
  inputStride?: number;
  classes: string[];
  labels: LabelInfo;
  skipped: { file: string; reason: string }[];
  samples: DataPreviewImage[];
}

/** How detector outputs are compared: score threshold (default 0.7), NMS overlap (0.45), match overlap (0.5). */
export interface DetectionOptions {
  scoreThreshold?: number;
  nmsIou?: number;
  matchIou?: number;
}

export type JobRequest =
  | { kind: "evaluate-fp32"; model: string; evalDir: string; preprocess: PreprocessConfig; evalLabels?: string }
  | {
      kind: "quantize";
      model: string;
      calibDir: string;
      evalDir: string | null;
      preprocess: PreprocessConfig;
      config: QuantConfig;
      /** a seeded random subset of the calibration folder */
      calibLimit?: number;
      calibSeed?: number;
      /** a labels file for the evaluation folder, instead of its own labels.txt */
      evalLabels?: string;
      detection?: DetectionOptions;
    }
  | {
      /** FP32 accuracy of every preprocessing preset and resize policy on a labelled sample */
      kind: "recommend-preprocess";
      model: string;
      evalDir: string;
      evalLabels?: string;
      /** the user's current setting, always among those tried */
      preprocess: PreprocessConfig;
      /** labelled images to try each setting on (a seeded random subset) */
      sample?: number;
    }
  | {
      kind: "ablation";
      model: string;
      calibDir: string;
      evalDir: string;
      preprocess: PreprocessConfig;
      config: QuantConfig;
      calibLimit?: number;
      evalLabels?: string;
    };

export interface AblationRow {
  methods: string[];
  top1: number | null;
  /** optional: results made before it was recorded lack it */
  top5?: number | null;
  agreement: number;
  /** size of that combination's exported model */
  bytes?: number;
}

export interface PreprocessTrial {
  preprocess: PreprocessConfig;
  accuracy: Accuracy;
}

export type JobResult =
  | { kind: "evaluate-fp32"; accuracy: Accuracy }
  | { kind: "recommend-preprocess"; trials: PreprocessTrial[]; images: number }
  | { kind: "quantize"; report: QuantReport; histograms: Record<string, LayerHistogram> }
  | { kind: "ablation"; rows: AblationRow[]; wBits: number; aBits: number };

export interface LayerHistogram {
  /** bin edges (length bins+1) and counts of the pre-activation values seen in calibration */
  edges: number[];
  counts: number[];
  /** clip interval actually used, per tensor (per-channel ranges are summarised by their union) */
  clipLo: number;
  clipHi: number;
  observedMin: number;
  observedMax: number;
}

export type JobEvent =
  | { type: "progress"; jobId: string; progress: Progress }
  | { type: "done"; jobId: string; result: JobResult }
  | { type: "error"; jobId: string; message: string; cancelled: boolean };

export interface NibbleApi {
  inspect(modelPath: string): Promise<ModelSummary>;
  previewData(req: { dir: string; model: string; preprocess: PreprocessConfig; count: number }): Promise<DataPreview>;
  startJob(req: JobRequest): Promise<{ jobId: string }>;
  cancelJob(jobId: string): Promise<void>;
  /** Write the quantized model of a finished quantize job to a path the user chose. */
  exportModel(req: { jobId: string; path: string }): Promise<{ path: string; bytes: number }>;
  exportReport(req: { jobId: string; path: string; format: "html" | "json" }): Promise<{ path: string; bytes: number }>;
}
