// Nibble's benchmark (`npm run bench`): accuracy in the paper's table layout against the authors' code,
// speed of a whole quantize run against a plain FP32 pass, peak memory against calibration-set size, and the
// ImageNet classifiers and the UltraFace detector against FP32 and a textbook int8 quantizer.
//
//   npm run bench -- [--part accuracy,speed,memory,imagenet,ablation,deploy,session|all] [--models resnet20,resnet56,resnet32,resnet44]
//                    [--eval-limit N] [--calib-limit 512] [--speed-model resnet56] [--speed-images 5000]
//                    [--repeat 2] [--memory-images 500,5000] [--fixtures DIR] [--json FILE] [--stream-eval]
//                    [--imagenet-models LIST] [--imagenet-seed 0] [--imagenet-eval-limit N]
//                    [--ablation-models mobilenet,tiny-darknet,resnet20,resnet56] [--deploy-models resnet20,resnet56,mobilenet]
//                    [--imagenet DIR] [--session-models resnet20,mobilenet]
//
// Parts run in the order speed, memory, accuracy, imagenet, ablation, deploy, session (models in the order given). "all" is the
// first four; the ablation of issue 9's methods (scripts/bench/ablation.ts, about an hour), the deploy table
// of the export targets (scripts/bench/deploy.ts) and the session timings (scripts/bench/session.ts) run when named.
// Defaults are the full protocol (docs/BENCHMARKS.md). Tables go to stdout, progress to stderr.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { scanImages } from "../src-main/engine/data/scan.ts";
import { encodeModel, loadModel } from "../src-main/engine/onnx/model-io.ts";
import { prepareModel, requireImageInput } from "../src-main/engine/onnx/prepare.ts";
import { evaluate, type EvalBatch, type Predictions } from "../src-main/engine/pipeline/evaluate.ts";
import { calibrate, evaluateQuantized, imageBatches, quantizeCalibrated } from "../src-main/engine/pipeline/quantize.ts";
import { imageFeeds, openSession, runBatch, type InputGeometry } from "../src-main/engine/pipeline/runtime.ts";
import { ALL_METHODS, type Method, type QuantConfig } from "../shared/types.ts";
import { BASE_CONFIG, PREPROCESS, REPO_ROOT, fileBytes, fixed, fixturesDir, median, mib, modelPath, quantizeRun, signed, table, type QuantizeRunResult } from "./bench/common.ts";
import { CLASSIFIERS, imagenetPart, ULTRAFACE } from "./bench/imagenet.ts";
import { PUBLISHED_FP32, REFERENCE_B_STATIC } from "./bench/reference.ts";
import { ablation, ablationModels } from "./bench/ablation.ts";
import { deploy } from "./bench/deploy.ts";
import { session, sessionModels } from "./bench/session.ts";

const { values: args } = parseArgs({
  options: {
    part: { type: "string", default: "all" },
    models: { type: "string", default: "resnet20,resnet56,resnet32,resnet44" },
    "eval-limit": { type: "string" },
    "calib-limit": { type: "string", default: "512" },
    "calib-seed": { type: "string", default: "0" },
    "speed-model": { type: "string", default: "resnet56" },
    "speed-images": { type: "string", default: "5000" },
    repeat: { type: "string", default: "2" },
    "memory-images": { type: "string", default: "500,5000" },
    fixtures: { type: "string" },
    json: { type: "string" },
    "stream-eval": { type: "boolean", default: false },
    "imagenet-models": { type: "string", default: [...CLASSIFIERS.map((c) => c.name), ULTRAFACE.name].join(",") },
    "imagenet-seed": { type: "string", default: "0" },
    "imagenet-eval-limit": { type: "string" },
    "ablation-models": { type: "string", default: "mobilenet,tiny-darknet,resnet20,resnet56" },
    "deploy-models": { type: "string", default: "resnet20,resnet56,mobilenet" },
    imagenet: { type: "string" },
    "session-models": { type: "string", default: "resnet20,mobilenet" },
    help: { type: "boolean", default: false },
  },
});

if (args.help) {
  console.log(`usage: npm run bench -- [--part accuracy,speed,memory,imagenet,ablation,deploy,session|all] [--models LIST] [--eval-limit N] [--calib-limit N]
       [--speed-model NAME] [--speed-images N] [--repeat N] [--memory-images SMALL,LARGE] [--fixtures DIR] [--json FILE] [--stream-eval]
       [--imagenet-models ${[...CLASSIFIERS.map((c) => c.name), ULTRAFACE.name].join(",")}] [--imagenet-seed S] [--imagenet-eval-limit N]
       [--ablation-models mobilenet,tiny-darknet,resnet20,resnet56] [--deploy-models resnet20,resnet56,mobilenet] [--imagenet DIR]
       [--session-models resnet20,mobilenet]`);
  process.exit(0);
}

const PARTS = ["accuracy", "speed", "memory", "imagenet", "ablation", "deploy", "session"];
const WHEN_NAMED = ["ablation", "deploy", "session"];
const parts = new Set(args.part === "all" ? PARTS.filter((p) => !WHEN_NAMED.includes(p)) : args.part.split(","));
for (const p of parts) if (!PARTS.includes(p)) throw new Error(`--part: unknown part "${p}"`);
const FIXTURES = fixturesDir(args.fixtures);
const TRAIN = path.join(FIXTURES, "cifar10-train-1000");
const TEST = path.join(FIXTURES, "cifar10-test");
const TMP = path.join(REPO_ROOT, ".tmp", "bench");
const int = (s: string, name: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number of at least 1, not "${s}"`);
  return n;
};
const evalLimit = args["eval-limit"] === undefined ? undefined : int(args["eval-limit"], "--eval-limit");
const calibLimit = int(args["calib-limit"], "--calib-limit");
const calibSeed = Number(args["calib-seed"]);

const started = performance.now();
const log = (msg: string) => console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s] ${msg}`);
const results: Record<string, unknown> = { startedAt: new Date().toISOString(), argv: process.argv.slice(2), machine: machine() };

function machine() {
  let ort = "unknown";
  try {
    ort = (JSON.parse(readFileSync(path.join(REPO_ROOT, "node_modules", "onnxruntime-node", "package.json"), "utf8")) as { version: string }).version;
  } catch {
    // left as unknown
  }
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    onnxruntimeNode: ort,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

// ---------------------------------------------------------------------------------------------------
// 1. Accuracy

interface Row {
  setting: string;
  methods: string;
}

const BLOCKS: { w: number; a: number; rows: string[] }[] = [
  { w: 8, a: 4, rows: ["none", "aciq", "bitalloc-a", "aciq+bitalloc-a"] },
  { w: 4, a: 8, rows: ["none", "biascorr", "bitalloc-w", "biascorr+bitalloc-w"] },
  { w: 4, a: 4, rows: ["none", "all"] },
  { w: 3, a: 3, rows: ["none", "all"] },
];

function methodsOf(name: string): Method[] {
  if (name === "none") return [];
  if (name === "all") return [...ALL_METHODS];
  const ms = name.split("+") as Method[];
  for (const m of ms) if (!ALL_METHODS.includes(m)) throw new Error(`unknown method ${m}`);
  return ms;
}

interface AccuracyRow extends Row {
  top1: number;
  top5: number;
  agreement: number;
  flipped: number;
  bytes: number;
  seconds: number;
}

interface ModelAccuracy {
  model: string;
  calibImages: number;
  evalImages: number;
  fp32: { top1: number; top5: number };
  rows: AccuracyRow[];
  fp32Bytes: number;
  w4a4AllBytes: number;
  calibrateSeconds: number;
  evalSeconds: number;
}

async function accuracyFor(model: string): Promise<ModelAccuracy> {
  const file = modelPath(FIXTURES, model);
  log(`${model}: calibrating on ${calibLimit} images of ${TRAIN} (seed ${calibSeed})`);
  let t = performance.now();
  const c = await calibrate({ model: file, calib: { dir: TRAIN, limit: calibLimit, seed: calibSeed }, preprocess: PREPROCESS, config: BASE_CONFIG });
  const calibrateSeconds = (performance.now() - t) / 1000;
  const evalSet = await scanImages(TEST, evalLimit === undefined ? {} : { limit: evalLimit, seed: 0 });
  // The evaluation images are decoded once per model and fed to the engine's evaluate() from memory:
  // the same call evaluateQuantized(c, bytes, evalSet, { layerErrors: false }, fp32Predictions) makes,
  // minus 12 identical decodes of the 10,000 PNGs. --stream-eval uses evaluateQuantized itself.
  let cached: EvalBatch[] | null = null;
  if (!args["stream-eval"]) {
    t = performance.now();
    cached = [];
    for await (const b of imageBatches(evalSet, c.geometry!, PREPROCESS)) cached.push({ feeds: imageFeeds(c.geometry!, b.data, b.count), count: b.count, labels: b.labels });
    log(`${model}: decoded ${evalSet.files.length} evaluation images in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const fp32Bytes = encodeModel(c.prepared.model);
  const evaluateBytes = (bytes: Uint8Array, fp32Predictions: Predictions | undefined) =>
    cached === null
      ? evaluateQuantized(c, bytes, evalSet, { preprocess: PREPROCESS, layerErrors: false }, fp32Predictions)
      : evaluate({
          fp32: fp32Bytes,
          quantized: bytes,
          fp32Predictions,
          output: c.prepared.output,
          images: evalSet.files.length,
          batches: async function* () {
            yield* cached!;
          },
        });
  let fp32Predictions: Predictions | undefined;
  let fp32: { top1: number; top5: number } | null = null;
  const rows: AccuracyRow[] = [];
  let w4a4AllBytes = 0;
  const evalStart = performance.now();
  for (const block of BLOCKS) {
    const setting = `${block.w}W${block.a}A`;
    for (const name of block.rows) {
      t = performance.now();
      // the paper's table is reproduced with the reference's averaged per-image extremes (ALGORITHMS.md §6)
      const config: QuantConfig = { ...BASE_CONFIG, calibration: "reference", wBits: block.w, aBits: block.a, methods: methodsOf(name) };
      const { bytes } = await quantizeCalibrated(c, config, { "nibble.methods": config.methods.join(",") || "none" });
      const r = await evaluateBytes(bytes, fp32Predictions);
      if (!fp32Predictions) {
        fp32Predictions = r.predictions.fp32;
        fp32 = { top1: r.fp32.top1!, top5: r.fp32.top5! };
        log(`${model}: FP32 ${fixed(fp32.top1)} / ${fixed(fp32.top5)} on ${r.fp32.labelled} images`);
      }
      if (setting === "4W4A" && name === "all") w4a4AllBytes = bytes.length;
      const row: AccuracyRow = {
        setting,
        methods: name,
        top1: r.quantized!.top1!,
        top5: r.quantized!.top5!,
        agreement: r.agreement!.agreement,
        flipped: r.agreement!.flipped,
        bytes: bytes.length,
        seconds: (performance.now() - t) / 1000,
      };
      rows.push(row);
      log(`${model}: ${setting} ${name}: ${fixed(row.top1)} / ${fixed(row.top5)} (${row.seconds.toFixed(1)} s)`);
    }
  }
  return {
    model,
    calibImages: c.calibSet.files.length,
    evalImages: fp32Predictions!.labels.length,
    fp32: fp32!,
    rows,
    fp32Bytes: fileBytes(file),
    w4a4AllBytes,
    calibrateSeconds,
    evalSeconds: (performance.now() - evalStart) / 1000,
  };
}

function refFor(model: string, key: string) {
  return REFERENCE_B_STATIC[model]?.rows[key] ?? null;
}

function printModel(m: ModelAccuracy): string {
  const refFp32 = REFERENCE_B_STATIC[m.model]?.fp32 ?? PUBLISHED_FP32[m.model] ?? null;
  const pair = (a: number | null | undefined, b: number | null | undefined) => `${fixed(a)} / ${fixed(b)}`;
  const check = (d: number | null) => (d === null ? "" : d >= -0.5 ? "ok" : "BELOW");
  const rows: string[][] = [];
  const dFp32 = refFp32 ? m.fp32.top1 - refFp32.top1 : null;
  rows.push(["FP32", "—", fixed(m.fp32.top1), fixed(m.fp32.top5), pair(refFp32?.top1, refFp32?.top5), signed(dFp32), "100.00", ""]);
  for (const r of m.rows) {
    const ref = refFor(m.model, `${r.setting} ${r.methods}`);
    const d = ref ? r.top1 - ref.top1 : null;
    rows.push([r.setting, r.methods, fixed(r.top1), fixed(r.top5), ref ? pair(ref.top1, ref.top5) : "—", signed(d), fixed(r.agreement), check(d)]);
  }
  return [
    `### ${m.model}`,
    "",
    `Calibration: ${m.calibImages} images of cifar10-train-1000 (seed ${calibSeed}); evaluation: ${m.evalImages} images of cifar10-test; exported model run in onnxruntime-node.`,
    "",
    table(["Setting", "Methods", "top-1", "top-5", "authors (b) static top-1 / top-5", "Δ top-1", "agree FP32 %", "≥ authors − 0.5"], rows, ["l", "l", "r", "r", "r", "r", "r", "l"]),
    "",
    `File size: FP32 ${m.fp32Bytes.toLocaleString("en-US")} bytes, exported W4A4 all methods ${m.w4a4AllBytes.toLocaleString("en-US")} bytes, ratio ${(m.fp32Bytes / m.w4a4AllBytes).toFixed(2)}x (${((100 * m.w4a4AllBytes) / m.fp32Bytes).toFixed(1)}% of FP32). Time: calibrate ${m.calibrateSeconds.toFixed(1)} s, ${m.rows.length} configurations ${(m.evalSeconds / 60).toFixed(1)} min.`,
  ].join("\n");
}

function printSummary(ms: ModelAccuracy[]): string {
  const keys = BLOCKS.flatMap((b) => b.rows.map((r) => ({ setting: `${b.w}W${b.a}A`, methods: r })));
  const rows: string[][] = [["FP32", "—", ...ms.map((m) => `${fixed(m.fp32.top1)} (${signed(m.fp32.top1 - (PUBLISHED_FP32[m.model]?.top1 ?? NaN))})`)]];
  for (const k of keys) {
    rows.push([
      k.setting,
      k.methods,
      ...ms.map((m) => {
        const r = m.rows.find((x) => x.setting === k.setting && x.methods === k.methods)!;
        const ref = refFor(m.model, `${k.setting} ${k.methods}`);
        return ref ? `${fixed(r.top1)} (${signed(r.top1 - ref.top1)})` : fixed(r.top1);
      }),
    ]);
  }
  const sizes = ms.map((m) => [m.model, m.fp32Bytes.toLocaleString("en-US"), m.w4a4AllBytes.toLocaleString("en-US"), (m.fp32Bytes / m.w4a4AllBytes).toFixed(2), (m.w4a4AllBytes / m.fp32Bytes).toFixed(3)]);
  const times = ms.map((m) => [m.model, m.calibrateSeconds.toFixed(1), m.rows.length.toString(), (m.evalSeconds / m.rows.length).toFixed(1), ((m.calibrateSeconds + m.evalSeconds) / 60).toFixed(1)]);
  return [
    "### Top-1 by model (in brackets: difference from the authors' (b) static; FP32: from the published accuracy)",
    "",
    table(["Setting", "Methods", ...ms.map((m) => m.model)], rows, ["l", "l", ...ms.map(() => "r" as const)]),
    "",
    "### Model file size, FP32 vs exported W4A4 all methods",
    "",
    table(["Model", "FP32 bytes", "W4A4 all bytes", "FP32 / W4A4", "W4A4 / FP32"], sizes),
    "",
    "### Accuracy part, wall-clock",
    "",
    table(["Model", "calibrate s", "configurations", "s per configuration (quantize + export + evaluate)", "total min"], times),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------------
// 2. Speed

interface SpeedRep {
  sessionSeconds: number;
  fp32Seconds: number;
  /** user + system CPU seconds of the whole process (all threads) */
  fp32Cpu: number;
  quantize: QuantizeRunResult;
  quantizeCpu: number;
  ratio: number;
  cpuRatio: number;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

async function speed(): Promise<{ text: string; data: unknown }> {
  const model = args["speed-model"];
  const images = int(args["speed-images"], "--speed-images");
  const repeat = int(args.repeat, "--repeat");
  const file = modelPath(FIXTURES, model);
  const prepared = prepareModel(await loadModel(file));
  const geometry: InputGeometry = requireImageInput(prepared);
  const set = await scanImages(TEST, { limit: images, seed: 0 });
  log(`speed: decoding ${set.files.length} images of ${TEST} into memory`);
  let t = performance.now();
  const decoded: { data: Float32Array; count: number }[] = [];
  for await (const b of imageBatches(set, geometry, PREPROCESS)) decoded.push({ data: b.data, count: b.count });
  const decodeSeconds = (performance.now() - t) / 1000;
  const decodedImages = decoded.reduce((a, b) => a + b.count, 0);
  const reps: SpeedRep[] = [];
  for (let k = 0; k < repeat; k++) {
    t = performance.now();
    const session = await openSession(file);
    const sessionSeconds = (performance.now() - t) / 1000;
    const output = session.outputNames[0];
    let cpu = process.cpuUsage();
    t = performance.now();
    for (const b of decoded) {
      const out = await runBatch(session, geometry, b.data, b.count, [output]);
      out[output].dispose();
    }
    const fp32Seconds = (performance.now() - t) / 1000;
    const fp32Cpu = cpuSeconds(cpu);
    await session.release();
    log(`speed ${k + 1}/${repeat}: FP32 pass ${fp32Seconds.toFixed(2)} s; quantize run...`);
    cpu = process.cpuUsage();
    const quantize = await quantizeRun(file, TEST, images, 0, path.join(TMP, `${model}-w4a4-speed.onnx`));
    const quantizeCpu = cpuSeconds(cpu);
    reps.push({ sessionSeconds, fp32Seconds, fp32Cpu, quantize, quantizeCpu, ratio: quantize.seconds / fp32Seconds, cpuRatio: quantizeCpu / fp32Cpu });
    log(`speed ${k + 1}/${repeat}: quantize ${quantize.seconds.toFixed(2)} s, ratio ${(quantize.seconds / fp32Seconds).toFixed(2)}`);
  }
  const timingKeys = [...new Set(reps.flatMap((r) => Object.keys(r.quantize.timings)))];
  const rows = reps.map((r, i) => [
    String(i + 1),
    r.fp32Seconds.toFixed(2),
    r.quantize.seconds.toFixed(2),
    ...timingKeys.map((key) => fixed(r.quantize.timings[key])),
    r.ratio.toFixed(2),
    r.fp32Cpu.toFixed(1),
    r.quantizeCpu.toFixed(1),
    r.cpuRatio.toFixed(2),
  ]);
  const med = median(reps.map((r) => r.ratio));
  rows.push(["median", median(reps.map((r) => r.fp32Seconds)).toFixed(2), median(reps.map((r) => r.quantize.seconds)).toFixed(2), ...timingKeys.map(() => ""), med.toFixed(2), median(reps.map((r) => r.fp32Cpu)).toFixed(1), median(reps.map((r) => r.quantizeCpu)).toFixed(1), median(reps.map((r) => r.cpuRatio)).toFixed(2)]);
  const text = [
    `### Speed: ${model}, ${decodedImages} calibration images (seeded subset, seed 0, of cifar10-test), W4A4 all methods`,
    "",
    `Images decoded into memory first for the FP32 pass: ${decodeSeconds.toFixed(2)} s (not counted in the FP32 time). FP32 session creation: ${reps.map((r) => r.sessionSeconds.toFixed(2)).join(", ")} s (not counted). Quantize run = decode + statistics + quantize + export + report + file write, no evaluation; its stage timings (s) are the engine's own.`,
    "",
    "Wall-clock seconds are the measure the target is stated in; CPU seconds (user + system, all threads of the process) are printed beside them because other work on the machine inflates wall-clock times unevenly.",
    "",
    table(["run", "FP32 pass s", "quantize run s", ...timingKeys.map((k) => `${k} s`), "ratio (target ≤ 2)", "FP32 CPU s", "quantize CPU s", "CPU ratio"], rows),
  ].join("\n");
  return { text, data: { model, images: decodedImages, decodeSeconds, reps, medianRatio: med, medianCpuRatio: median(reps.map((r) => r.cpuRatio)) } };
}

// ---------------------------------------------------------------------------------------------------
// 3. Memory

type ChildRun = QuantizeRunResult & { vmHWM: number | null; maxRSS: number; startRss: number };

function runChild(model: string, limit: number): Promise<ChildRun> {
  const script = path.join(REPO_ROOT, "scripts", "bench", "quantize-once.ts");
  const childArgs = ["--import", "tsx", script, "--model", modelPath(FIXTURES, model), "--calib", TEST, "--limit", String(limit), "--seed", "0", "--out", path.join(TMP, `${model}-w4a4-mem-${limit}.onnx`)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, childArgs, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (code !== 0 || !line) return reject(new Error(`quantize-once (limit ${limit}) exited with ${code}: ${out}`));
      resolve(JSON.parse(line.slice("RESULT ".length)));
    });
  });
}

async function memory(): Promise<{ text: string; data: unknown }> {
  const model = args["speed-model"];
  const [small, large] = args["memory-images"].split(",").map((s) => int(s, "--memory-images"));
  if (!large) throw new Error("--memory-images needs two counts, e.g. 500,5000");
  const runs: ChildRun[] = [];
  for (const limit of [small, large]) {
    log(`memory: fresh process, ${model}, ${limit} calibration images`);
    const r = await runChild(model, limit);
    log(`memory: ${limit} images: VmHWM ${r.vmHWM === null ? "?" : mib(r.vmHWM)} MiB, maxRSS ${mib(r.maxRSS)} MiB, ${r.seconds.toFixed(1)} s`);
    runs.push(r);
  }
  const peak = (r: ChildRun) => r.vmHWM ?? r.maxRSS;
  const ratio = peak(runs[1]) / peak(runs[0]);
  const rows = runs.map((r) => [String(r.calibImages), mib(r.startRss), mib(peak(r)), mib(r.maxRSS), r.seconds.toFixed(1)]);
  rows.push(["ratio", "", `${ratio.toFixed(3)} (target ≤ 1.15)`, (runs[1].maxRSS / runs[0].maxRSS).toFixed(3), ""]);
  const text = [
    `### Memory: ${model}, peak RSS of a whole quantize run (W4A4 all methods, no evaluation), each in a fresh process`,
    "",
    `Child: \`node --import tsx scripts/bench/quantize-once.ts --calib cifar10-test --limit N --seed 0\`; peak = VmHWM from /proc/self/status at the end of the run (maxRSS = process.resourceUsage().maxRSS). "RSS at start" = peak after imports, before the run.`,
    "",
    table(["calibration images", "RSS at start MiB", "peak RSS (VmHWM) MiB", "maxRSS MiB", "run s"], rows),
  ].join("\n");
  return { text, data: { model, runs, ratio } };
}

// ---------------------------------------------------------------------------------------------------

await mkdir(TMP, { recursive: true });
const m = results.machine as ReturnType<typeof machine>;
const header = [
  `# Nibble benchmark, ${new Date().toISOString()}`,
  "",
  `Command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}\``,
  `Machine: ${m.nproc} cores (${m.cpu}), ${m.memGiB} GiB, ${m.platform}; Node ${m.node}; onnxruntime-node ${m.onnxruntimeNode}.`,
  "",
];
console.log(header.join("\n"));

const jsonFile = args.json ?? path.join(TMP, "results.json");
const saveJson = () => writeFile(jsonFile, JSON.stringify(results, null, 1));

// Speed and memory first: they are short, and a long accuracy run cut short still leaves them recorded.
if (parts.has("speed")) {
  console.log("## Speed\n");
  const s = await speed();
  console.log(s.text + "\n");
  results.speed = s.data;
  await saveJson();
}
if (parts.has("memory")) {
  console.log("## Memory\n");
  const s = await memory();
  console.log(s.text + "\n");
  results.memory = s.data;
  await saveJson();
}
if (parts.has("accuracy")) {
  const models = args.models.split(",").map((s) => s.trim()).filter(Boolean);
  const done: ModelAccuracy[] = [];
  results.accuracy = done;
  console.log("## Accuracy\n");
  for (const model of models) {
    const r = await accuracyFor(model);
    done.push(r);
    console.log(printModel(r) + "\n");
    await saveJson();
  }
  console.log(printSummary(done) + "\n");
}
if (parts.has("imagenet")) {
  console.log("## ImageNet classifiers and UltraFace against FP32 and a textbook int8 quantizer\n");
  const models = args["imagenet-models"].split(",").map((s) => s.trim()).filter(Boolean);
  const known = [...CLASSIFIERS.map((c) => c.name), ULTRAFACE.name];
  for (const name of models) if (!known.includes(name)) throw new Error(`--imagenet-models: unknown model "${name}" (known: ${known.join(", ")})`);
  const seed = Number(args["imagenet-seed"]);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--imagenet-seed must be a whole number, not "${args["imagenet-seed"]}"`);
  results.imagenet = await imagenetPart(
    {
      fixtures: FIXTURES,
      tmp: TMP,
      seed,
      calibImages: 300,
      evalImages: 1000,
      evalLimit: args["imagenet-eval-limit"] === undefined ? undefined : int(args["imagenet-eval-limit"], "--imagenet-eval-limit"),
      models,
      log,
    },
    async (text, partial) => {
      console.log(text + "\n");
      results.imagenet = partial;
      await saveJson();
    },
  );
}
if (parts.has("ablation")) {
  const wanted = args["ablation-models"].split(",").map((s) => s.trim());
  const models = ablationModels(FIXTURES, args.imagenet, calibLimit).filter((m) => wanted.includes(m.key));
  console.log("## Ablation of the methods beyond the paper (issue 9)\n");
  const a = await ablation(models, log);
  console.log(a.text);
  results.ablation = a.data;
  await saveJson();
}
if (parts.has("deploy")) {
  const wanted = args["deploy-models"].split(",").map((s) => s.trim());
  const models = ablationModels(FIXTURES, args.imagenet, calibLimit).filter((m) => wanted.includes(m.key));
  console.log("## Deployment: export targets in onnxruntime (issue 10)\n");
  const d = await deploy(models, log);
  console.log(d.text);
  results.deploy = d.data;
  await saveJson();
}
if (parts.has("session")) {
  const wanted = args["session-models"].split(",").map((s) => s.trim());
  const models = sessionModels(FIXTURES, args.imagenet ?? "/tmp/inet").filter((m) => wanted.includes(m.key));
  console.log("## Time across a session (issue 11): a second run and an ablation against the first run\n");
  const s = await session(models, log);
  console.log(s.text + "\n");
  results.session = s.data;
  await saveJson();
}
results.finishedAt = new Date().toISOString();
results.totalSeconds = (performance.now() - started) / 1000;
await saveJson();
log(`done in ${((performance.now() - started) / 60000).toFixed(1)} min; raw results in ${jsonFile}`);
process.exit(0);
