// Faults mid-run (issue 4): a cancel at every stage, through the engine service API and through the
// loopback host's HTTP API; an export onto a full disk (service, host, CLI); and the engine's worker
// thread dying (killed, out of memory) while the loopback host serves. After each fault: a message that
// says what happened, nothing half-written or temporary left behind, and the next run works.
//
// Temporary files are looked for in the output folder and in the temp folder: the engine here runs with
// TMPDIR pointing at a folder of its own, which must stay empty.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { once } from "node:events";
import { createRequire, syncBuiltinESMExports } from "node:module";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Worker as WorkerThread, WorkerOptions } from "node:worker_threads";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { JobEvent, JobRequest } from "../../shared/engine-api.ts";
import type { Progress } from "../../shared/types.ts";
import { claimForTermination } from "../../src-main/engine/native-calls.ts";
import { loadModel } from "../../src-main/engine/onnx/model-io.ts";
import { createRootPolicy } from "../../src-main/host/roots.ts";
import { startHost, type RunningHost } from "../../src-main/host/server.ts";
import { CANCEL_GRACE_MS, createEngineService, type EngineService } from "../../src-main/service/index.ts";
import type { EngineWorkerData } from "../../src-main/service/worker.ts";
import {
  DEMO,
  DEMO_DIR,
  HostClient,
  QUICK_REQUEST,
  REPO,
  demoRequest,
  leftovers,
  runAndCancel,
  runToEnd,
  startHostProcess,
  type CancelOutcome,
  type HostProcess,
  type Transport,
} from "./fault-helpers.ts";

// The engine's worker threads, seen from outside: every Worker the service creates is recorded, so a test
// can kill one mid-run, and the next one can be started with a tiny heap. No hook in the product code.
const threads = createRequire(import.meta.url)("node:worker_threads") as { Worker: typeof WorkerThread };
const RealWorker = threads.Worker;
const engineThreads: WorkerThread[] = [];
const engineThreadData = new WeakMap<WorkerThread, unknown>();
const exitedThreads = new WeakSet<WorkerThread>();
let nextThreadHeapMb: number | null = null;
/** the next engine thread never hears a cancel, so only the service's deadline can stop it */
let nextThreadDeaf = false;
threads.Worker = class WatchedWorker extends RealWorker {
  readonly #deaf: boolean;
  constructor(file: string | URL, options?: WorkerOptions) {
    const heap = nextThreadHeapMb;
    nextThreadHeapMb = null;
    super(file, heap ? { ...options, resourceLimits: { ...options?.resourceLimits, maxOldGenerationSizeMb: heap } } : options);
    this.#deaf = nextThreadDeaf;
    nextThreadDeaf = false;
    engineThreads.push(this);
    engineThreadData.set(this, options?.workerData);
    this.once("exit", () => exitedThreads.add(this));
  }
  override postMessage(value: unknown, transfer?: Parameters<WorkerThread["postMessage"]>[1]): void {
    if (this.#deaf && (value as { type?: string }).type === "cancel") return;
    super.postMessage(value, transfer);
  }
};
syncBuiltinESMExports();

/**
 * Kills an engine thread from outside, at the first moment it is not inside onnxruntime: killing it inside
 * would abort this whole process, which no host can survive (see src-main/engine/native-calls.ts).
 */
async function killEngineThread(thread: WorkerThread): Promise<void> {
  const counter = (engineThreadData.get(thread) as EngineWorkerData).nativeCalls;
  while (!claimForTermination(counter)) await new Promise((r) => setTimeout(r, 2));
  await thread.terminate();
}

/** Resolves when `thread` has exited; fails after `ms` (a bound for a stuck thread, not a measurement). */
async function exited(thread: WorkerThread, ms: number): Promise<void> {
  if (exitedThreads.has(thread)) return;
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the cancelled job's thread is still running ${ms / 1000} s later`)), ms);
  });
  await Promise.race([once(thread, "exit"), stuck]).finally(() => clearTimeout(timer));
}

const work = await mkdtemp(path.join(os.tmpdir(), "nibble-faults-"));
/** TMPDIR of every engine in this file: must hold nothing after any fault */
const engineTmp = path.join(work, "tmp");
const out = path.join(work, "out");
const disk = path.join(work, "disk");
await mkdir(engineTmp);
await mkdir(out);
await mkdir(disk);

// A 64 KB tmpfs is a disk that fills up during any model export (the quantized demo model is ~300 KB).
function mountTinyDisk(): string | false {
  if (process.platform !== "linux") return "a tmpfs can only be mounted on Linux";
  if (process.getuid?.() !== 0) return "mounting a tiny tmpfs needs root";
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", disk], { stdio: "pipe" });
    return false;
  } catch (err) {
    return `mount -t tmpfs failed here (${String((err as { stderr?: Buffer }).stderr ?? err).trim()}); the CLI test under ulimit -f still covers a full disk`;
  }
}
const noTinyDisk = mountTinyDisk();

const savedTmp = process.env.TMPDIR;
process.env.TMPDIR = engineTmp;

after(async () => {
  threads.Worker = RealWorker;
  syncBuiltinESMExports();
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  if (!noTinyDisk) execFileSync("umount", [disk]);
  await rm(work, { recursive: true, force: true });
});

function serviceTransport(service: EngineService): Transport {
  return {
    startJob: async (req) => (await service.startJob(req)).jobId,
    cancelJob: (jobId) => service.cancelJob(jobId),
    exportModel: async (jobId, file) => (await service.exportModel({ jobId, path: file })).bytes,
    onEvent: (l) => service.onEvent(l),
  };
}

interface CancelPoint {
  name: string;
  request: JobRequest;
  at: (p: Progress) => boolean;
}

/** every combination of two methods (4 rows), each evaluated on the 500 images */
const ablation: JobRequest = {
  kind: "ablation",
  model: DEMO.model,
  calibDir: DEMO.calib,
  evalDir: DEMO.eval,
  preprocess: { preset: "imagenet" },
  config: defaultQuantConfig({ methods: ["aciq", "biascorr"] }),
  calibLimit: 64,
};
const mid = (p: Progress) => p.done > 0 && p.done < p.total;

const POINTS: Record<string, CancelPoint> = {
  statistics: { name: "statistics", request: demoRequest(), at: (p) => p.stage === "statistics" },
  quantize: { name: "quantization", request: demoRequest(), at: (p) => p.stage === "quantize" && p.done === 0 },
  export: { name: "export", request: demoRequest(), at: (p) => p.stage === "export" && p.done === 0 },
  evaluate: { name: "evaluation", request: demoRequest(), at: (p) => p.stage === "evaluate" && !p.message && mid(p) },
  layerErrors: { name: "the per-layer error pass", request: demoRequest(), at: (p) => p.stage === "layer-error" },
  ablation: { name: "an ablation", request: ablation, at: (p) => p.stage === "ablation" && mid(p) },
  fp32: { name: "the FP32 evaluation", request: { kind: "evaluate-fp32", model: DEMO.model, evalDir: DEMO.eval, preprocess: { preset: "imagenet" } }, at: (p) => p.stage === "fp32" && mid(p) },
};

/** What users are promised: a cancel is answered within 1 s. */
const CANCEL_PROMISE_MS = 1000;

/**
 * Through the host the cancel and its answer cross a second process and an HTTP round trip each way, whose
 * scheduling this thread's timers do not see: beside two CPU-bound processes on two cores (load 8) that
 * added 750 ms to the host's 750 ms deadline. The deadline itself is checked exactly through the service API.
 */
const HOST_TRANSPORT_MARGIN_MS = 1500;

/**
 * The cancel was answered in time. In this process (the service API) the answer must come no later than the
 * service's own deadline, checked by the order of timers, not by the clock (test/helpers/deadline.ts). Through
 * the host, another process, by the clock: within the promise plus the transport's margin, plus however late
 * this thread's timers ran.
 */
function assertAnsweredInTime(r: CancelOutcome, where: "service" | "host", what = "the job"): void {
  const took = `${what} took ${Math.round(r.ms)} ms to end after the cancel`;
  if (where === "service") assert.ok(r.beforeDeadline, `${took}, past the service's ${CANCEL_GRACE_MS} ms deadline`);
  else assert.ok(r.ms < CANCEL_PROMISE_MS + HOST_TRANSPORT_MARGIN_MS + r.timerLateMs, `${took} (timers here ran ${Math.round(r.timerLateMs)} ms late)`);
}

test("the cancel deadline leaves time within the promise for the answer to reach the screen", () => {
  assert.ok(CANCEL_GRACE_MS <= CANCEL_PROMISE_MS * 0.75, `deadline ${CANCEL_GRACE_MS} ms`);
});

/** Cancels at `point`, checks the job ended as cancelled in time leaving nothing, then runs and exports the next job. */
async function cancelAndContinue(t: Transport, where: "service" | "host", point: CancelPoint): Promise<void> {
  const r = await runAndCancel(t, point.request, point.at);
  assert.ok(r.trigger, `the job ended (${JSON.stringify(r.final).slice(0, 200)}) before reaching ${point.name}; stages seen: ${r.stages.join(", ")}`);
  assert.equal(r.final.type, "error", JSON.stringify(r.final).slice(0, 300));
  const e = r.final as Extract<JobEvent, { type: "error" }>;
  assert.equal(e.cancelled, true);
  assert.equal(e.message, "Cancelled. Nothing was written.");
  assertAnsweredInTime(r, where);
  await assert.rejects(t.exportModel(e.jobId, path.join(out, "cancelled.onnx")), /has not finished/);
  assert.deepEqual(await leftovers(out), [], "output folder");
  assert.deepEqual(await leftovers(engineTmp), [], "temp folder");

  const next = await runToEnd(t, QUICK_REQUEST);
  assert.equal(next.final.type, "done", JSON.stringify(next.final).slice(0, 300));
  const file = path.join(out, "next.onnx");
  assert.ok((await t.exportModel(next.jobId, file)) > 0);
  assert.deepEqual(await leftovers(out, ["next.onnx"]), [], "output folder after the next job");
  await rm(file);
  assert.deepEqual(await leftovers(engineTmp), [], "temp folder after the next job");
}

describe("cancel at every stage, through the engine service API", () => {
  const service = createEngineService();
  const t = serviceTransport(service);
  after(() => service.close());
  // Cancelling during statistics through the service is in test/unit/service.test.ts.
  for (const key of ["quantize", "export", "evaluate", "layerErrors", "ablation", "fp32"] as const) {
    const point = POINTS[key];
    test(`service: cancel during ${point.name} ends the job as cancelled by the deadline, leaves no file, and the next job completes`, () => cancelAndContinue(t, "service", point));
  }
});

describe("a job that does not stop when cancelled", () => {
  const service = createEngineService();
  const t = serviceTransport(service);
  after(() => service.close());

  // Terminating a thread inside onnxruntime aborts the process ("terminate called after throwing an instance of
  // 'Napi::Error'"); before the fix, this test took the whole test process down.
  test("service: a job deaf to the cancel is reported cancelled at the 750 ms deadline and its thread is stopped outside onnxruntime, without aborting the process", async () => {
    nextThreadDeaf = true;
    const r = await runAndCancel(t, demoRequest(), (p) => p.stage === "evaluate" && !p.message && mid(p));
    const thread = engineThreads.at(-1)!;
    assert.ok(r.trigger, `stages seen: ${r.stages.join(", ")}`);
    assert.equal(r.final.type, "error");
    assert.equal((r.final as Extract<JobEvent, { type: "error" }>).message, "Cancelled. Nothing was written.");
    // (libuv starts a timer from the loop's time, which can be a tick old: hence the 50 ms)
    assert.ok(r.ms >= CANCEL_GRACE_MS - 50, `reported after ${Math.round(r.ms)} ms, before the deadline: the job did stop by itself`);
    assertAnsweredInTime(r, "service");
    // the thread goes at its first moment outside onnxruntime
    await exited(thread, 60_000);
    await cancelAndContinue(t, "service", POINTS.quantize);
  });
});

describe("cancel at every stage, through the loopback host's HTTP API", () => {
  let host: HostProcess;
  before(async () => {
    host = await startHostProcess({ roots: [DEMO_DIR, work], env: { TMPDIR: engineTmp } });
  });
  after(() => host?.stop());
  for (const key of ["statistics", "quantize", "export", "evaluate", "ablation"] as const) {
    const point = POINTS[key];
    test(`host: cancel during ${point.name} ends the job as cancelled within the promise and the transport's margin, leaves no file, and the host completes the next job`, () => cancelAndContinue(host.client, "host", point));
  }
});

describe("a failed export keeps the previous file", () => {
  const service = createEngineService();
  const t = serviceTransport(service);
  let jobId: string;
  let host: HostProcess | undefined;
  const previous = randomBytes(16 * 1024);
  before(async () => {
    const r = await runToEnd(t, QUICK_REQUEST);
    assert.equal(r.final.type, "done", JSON.stringify(r.final).slice(0, 300));
    jobId = r.jobId;
  });
  after(async () => {
    await host?.stop();
    await service.close();
  });

  test("service: cancelling a finished job while its model is being exported leaves the complete model", async () => {
    const file = path.join(out, "exported.onnx");
    const [written] = await Promise.all([t.exportModel(jobId, file), t.cancelJob(jobId)]);
    assert.equal((await stat(file)).size, written);
    const model = await loadModel(file);
    assert.ok(model.model.graph!.node.some((n) => n.opType === "DequantizeLinear"));
    assert.deepEqual(await leftovers(out, ["exported.onnx"]), []);
    await rm(file);
  });

  test("service: an export onto a full disk fails with 'the disk is full', keeps the previous file byte-identical and leaves no temp file", { skip: noTinyDisk }, async () => {
    const file = path.join(disk, "model.onnx");
    await writeFile(file, previous);
    await assert.rejects(t.exportModel(jobId, file), (err: Error) => {
      assert.match(err.message, new RegExp(`^Could not save "${file}": the disk is full \\(or your quota is used up\\)\\. Free some space or choose another drive, then save again\\.$`));
      return true;
    });
    assert.ok((await readFile(file)).equals(previous), "the previous file changed");
    assert.deepEqual(await leftovers(disk, ["model.onnx"]), []);
    // The run is still there: saving it somewhere with room works.
    assert.ok((await t.exportModel(jobId, path.join(out, "elsewhere.onnx"))) > 64 * 1024);
    await rm(path.join(out, "elsewhere.onnx"));
    assert.deepEqual(await leftovers(engineTmp), []);
  });

  test("host: an export onto a full disk answers with 'the disk is full' and keeps the previous file byte-identical", { skip: noTinyDisk }, async () => {
    host = await startHostProcess({ roots: [DEMO_DIR, work], env: { TMPDIR: engineTmp } });
    const r = await runToEnd(host.client, QUICK_REQUEST);
    assert.equal(r.final.type, "done");
    const file = path.join(disk, "host-model.onnx");
    await writeFile(file, previous);
    const reply = await host.client.call("exportModel", { jobId: r.jobId, path: file });
    assert.equal(reply.status, 500);
    assert.match(reply.body.error ?? "", /the disk is full \(or your quota is used up\)\. Free some space or choose another drive/);
    assert.ok((await readFile(file)).equals(previous), "the previous file changed");
    assert.deepEqual(await leftovers(disk, ["host-model.onnx", "model.onnx"]), []);
    // the host is still serving
    assert.equal((await host.client.request("GET", "/api/info")).status, 200);
  });

  function cli(args: string[], shellPrefix = ""): { status: number | null; stderr: string; stdout: string } {
    const node = [process.execPath, "bin/nibble.js", ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
    const r = spawnSync("sh", ["-c", `${shellPrefix}exec ${node}`], { cwd: REPO, encoding: "utf8", timeout: 180_000, env: { ...process.env, TMPDIR: engineTmp } });
    if (r.error) throw r.error;
    return r;
  }
  const cliArgs = (outFile: string) => ["quantize", DEMO.model, "--calib", DEMO.calib, "--calib-limit", "32", "--out", outFile];

  test("CLI: nibble quantize --out onto a full disk exits 1 with 'the disk is full' and keeps the previous file", { skip: noTinyDisk }, async () => {
    const file = path.join(disk, "cli.onnx");
    await writeFile(file, previous);
    const r = cli(cliArgs(file));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`nibble: Could not save "${file}": the disk is full \\(or your quota is used up\\)\\. Free some space or choose another drive, then save again\\.`));
    assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, "no stack trace");
    assert.ok((await readFile(file)).equals(previous), "the previous file changed");
    assert.deepEqual(await leftovers(disk, ["cli.onnx", "host-model.onnx", "model.onnx"]), []);
    assert.deepEqual(await leftovers(engineTmp), []);
  });

  test("CLI: nibble quantize under a 64 KB file-size limit (ulimit -f) exits 1 with 'the disk is full' and keeps the previous file", async () => {
    const dir = path.join(out, "limited");
    await mkdir(dir);
    const file = path.join(dir, "model.onnx");
    await writeFile(file, previous);
    // sh counts ulimit -f in 512-byte blocks; Node ignores SIGXFSZ, so a write past it fails with EFBIG
    const r = cli(cliArgs(file), "ulimit -f 128; ");
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /nibble: Could not save ".*model\.onnx": the disk is full \(or your quota is used up\)\. Free some space or choose another drive, then save again\./);
    assert.ok((await readFile(file)).equals(previous), "the previous file changed");
    assert.deepEqual(await leftovers(dir, ["model.onnx"]), []);
    await rm(dir, { recursive: true });
  });
});

describe("the engine worker dying while the loopback host serves", () => {
  const service = createEngineService();
  let host: RunningHost;
  let client: HostClient;
  before(async () => {
    const assets = path.join(work, "assets");
    await mkdir(assets);
    await writeFile(path.join(assets, "index.html"), "<!doctype html><title>Nibble</title>");
    const policy = await createRootPolicy([DEMO_DIR, work]);
    host = await startHost({ service, policy, home: policy.roots[0], assetsDir: assets, port: 0 });
    client = new HostClient(host.port, host.token);
    await client.connectEvents();
  });
  after(async () => {
    client.close();
    await host.close();
    await service.close();
  });

  async function hostStillWorks(): Promise<void> {
    assert.equal((await client.request("GET", "/api/info")).status, 200, "the host stopped answering");
    const next = await runToEnd(client, QUICK_REQUEST);
    assert.equal(next.final.type, "done", JSON.stringify(next.final).slice(0, 300));
    const file = path.join(out, "after-crash.onnx");
    assert.ok((await client.exportModel(next.jobId, file)) > 0);
    assert.deepEqual(await leftovers(out, ["after-crash.onnx"]), []);
    await rm(file);
    assert.deepEqual(await leftovers(engineTmp), []);
  }

  test("host: an engine thread killed mid-statistics fails the job with 'The engine stopped unexpectedly', the host stays up and the next run works", async () => {
    const before = engineThreads.length;
    // the "cancel" of this run kills the job's thread instead
    const killer: Transport = {
      startJob: (req) => client.startJob(req),
      onEvent: (l) => client.onEvent(l),
      exportModel: (jobId, file) => client.exportModel(jobId, file),
      cancelJob: () => killEngineThread(engineThreads.at(-1)!),
    };
    const r = await runAndCancel(killer, demoRequest(), (p) => p.stage === "statistics");
    assert.equal(engineThreads.length, before + 1, "one engine thread per job");
    assert.ok(r.trigger);
    assert.equal(r.final.type, "error");
    const e = r.final as Extract<JobEvent, { type: "error" }>;
    assert.equal(e.cancelled, false);
    assert.equal(e.message, "The engine stopped unexpectedly (exit code 1), perhaps out of memory. Nothing was written; try fewer calibration images.");
    assertAnsweredInTime(r, "host", "the host's report of the dead thread");
    await hostStillWorks();
  });

  test("host: an engine thread that runs out of memory fails the job with 'it ran out of memory', the host stays up and the next run works", async () => {
    // the service keeps the last job's thread for its session cache; end it so this job gets a fresh, tiny one
    const kept = engineThreads.at(-1)!;
    await killEngineThread(kept);
    await exited(kept, 60_000);
    nextThreadHeapMb = 8;
    const r = await runToEnd(client, demoRequest());
    assert.equal(r.final.type, "error");
    const e = r.final as Extract<JobEvent, { type: "error" }>;
    assert.equal(e.cancelled, false);
    assert.equal(e.message, "The engine stopped unexpectedly: it ran out of memory; try fewer calibration images or a smaller model. Nothing was written; you can start again.");
    await hostStillWorks();
  });
});
