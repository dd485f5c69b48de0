// `nibble`: the command-line host of the engine. Jobs run in a worker thread through the same service
// the app uses; this thread only parses, prints progress and handles Ctrl-C.
import { access, constants, stat } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { JobEvent, JobRequest, JobResult } from "../../shared/engine-api.ts";
import type { Progress } from "../../shared/types.ts";
import { formatSummary } from "../engine/onnx/inspect.ts";
import { createEngineService, type EngineService } from "../service/index.ts";
import { accuracyCell, formatReport } from "./format.ts";
import { parseDetection, parsePreprocess, parseQuantConfig, UsageError } from "./options.ts";

export const HELP = `nibble: post-training 4-bit quantization of convolutional networks (ONNX), on your own machine.

Usage:
  nibble inspect MODEL
  nibble quantize MODEL --calib DIR --out FILE [options]
  nibble evaluate MODEL --data DIR [--labels FILE] [--preset NAME] [--resize N] [--crop N] [--input-size HxW] [--json]
  nibble --help

quantize options:
  --calib DIR          calibration images (searched recursively; JPEG, PNG, WebP, BMP, TIFF, GIF)
  --calib-limit N      use a seeded random subset of N calibration images (default: all)
  --seed N             seed of that subset (default 0)
  --out FILE           where to write the quantized ONNX model (written atomically)
  --eval DIR           images (or arrays) to measure the quantized model on; labelled (one sub-folder per
                       class, or labels.txt) for accuracy. The same folder as --calib is allowed: calibration
                       then takes a seeded subset (--calib-limit, default half, at most 512) and evaluation
                       runs only on the rest
  --labels FILE        labels of the evaluation folder from FILE ("relative/path label" lines) instead of
                       its own labels.txt; for evaluate, of --data
  --score-threshold S  detectors: score above which a box counts as a detection (default 0.7)
  --nms-iou V          detectors: overlap above which NMS drops the weaker box (default 0.45)
  --match-iou V        detectors: overlap at which a quantized box finds an FP32 one (default 0.5)
  --w-bits N           weight bits, 2 to 8 (default 4)
  --a-bits N           activation bits, 2 to 8 (default 4)
  --methods LIST       "best" (the recommended recipe for the chosen bits, see below), "all" (default:
                       exactly the paper's four methods), "none" (the paper's baseline: per-channel
                       min/max), or a comma list of:
                         aciq, bitalloc-w, bitalloc-a, biascorr   the paper's methods
                         weight-clip   per-channel weight range by MSE search (not min/max)
                         equalize      cross-layer equalization of conv pairs (ReLU6 bounds kept)
                         reconstruct   rounding chosen to reproduce each layer's float output (GPTQ-style,
                                       on the already-quantized network's inputs)
                         bias-fold     each channel's mean output error folded into its float bias
                       best at 8-bit activations: weight-clip, reconstruct, bias-fold, MSE activation ranges;
                       best at 4-bit activations or fewer: bitalloc-a, weight-clip, reconstruct, bias-fold,
                       MSE activation ranges, the reconstruction on 512 calibration images
                       best with --target ort or int4-npu: weight-clip, reconstruct, bias-fold (fitted on the
                       network as that target's file computes it; the folded biases are its INT32 biases)
  --max-drop P         automatic mixed precision: the smallest model (fewest layers' weights at 8 bits)
                       whose measured drop on the --eval images, plus one standard error, is at most
                       P points (top-1, or FP32 agreement without labels); the report holds the
                       per-layer sensitivity and the size-accuracy curve of every candidate measured
  --recon-images N     calibration images the reconstruct stage uses (default 256; 512 in the recipe
                       at 4-bit activations)
  --activations MODE   per-channel (default, the paper's setting) or per-tensor
  --keep NAME[=8|=float],...   hold these layers at 8 bits, or leave them in float
  --no-keep-first-last quantize the first conv and the classifier at the chosen bits too
                       (by default they are kept at 8 bits)
  --prior NAME         ACIQ prior: laplace (default) or gaussian
  --exact-constants    ACIQ constants solved exactly instead of the reference's 2-decimal table
  --strict-budget      bit allocation that never exceeds the average-bits budget
                       (default: the reference's fixed-target loop)
  --variance-correction  bias correction also restores each channel's weight std
  --baseline NAME      clipping when ACIQ is off: minmax (default), percentile (99.99) or mse
  --calibration NAME   the extremes min/max quantizers use: global (default; over every calibration
                       image, the true range) or reference (per-image extremes averaged over images,
                       as the paper's code did; it clips, and is kept to reproduce the paper's tables)
  --target NAME        where the exported file will run (the export's layout; default exact):
                       exact: the paper's placement, any bits, per-channel activations; a faithful
                         simulation, smallest on disk, not faster than FP32
                       ort: onnxruntime's QDQ layout, which its CPU provider runs as integer kernels
                         (QLinearConv, QGemm, ...): 8-bit per-tensor activations at the inputs of
                         quantized operators, symmetric per-channel weights in INT8 containers (a
                         4-bit grid is no smaller than INT8 then), INT32 biases, ReLU/ReLU6 absorbed
                       int4-npu: the form 4-bit NPUs take (Qualcomm HTP through onnxruntime's QNN
                         provider): symmetric INT4 weights (INT8 for layers kept at 8 bits), 8-bit
                         per-tensor activations, INT32 biases, every quantized operator a DQ-op-Q unit;
                         bit allocation across channels is off (one container per layer)
                       With ort and int4-npu, --activations and --a-bits below 8 do not apply
                       (activations are 8-bit per tensor), and bias correction is stored in the bias:
                       the expected shift of each output channel from the stored weights' error, each
                       weight's error times its input channel's calibration mean.
  --report FILE        also write a JSON report (configuration, input hashes, accuracy, per layer)
  --json               print the JSON report on stdout instead of the summary

non-image data (quantize and evaluate): a folder of NumPy arrays instead of images, for any model,
models with several inputs included. Each .npy file is one sample or a batch of the model's only input;
each .npz file (numpy.savez) holds one array per input, named after it, plus optionally "label" (one
class index per sample). Shapes: one sample without the batch axis, or a batch with it.

Models that are not classifiers (or runs without labels): every output is compared with FP32's on the
evaluation data (SQNR, cosine similarity, largest error); outputs shaped like a detector's (scores
[N, A, C] and boxes [N, A, 4], corners) also report the share of FP32's detections the quantized
model keeps.

preprocessing (quantize and evaluate):
  --preset NAME        imagenet (default), inception, caffe, raw255, raw01 or custom
  --mean a,b,c --std a,b,c --scale S --bgr    custom preprocessing (with --preset custom)
  --resize N           scale the shorter side to N, then
  --crop N             take the centre N x N; without them images are resized to the model input
  --input-size HxW     the size to feed a model whose height and width are dynamic (e.g. 640x640; a
                       multiple of the model's stride, usually 32); the exported model stays dynamic
  --fourth-channel V   4-channel models: "alpha" (default; 255 when opaque, times the scale) or a
                       constant value fed in channel 4

Progress goes to stderr. Exit status: 0 on success, 1 on a failure (the message names the file),
2 on a usage error, 130 when cancelled with Ctrl-C. Nothing is left half-written.`;

const OPTIONS = {
  calib: { type: "string" },
  "calib-limit": { type: "string" },
  seed: { type: "string" },
  out: { type: "string" },
  eval: { type: "string" },
  data: { type: "string" },
  "w-bits": { type: "string" },
  "a-bits": { type: "string" },
  methods: { type: "string" },
  "max-drop": { type: "string" },
  "recon-images": { type: "string" },
  activations: { type: "string" },
  keep: { type: "string" },
  "no-keep-first-last": { type: "boolean" },
  prior: { type: "string" },
  "exact-constants": { type: "boolean" },
  "strict-budget": { type: "boolean" },
  "variance-correction": { type: "boolean" },
  baseline: { type: "string" },
  calibration: { type: "string" },
  target: { type: "string" },
  report: { type: "string" },
  json: { type: "boolean" },
  preset: { type: "string" },
  mean: { type: "string" },
  std: { type: "string" },
  scale: { type: "string" },
  bgr: { type: "boolean" },
  resize: { type: "string" },
  crop: { type: "string" },
  "input-size": { type: "string" },
  "fourth-channel": { type: "string" },
  labels: { type: "string" },
  "score-threshold": { type: "string" },
  "nms-iou": { type: "string" },
  "match-iou": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function formatProgress(p: Progress): string {
  const eta = p.etaSeconds === null ? "" : `, ${Math.floor(p.etaSeconds / 60)}:${String(Math.round(p.etaSeconds % 60)).padStart(2, "0")} left`;
  return `${p.stage}: ${p.done}/${p.total}${eta}${p.message ? ` (${p.message})` : ""}`;
}

async function runJob(service: EngineService, request: JobRequest): Promise<{ jobId: string; result: JobResult }> {
  const tty = process.stderr.isTTY;
  let lastStage = "";
  const { jobId } = await service.startJob(request);
  return new Promise((resolve, reject) => {
    const onSigint = () => {
      process.stderr.write("\nCancelling...\n");
      void service.cancelJob(jobId);
    };
    process.on("SIGINT", onSigint);
    const stop = service.onEvent((e: JobEvent) => {
      if (e.jobId !== jobId) return;
      if (e.type === "progress") {
        const line = formatProgress(e.progress);
        if (tty) process.stderr.write(`\r\x1b[K${line}`);
        else if (e.progress.stage !== lastStage || e.progress.done === e.progress.total) process.stderr.write(`${line}\n`);
        lastStage = e.progress.stage;
        return;
      }
      stop();
      process.off("SIGINT", onSigint);
      if (tty) process.stderr.write("\r\x1b[K");
      if (e.type === "done") resolve({ jobId, result: e.result });
      else reject(Object.assign(new Error(e.message), { cancelled: e.cancelled }));
    });
  });
}

/** Checked before any work starts, so a typo costs nothing. */
async function checkOutput(out: string, model: string): Promise<void> {
  const abs = path.resolve(out);
  if (abs === path.resolve(model)) throw new UsageError(`--out is the input model itself (${abs}). Choose another file name: Nibble never overwrites its input.`);
  const dir = path.dirname(abs);
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new UsageError(`The output folder ${dir} does not exist. Create it or choose another --out.`);
  await access(dir, constants.W_OK).catch(() => {
    throw new UsageError(`The output folder ${dir} is not writable. Choose another --out.`);
  });
  const existing = await stat(abs).catch(() => null);
  if (existing?.isDirectory()) throw new UsageError(`--out ${abs} is a folder. Give a file name, e.g. ${path.join(abs, "model-w4a4.onnx")}.`);
}

function required(flag: string, value: string | undefined): string {
  if (!value) throw new UsageError(`${flag} is required. See nibble --help.`);
  return value;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, model, ...extra] = positionals;
  if (values.help || !command || command === "help") {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (extra.length) throw new UsageError(`Unexpected argument "${extra[0]}". See nibble --help.`);
  if (!["inspect", "quantize", "evaluate"].includes(command)) throw new UsageError(`Unknown command "${command}". Use inspect, quantize or evaluate.`);
  const modelPath = path.resolve(required("MODEL", model));
  const service = createEngineService();
  try {
    if (command === "inspect") {
      const summary = await service.inspect(modelPath);
      process.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
      return 0;
    }
    const preprocess = parsePreprocess(values);
    if (command === "evaluate") {
      const labels = values.labels ? { evalLabels: path.resolve(values.labels) } : {};
      const { result } = await runJob(service, { kind: "evaluate-fp32", model: modelPath, evalDir: path.resolve(required("--data", values.data)), preprocess, ...labels });
      if (result.kind !== "evaluate-fp32") throw new Error("unexpected engine answer");
      const a = result.accuracy;
      if (values.json) process.stdout.write(`${JSON.stringify(a, null, 2)}\n`);
      else if (a.top1 === null) process.stdout.write(`${modelPath}\n${a.images} samples; accuracy not measured (${a.labelled === 0 ? "no labels" : "the model has no class output"})\n`);
      else process.stdout.write(`${modelPath}\n${a.images} images, ${a.labelled} labelled\ntop-1 %: ${accuracyCell(a)}\ntop-5 %: ${a.top5 === null ? "-" : a.top5.toFixed(2)}\n`);
      return 0;
    }
    const out = path.resolve(required("--out", values.out));
    await checkOutput(out, modelPath);
    if (values.report) await checkOutput(values.report, modelPath);
    const config = parseQuantConfig(values);
    if (config.maxDrop !== null && config.maxDrop !== undefined && !values.eval) throw new UsageError("--max-drop measures each candidate on evaluation images: give them with --eval DIR.");
    if (values.labels && !values.eval) throw new UsageError("--labels labels the evaluation folder: give --eval DIR too.");
    const detection = parseDetection(values);
    const limit = values["calib-limit"] === undefined ? undefined : Number(values["calib-limit"]);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError(`--calib-limit must be a positive whole number.`);
    const { jobId, result } = await runJob(service, {
      kind: "quantize",
      model: modelPath,
      calibDir: path.resolve(required("--calib", values.calib)),
      evalDir: values.eval ? path.resolve(values.eval) : null,
      preprocess,
      config,
      calibLimit: limit,
      calibSeed: values.seed === undefined ? undefined : Number(values.seed),
      ...(values.labels ? { evalLabels: path.resolve(values.labels) } : {}),
      ...(detection ? { detection } : {}),
    });
    if (result.kind !== "quantize") throw new Error("unexpected engine answer");
    await service.exportModel({ jobId, path: out });
    if (values.report) await service.exportReport({ jobId, path: path.resolve(values.report), format: "json" });
    process.stdout.write(values.json ? `${JSON.stringify(result.report, null, 2)}\n` : `${formatReport(result.report)}\n\nWrote ${out}\n`);
    return 0;
  } finally {
    await service.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error & { cancelled?: boolean }) => {
    process.stderr.write(`nibble: ${err.message}\n`);
    process.exitCode = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : err.cancelled ? 130 : 1;
  },
);
