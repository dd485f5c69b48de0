// The app's state, shared by the six screens. One job runs at a time; its events arrive through the
// transport and are matched to it by id (events that arrive before startJob returns are held briefly).
import { methodCombinations } from "../../shared/ablation.ts";
import type { AblationRow, DataPreview, JobEvent, JobRequest, JobResult, LayerHistogram, PreprocessTrial } from "../../shared/engine-api.ts";
import { preprocessCandidates, preprocessKey } from "../../shared/describe.ts";
import { RECOMMEND_SAMPLE } from "../../shared/defaults.ts";
import { classOutputName } from "../../shared/outputs.ts";
import type { Accuracy, ModelSummary, PreprocessConfig, QuantConfig, QuantReport } from "../../shared/types.ts";
import { configKey, DEFAULT_GOAL, type Goal } from "./next-steps.ts";
import { defaultConfig, defaultPreprocess } from "./presets.ts";
import { applyProgress, finishRows, initialRows, overall, planStages, type StageRow } from "./progress.ts";
import { runNames, settingsName } from "./run-names.ts";
import { targetConflicts } from "./targets.ts";
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
  /** the overall share shown so far: the bar only moves forward */
  shown: number;
}

export interface RunRecord {
  jobId: string;
  report: QuantReport;
  histograms: Record<string, LayerHistogram>;
  seconds: number;
}

export interface AblationRecord {
  jobId: string;
  label: string;
  rows: AblationRow[];
  wBits: number;
  aBits: number;
  fp32Top1: number | null;
  /** the settings the combinations were made from (methods aside) */
  config: QuantConfig;
  preprocess: PreprocessConfig;
  evalImages: number;
}

export interface ExportRecord {
  jobId: string;
  what: "model" | "html" | "json";
  path: string;
  bytes: number;
}

export interface Recommendation {
  /** the model and folder it was measured for */
  key: string;
  images: number;
  trials: PreprocessTrial[];
}

const PREVIEW_COUNT = 8;

function emptyFolder(): FolderState {
  return { dir: null, preview: null, busy: false, error: null };
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function withoutInputSize(p: PreprocessConfig): PreprocessConfig {
  const { inputSize: _, ...rest } = p;
  return rest;
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
  recommendation = $state<Recommendation | null>(null);
  /** where the input size of a dynamic-size model came from: suggested by the images, or typed by the user */
  inputSizeFrom = $state<"images" | "user" | null>(null);
  config = $state<QuantConfig>(defaultConfig());
  /** the run the current settings were taken from (by "Keep 8-bit" or a retry on Compare), if any */
  configFrom = $state<string | null>(null);
  /** how much accuracy the user accepts to lose */
  goal = $state<Goal>({ ...DEFAULT_GOAL });
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

  /** Each run's name, telling it apart from the others (bits, methods, and whatever else differs). */
  get runNames(): Record<string, string> {
    const names = runNames(
      this.runs.map((r) => ({ config: r.report.config, preprocess: r.report.preprocess, calibImages: r.report.calibration.images, evaluated: (r.report.evaluation?.images ?? 0) > 0 })),
      this.model?.layers ?? [],
    );
    return Object.fromEntries(this.runs.map((r, i) => [r.jobId, names[i]]));
  }

  nameOf(jobId: string): string {
    return this.runNames[jobId] ?? "";
  }

  /** What the next run would be called: the current settings in the same words. */
  get settingsName(): string {
    return settingsName({ config: this.config }, this.model?.layers ?? []);
  }

  get busy(): boolean {
    return this.job !== null;
  }

  #fp32KeyNow(): string {
    return JSON.stringify([this.model?.path, this.evalData.dir, this.preprocess]);
  }

  #recommendKeyNow(): string {
    return JSON.stringify([this.model?.path, this.evalData.dir, this.preprocess.inputSize ?? null]);
  }

  /** The size the images suggest for a model that takes any size (their median, rounded to the model's stride). */
  get suggestedInputSize(): [number, number] | null {
    return this.calib.preview?.suggestedInputSize ?? this.evalData.preview?.suggestedInputSize ?? null;
  }

  async setInputSize(size: [number, number] | null, from: "images" | "user"): Promise<void> {
    this.inputSizeFrom = size ? from : null;
    const rest = withoutInputSize(this.preprocess);
    await this.setPreprocess(size ? { ...rest, inputSize: size } : rest);
  }

  /** Labelled images and a class output: the preprocessing can be chosen by measured top-1. */
  get canRecommend(): boolean {
    return this.evalLabelled && this.evalData.preview?.kind !== "tensors" && !!this.model && classOutputName(this.model.outputs) !== null;
  }

  /** The preprocessing trials for this model and evaluation folder, when they have been made. */
  get currentRecommendation(): Recommendation | null {
    return this.recommendation?.key === this.#recommendKeyNow() ? this.recommendation : null;
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
        this.configFrom = null;
        // an input size belongs to the model it was chosen for
        if (this.preprocess.inputSize) this.preprocess = withoutInputSize(this.preprocess);
        this.inputSizeFrom = null;
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
    if (preprocessKey(p) === preprocessKey(this.preprocess)) return;
    this.preprocess = p;
    await this.refreshPreviews();
  }

  async refreshPreviews(): Promise<void> {
    await Promise.all([this.#preview(this.calib), this.#preview(this.evalData)]);
  }

  async #preview(f: FolderState): Promise<void> {
    if (!f.dir || !this.model) return;
    const dir = f.dir;
    const pre = $state.snapshot(this.preprocess);
    f.busy = true;
    try {
      const preview = await transport.previewData({ dir, model: this.model.path, preprocess: pre, count: PREVIEW_COUNT });
      // A newer choice may have replaced this folder or the preprocessing while the preview was being made.
      if (f.dir !== dir || preprocessKey(pre) !== preprocessKey(this.preprocess)) return;
      f.preview = preview;
      f.error = null;
      // A model that takes any size gets the size the images suggest until the user types one; the previews
      // made without it are made again at that size.
      if (this.model.dynamicInputSize && !this.preprocess.inputSize && preview.suggestedInputSize) {
        await this.setInputSize(preview.suggestedInputSize, "images");
        return;
      }
      if (f === this.evalData) void this.#autoRecommend();
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

  get evalReady(): boolean {
    return !!this.evalData.dir && !!this.evalData.preview?.images && !this.evalData.error;
  }

  get evalLabelled(): boolean {
    return this.evalReady && (this.evalData.preview?.labels.labelled ?? 0) > 0;
  }

  get canCheckFp32(): boolean {
    return !!this.model && this.evalReady && !this.busy && !(this.model.dynamicInputSize && !this.preprocess.inputSize);
  }

  /** Why the Run button is off, in words; null when a run can start. */
  get runBlocker(): string | null {
    if (!this.model) return "Open a model first (Model screen).";
    if (this.model.dynamicInputSize && !this.preprocess.inputSize) return "This model takes images of any size: choose the input size on the Model screen.";
    if (!this.calibReady) return "Choose a calibration folder with images (Data screen).";
    if (this.evalData.dir && !this.evalReady) {
      return this.evalData.busy ? "The evaluation folder is still being read." : "The evaluation folder cannot be used: choose another one, or clear it, on the Data screen.";
    }
    if (this.runMode === "ablation" && !this.evalReady) return "An ablation needs an evaluation folder (Data screen).";
    if (this.runMode === "ablation" && classOutputName(this.model.outputs) === null) {
      return "The ablation ranks combinations by top-1 or by agreement with FP32, and this model has no class output: compare single runs instead.";
    }
    const conflicts = targetConflicts(this.config);
    if (conflicts.length) return `${conflicts[0]} Change it on the Methods screen.`;
    if (this.runMode === "single" && this.config.maxDrop != null && !this.evalReady) return "Finding the smallest model that meets your target measures it on evaluation images: choose an evaluation folder (Data screen), or turn the search off (Methods screen).";
    return null;
  }

  get canRun(): boolean {
    return !this.busy && this.runBlocker === null;
  }

  /** Images the statistics pass will read. */
  get calibImages(): number {
    const n = this.calib.preview?.images ?? 0;
    return this.calibLimit ? Math.min(n, this.calibLimit) : n;
  }

  #planContext(extra: { passes?: number; sample?: number } = {}) {
    return {
      config: $state.snapshot(this.config),
      calibImages: this.calibImages,
      evalImages: this.evalData.preview?.images ?? 0,
      layers: this.model?.layers.length ?? 0,
      bits: `W${this.config.wBits}A${this.config.aBits}`,
      ...extra,
    };
  }

  async checkFp32(): Promise<void> {
    if (!this.model || !this.evalData.dir) return;
    this.fp32Key = this.#fp32KeyNow();
    const req: JobRequest = { kind: "evaluate-fp32", model: this.model.path, evalDir: this.evalData.dir, preprocess: $state.snapshot(this.preprocess) };
    await this.#start(req, "FP32 accuracy check", this.#planContext());
  }

  #autoTried = new Set<string>();

  /**
   * A labelled evaluation folder is the chance to catch a wrong preset before anything depends on it: the
   * trials start by themselves, once per model and folder (the button runs them again).
   */
  async #autoRecommend(): Promise<void> {
    const key = this.#recommendKeyNow();
    if (this.busy || !this.canRecommend || this.currentRecommendation || this.#autoTried.has(key)) return;
    this.#autoTried.add(key);
    await this.recommendPreprocess();
  }

  /** Tries every preset and resize policy on a labelled sample (the FP32 check that catches a wrong preset). */
  async recommendPreprocess(): Promise<void> {
    if (!this.model || !this.evalData.dir || !this.canRecommend) return;
    const labelled = this.evalData.preview?.labels.labelled ?? 0;
    const sample = Math.min(RECOMMEND_SAMPLE, labelled);
    const [h, w] = this.preprocess.inputSize ?? this.model.inputSize ?? [0, 0];
    const passes = preprocessCandidates(h, w, this.preprocess).length;
    const req: JobRequest = { kind: "recommend-preprocess", model: this.model.path, evalDir: this.evalData.dir, preprocess: $state.snapshot(this.preprocess), sample };
    await this.#start(req, "Finding the preprocessing", this.#planContext({ passes, sample }));
  }

  async run(): Promise<void> {
    if (!this.model || !this.calib.dir || !this.canRun) return;
    const config = $state.snapshot(this.config);
    const limit = this.calibLimit ? { calibLimit: this.calibLimit } : {};
    const common = { model: this.model.path, calibDir: this.calib.dir, preprocess: $state.snapshot(this.preprocess), config, ...limit };
    if (this.runMode === "ablation" && this.evalData.dir) {
      const passes = methodCombinations(config.methods).length;
      await this.#start({ kind: "ablation", ...common, evalDir: this.evalData.dir }, `Ablation at W${config.wBits}A${config.aBits}`, this.#planContext({ passes }));
    } else {
      await this.#start({ kind: "quantize", ...common, evalDir: this.evalReady ? this.evalData.dir : null }, this.settingsName, this.#planContext());
    }
  }

  /** Makes `config` the current settings and runs it: the one click behind "Use this one" and the next steps. */
  async runWith(config: QuantConfig, from: string | null = null): Promise<void> {
    this.config = clone(config);
    this.configFrom = from;
    this.runMode = "single";
    this.screen = "run";
    await this.run();
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

  async #start(req: JobRequest, label: string, plan: Parameters<typeof planStages>[1]): Promise<void> {
    if (this.job) return;
    this.jobError = null;
    this.job = { id: null, kind: req.kind, label, rows: initialRows(planStages(req, plan)), startedAt: Date.now(), cancelling: false, shown: 0 };
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
    const now = Date.now();
    if (e.type === "progress") {
      job.rows = applyProgress(job.rows, e.progress, now);
      job.shown = Math.max(job.shown, overall(job.rows));
      return;
    }
    this.job = null;
    const seconds = (now - job.startedAt) / 1000;
    if (e.type === "error") {
      this.jobError = e.cancelled ? null : { kind: job.kind, message: e.message };
      this.lastFinished = e.cancelled ? { kind: job.kind, label: job.label, seconds, cancelled: true } : null;
      return;
    }
    job.rows = finishRows(job.rows, now);
    this.lastFinished = { kind: job.kind, label: job.label, seconds, cancelled: false };
    this.#onResult(e.jobId, job, e.result, seconds);
  }

  #onResult(jobId: string, job: ActiveJob, r: JobResult, seconds: number): void {
    if (r.kind === "evaluate-fp32") {
      this.fp32 = r.accuracy;
    } else if (r.kind === "recommend-preprocess") {
      this.recommendation = { key: this.#recommendKeyNow(), images: r.images, trials: r.trials };
    } else if (r.kind === "quantize") {
      this.runs = [...this.runs, { jobId, report: r.report, histograms: r.histograms, seconds }];
      this.selectedRun = jobId;
      // Changes made on this run's results build on it, unless the settings were changed while it ran.
      this.configFrom = configKey($state.snapshot(this.config)) === configKey(r.report.config) ? jobId : null;
    } else {
      const fp32Top1 = this.fp32Current ? (this.fp32?.top1 ?? null) : null;
      const record: AblationRecord = {
        jobId,
        label: job.label,
        rows: r.rows,
        wBits: r.wBits,
        aBits: r.aBits,
        fp32Top1,
        config: $state.snapshot(this.config),
        preprocess: $state.snapshot(this.preprocess),
        evalImages: this.evalData.preview?.images ?? 0,
      };
      this.ablations = [...this.ablations, record];
    }
  }

  removeRun(jobId: string): void {
    this.runs = this.runs.filter((r) => r.jobId !== jobId);
    if (this.selectedRun === jobId) this.selectedRun = this.runs[this.runs.length - 1]?.jobId ?? null;
    if (this.configFrom === jobId) this.configFrom = null;
  }

  /** Back to the defaults: bits, methods and every layer override. */
  resetConfig(): void {
    this.config = defaultConfig();
    this.configFrom = null;
  }

  /**
   * Changes the next run's settings starting from a finished run's: the first change made on a run's
   * results takes that run's settings (bits, methods, overrides) as they were, not whatever the Methods
   * screen shows now.
   */
  editFrom(run: RunRecord, change: (c: QuantConfig) => void): void {
    if (this.configFrom !== run.jobId) {
      this.config = clone(run.report.config);
      this.configFrom = run.jobId;
    }
    change(this.config);
  }

  keepLayer(name: string, how: "8" | "float" | null): void {
    const keep = { ...this.config.keep };
    if (how === null) delete keep[name];
    else keep[name] = how;
    this.config.keep = keep;
  }

  keepDepthwise(): void {
    const keep = { ...this.config.keep };
    for (const l of this.model?.layers ?? []) if (l.kind === "depthwise") keep[l.name] = "8";
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
