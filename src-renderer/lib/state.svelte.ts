// The app's state, shared by the six screens. One job runs at a time; its events arrive through the
// transport and are matched to it by id (events that arrive before startJob returns are held briefly).
import type { AblationRow, DataPreview, JobEvent, JobRequest, JobResult, LayerHistogram } from "../../shared/engine-api.ts";
import type { Accuracy, ModelSummary, PreprocessConfig, QuantConfig, QuantReport } from "../../shared/types.ts";
import { defaultConfig, defaultPreprocess, methodsLabel } from "./presets.ts";
import { applyProgress, expectedStages, finishRows, initialRows, type StageRow } from "./progress.ts";
import { errorText, transport } from "./transport.ts";

export type ScreenId = "model" | "data" | "methods" | "run" | "compare" | "export";

export interface FolderState {
  dir: string | null;
  preview: DataPreview | null;
  busy: boolean;
  error: string | null;
}

export interface ActiveJob {
  id: string | null;
  kind: JobRequest["kind"];
  label: string;
  rows: StageRow[];
  startedAt: number;
  cancelling: boolean;
}

export interface RunRecord {
  jobId: string;
  label: string;
  report: QuantReport;
  histograms: Record<string, LayerHistogram>;
}

export interface AblationRecord {
  jobId: string;
  label: string;
  rows: AblationRow[];
  wBits: number;
  aBits: number;
  fp32Top1: number | null;
}

export interface ExportRecord {
  jobId: string;
  what: "model" | "html" | "json";
  path: string;
  bytes: number;
}

const PREVIEW_COUNT = 8;

function emptyFolder(): FolderState {
  return { dir: null, preview: null, busy: false, error: null };
}

export function runLabel(c: Pick<QuantConfig, "wBits" | "aBits" | "methods">): string {
  return `W${c.wBits}A${c.aBits} · ${methodsLabel(c.methods)}`;
}

export class AppState {
  screen = $state<ScreenId>("model");
  model = $state<ModelSummary | null>(null);
  modelBusy = $state(false);
  modelError = $state<string | null>(null);
  calib = $state<FolderState>(emptyFolder());
  evalData = $state<FolderState>(emptyFolder());
  preprocess = $state<PreprocessConfig>(defaultPreprocess());
  fp32 = $state<Accuracy | null>(null);
  /** the settings the FP32 check was made with, so a changed preset shows the result as stale */
  fp32Key = $state<string | null>(null);
  config = $state<QuantConfig>(defaultConfig());
  runMode = $state<"single" | "ablation">("single");
  calibLimit = $state<number | null>(512);
  job = $state<ActiveJob | null>(null);
  jobError = $state<{ kind: JobRequest["kind"]; message: string } | null>(null);
  /** the last job that finished, so the Run screen can say so */
  lastFinished = $state<{ kind: JobRequest["kind"]; label: string; seconds: number; cancelled: boolean } | null>(null);
  runs = $state<RunRecord[]>([]);
  ablations = $state<AblationRecord[]>([]);
  selectedRun = $state<string | null>(null);
  exports = $state<ExportRecord[]>([]);

  #early = new Map<string, JobEvent[]>();

  constructor() {
    transport.onEvent((e) => this.#onEvent(e));
  }

  get fp32Current(): boolean {
    return this.fp32 !== null && this.fp32Key === this.#fp32KeyNow();
  }

  get currentRun(): RunRecord | null {
    return this.runs.find((r) => r.jobId === this.selectedRun) ?? this.runs[this.runs.length - 1] ?? null;
  }

  get busy(): boolean {
    return this.job !== null;
  }

  #fp32KeyNow(): string {
    return JSON.stringify([this.model?.path, this.evalData.dir, this.preprocess]);
  }

  async openModel(path: string): Promise<void> {
    this.modelBusy = true;
    this.modelError = null;
    try {
      const summary = await transport.inspect(path);
      const changed = this.model?.path !== summary.path;
      this.model = summary;
      if (changed) {
        // Runs and overrides belong to one model; data folders and preprocessing usually carry over.
        this.runs = [];
        this.ablations = [];
        this.exports = [];
        this.selectedRun = null;
        this.fp32 = null;
        this.config = { ...this.config, keep: {} };
      }
      await this.refreshPreviews();
    } catch (e) {
      this.modelError = errorText(e);
    } finally {
      this.modelBusy = false;
    }
  }

  async setFolder(which: "calib" | "eval", dir: string | null): Promise<void> {
    const f = which === "calib" ? this.calib : this.evalData;
    f.dir = dir;
    f.preview = null;
    f.error = null;
    await this.#preview(f);
  }

  async setPreprocess(p: PreprocessConfig): Promise<void> {
    this.preprocess = p;
    await this.refreshPreviews();
  }

  async refreshPreviews(): Promise<void> {
    await Promise.all([this.#preview(this.calib), this.#preview(this.evalData)]);
  }

  async #preview(f: FolderState): Promise<void> {
    if (!f.dir || !this.model) return;
    const dir = f.dir;
    f.busy = true;
    try {
      const preview = await transport.previewData({ dir, model: this.model.path, preprocess: $state.snapshot(this.preprocess), count: PREVIEW_COUNT });
      // A newer choice may have replaced this folder while the preview was being made.
      if (f.dir !== dir) return;
      f.preview = preview;
      f.error = null;
    } catch (e) {
      if (f.dir === dir) {
        f.preview = null;
        f.error = errorText(e);
      }
    } finally {
      f.busy = false;
    }
  }

  get calibReady(): boolean {
    return !!this.calib.preview?.images && !this.calib.error;
  }

  get canCheckFp32(): boolean {
    return !!this.model && !!this.evalData.dir && !!this.evalData.preview?.images && !this.busy;
  }

  get canRun(): boolean {
    return !!this.model && this.calibReady && !this.busy && (this.runMode === "single" || !!this.evalData.preview?.images);
  }

  async checkFp32(): Promise<void> {
    if (!this.model || !this.evalData.dir) return;
    this.fp32Key = this.#fp32KeyNow();
    await this.#start({ kind: "evaluate-fp32", model: this.model.path, evalDir: this.evalData.dir, preprocess: $state.snapshot(this.preprocess) }, "FP32 accuracy check");
  }

  async run(): Promise<void> {
    if (!this.model || !this.calib.dir) return;
    const config = $state.snapshot(this.config);
    const limit = this.calibLimit ? { calibLimit: this.calibLimit } : {};
    const common = { model: this.model.path, calibDir: this.calib.dir, preprocess: $state.snapshot(this.preprocess), config, ...limit };
    if (this.runMode === "ablation" && this.evalData.dir) {
      await this.#start({ kind: "ablation", ...common, evalDir: this.evalData.dir }, `Ablation W${config.wBits}A${config.aBits}`);
    } else {
      await this.#start({ kind: "quantize", ...common, evalDir: this.evalData.dir }, runLabel(config));
    }
  }

  async cancel(): Promise<void> {
    const job = this.job;
    if (!job?.id) return;
    job.cancelling = true;
    try {
      await transport.cancelJob(job.id);
    } catch (e) {
      this.jobError = { kind: job.kind, message: errorText(e) };
    }
  }

  async #start(req: JobRequest, label: string): Promise<void> {
    if (this.job) return;
    this.jobError = null;
    const evaluates = req.kind !== "quantize" || req.evalDir !== null;
    this.job = { id: null, kind: req.kind, label, rows: initialRows(expectedStages(req.kind, evaluates)), startedAt: Date.now(), cancelling: false };
    try {
      const { jobId } = await transport.startJob(req);
      if (!this.job) return;
      this.job.id = jobId;
      const early = this.#early.get(jobId) ?? [];
      this.#early.clear();
      for (const e of early) this.#onEvent(e);
    } catch (e) {
      this.job = null;
      this.jobError = { kind: req.kind, message: errorText(e) };
    }
  }

  #onEvent(e: JobEvent): void {
    const job = this.job;
    if (!job) return;
    if (job.id === null) {
      // startJob has not returned yet: hold the event until we know whether it is ours.
      const list = this.#early.get(e.jobId) ?? [];
      list.push(e);
      this.#early.set(e.jobId, list);
      return;
    }
    if (e.jobId !== job.id) return;
    if (e.type === "progress") {
      job.rows = applyProgress(job.rows, e.progress);
      return;
    }
    this.job = null;
    if (e.type === "error") {
      this.jobError = e.cancelled ? null : { kind: job.kind, message: e.message };
      this.lastFinished = e.cancelled ? { kind: job.kind, label: job.label, seconds: (Date.now() - job.startedAt) / 1000, cancelled: true } : null;
      return;
    }
    job.rows = finishRows(job.rows);
    this.lastFinished = { kind: job.kind, label: job.label, seconds: (Date.now() - job.startedAt) / 1000, cancelled: false };
    this.#onResult(e.jobId, job.label, e.result);
  }

  #onResult(jobId: string, label: string, r: JobResult): void {
    if (r.kind === "evaluate-fp32") {
      this.fp32 = r.accuracy;
    } else if (r.kind === "quantize") {
      this.runs = [...this.runs, { jobId, label, report: r.report, histograms: r.histograms }];
      this.selectedRun = jobId;
    } else {
      const fp32Top1 = this.fp32Current ? (this.fp32?.top1 ?? null) : null;
      this.ablations = [...this.ablations, { jobId, label, rows: r.rows, wBits: r.wBits, aBits: r.aBits, fp32Top1 }];
    }
  }

  removeRun(jobId: string): void {
    this.runs = this.runs.filter((r) => r.jobId !== jobId);
    if (this.selectedRun === jobId) this.selectedRun = this.runs[this.runs.length - 1]?.jobId ?? null;
  }

  keepLayer(name: string, how: "8" | "float" | null): void {
    const keep = { ...this.config.keep };
    if (how === null) delete keep[name];
    else keep[name] = how;
    this.config.keep = keep;
  }

  async exportFile(jobId: string, what: ExportRecord["what"], path: string): Promise<ExportRecord> {
    const res = what === "model" ? await transport.exportModel({ jobId, path }) : await transport.exportReport({ jobId, path, format: what });
    const rec = { jobId, what, path: res.path, bytes: res.bytes };
    this.exports = [...this.exports.filter((x) => !(x.jobId === jobId && x.what === what)), rec];
    return rec;
  }
}

export const app = new AppState();
