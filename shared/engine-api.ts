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
  agreement: number;
}

export type JobResult =
  | { kind: "evaluate-fp32"; accuracy: Accuracy }
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
