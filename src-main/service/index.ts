// The engine behind the transport-neutral API: jobs run in worker threads, so a stuck or crashed job never takes
// the window, the web host or the CLI down with it. One thread is kept between jobs for its session cache.
// First: the workers' onnxruntime reads the process environment this sets (no telemetry).
import "../engine/offline.ts";
import { randomUUID } from "node:crypto";
import { realpath } from "node:fs/promises";
import path from "node:path";
import { Worker } from "node:worker_threads";
import type { JobEvent, JobRequest, JobResult, NibbleApi } from "../../shared/engine-api.ts";
import { releaseLibvipsSlot, reserveLibvipsSlot } from "../engine/data/libvips-gate.ts";
import { ModelError } from "../engine/onnx/errors.ts";
import { claimForTermination, createNativeCallCounter } from "../engine/native-calls.ts";
import { atomicWrite } from "../engine/onnx/model-io.ts";
import { sha256 } from "../engine/pipeline/report.ts";
import { renderHtmlReport } from "./html-report.ts";
import type { EngineOutput, EngineRequest } from "./jobs.ts";
import type { EngineWorkerData, ToWorker } from "./worker.ts";

/** How long a cancelled job may take to stop by itself before it is reported cancelled and its thread is
 * terminated (as soon as that thread is outside onnxruntime). Users are promised an answer within 1 s: the
 * rest is for the message to reach the screen. */
export const CANCEL_GRACE_MS = 750;

type FromWorker =
  | { type: "progress"; progress: import("../../shared/types.ts").Progress }
  | { type: "done"; result: EngineOutput["result"]; bytes?: Uint8Array }
  | { type: "error"; message: string; cancelled: boolean };

export interface EngineService extends NibbleApi {
  onEvent(listener: (e: JobEvent) => void): () => void;
  close(): Promise<void>;
}

interface RunningJob {
  /** terminates the thread as soon as it is outside onnxruntime; resolves once it has exited */
  stop: () => Promise<void>;
  cancel: () => void;
}

function workerScript(): URL {
  const self = new URL(import.meta.url);
  // from sources each worker thread needs the TypeScript loader registered again; a build ships worker.js
  return self.pathname.endsWith(".ts") ? new URL("./worker-source.mjs", self) : new URL("./worker.js", self);
}

export interface ServiceOptions {
  /** heap limit of each engine thread; exceeding it ends that job, never the host */
  workerMemoryMb?: number;
}

interface EngineThread {
  worker: Worker;
  exited: () => boolean;
  /** terminates the thread as soon as it is outside onnxruntime; resolves once it has exited */
  stop: () => Promise<void>;
}

function startThread(options: ServiceOptions): EngineThread {
  const nativeCalls = createNativeCallCounter();
  const libvips = reserveLibvipsSlot();
  const worker = new Worker(workerScript(), {
    workerData: { nativeCalls, libvips } satisfies EngineWorkerData,
    ...(options.workerMemoryMb ? { resourceLimits: { maxOldGenerationSizeMb: options.workerMemoryMb } } : {}),
  });
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    worker.once("exit", () => {
      exited = true;
      releaseLibvipsSlot(libvips);
      resolve();
    }),
  );
  // Never terminate inside onnxruntime: that aborts this whole process (engine/native-calls.ts).
  const stop = (): Promise<void> => {
    if (!exited) {
      if (claimForTermination(nativeCalls)) void worker.terminate();
      else setTimeout(() => void stop(), 10);
    }
    return gone;
  };
  return { worker, exited: () => exited, stop };
}

/**
 * Runs one request in `thread` (a fresh one by default); resolves with its output, rejects with a user-facing
 * message. A thread that finished its job normally goes to `keep` when given (its session cache stays warm);
 * any other is stopped.
 */
function runInWorker(
  request: EngineRequest,
  options: ServiceOptions,
  onEvent: (msg: FromWorker) => void,
  register?: (job: RunningJob) => void,
  thread: EngineThread = startThread(options),
  keep?: (thread: EngineThread) => void,
): Promise<EngineOutput> {
  const { worker, stop } = thread;
  return new Promise<EngineOutput>((resolve, reject) => {
    let settled = false;
    let cancelled = false;
    const finish = (fn: () => void, reusable = false) => {
      if (settled) return;
      settled = true;
      worker.off("message", onMessage).off("error", onError).off("exit", onExit);
      if (reusable && keep && !cancelled) keep(thread);
      else void stop();
      fn();
    };
    const onMessage = (msg: FromWorker) => {
      if (msg.type === "progress") {
        // a cancelled job's thread may run on until it can be stopped: its progress is no longer news
        if (!settled) onEvent(msg);
      } else if (msg.type === "done") finish(() => resolve({ result: msg.result, bytes: msg.bytes }), true);
      else finish(() => reject(Object.assign(new Error(msg.message), { cancelled: msg.cancelled })), true);
    };
    const onError = (err: Error & { code?: string }) => {
      const why = err.code === "ERR_WORKER_OUT_OF_MEMORY" ? "it ran out of memory; try fewer calibration images or a smaller model" : err.message;
      finish(() => reject(Object.assign(new Error(`The engine stopped unexpectedly: ${why}. Nothing was written; you can start again.`), { cancelled })));
    };
    const onExit = (code: number) =>
      finish(() =>
        reject(
          Object.assign(
            new Error(cancelled ? "Cancelled. Nothing was written." : `The engine stopped unexpectedly (exit code ${code}), perhaps out of memory. Nothing was written; try fewer calibration images.`),
            { cancelled },
          ),
        ),
      );
    worker.on("message", onMessage).on("error", onError).on("exit", onExit);
    register?.({
      stop,
      cancel: () => {
        cancelled = true;
        worker.postMessage({ type: "cancel" } satisfies ToWorker);
        setTimeout(() => finish(() => reject(Object.assign(new Error("Cancelled. Nothing was written."), { cancelled: true }))), CANCEL_GRACE_MS).unref();
      },
    });
    worker.postMessage({ type: "start", request } satisfies ToWorker);
  });
}

/** Exports never replace the model they were made from, however the path is spelled (links, "..", case aside). */
async function refuseInputModel(target: string, model: string): Promise<void> {
  const real = (p: string) => realpath(p).catch(() => path.resolve(p));
  if ((await real(target)) === (await real(model))) {
    throw new ModelError(`Could not save "${target}": that is the input model itself. Choose another file name: Nibble never overwrites its input.`, { file: target });
  }
}

export function createEngineService(options: ServiceOptions = {}): EngineService {
  const listeners = new Set<(e: JobEvent) => void>();
  const running = new Map<string, RunningJob>();
  const results = new Map<string, { result: JobResult; bytes?: Uint8Array }>();
  const emit = (e: JobEvent) => listeners.forEach((l) => l(e));
  // The session's engine thread between jobs: runs, FP32 checks and ablations go to it one at a time, so its session
  // cache (engine/pipeline/session-cache.ts) keeps what does not change between them. A job that starts while it is
  // busy gets a thread of its own; a cancelled job's thread is stopped, and its cache with it.
  let idle: EngineThread | null = null;
  let closed = false;
  const sessionThread = (): EngineThread => {
    const t = idle && !idle.exited() ? idle : startThread(options);
    idle = null;
    t.worker.ref();
    return t;
  };
  const keepThread = (t: EngineThread) => {
    if (closed) return void t.stop();
    if (idle) void idle.stop();
    // an idle thread must not keep the host (or the CLI) alive
    t.worker.unref();
    idle = t;
  };

  const direct = async (request: EngineRequest): Promise<EngineOutput> => runInWorker(request, options, () => undefined);

  const finished = (jobId: string) => {
    const r = results.get(jobId);
    if (!r || r.result.kind !== "quantize") throw new Error("That run has not finished, or it produced no model. Run the quantization first.");
    return r as { result: Extract<JobResult, { kind: "quantize" }>; bytes: Uint8Array };
  };

  return {
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async inspect(model) {
      const out = await direct({ kind: "inspect", model });
      if (out.result.kind !== "inspect") throw new Error("unexpected engine answer");
      return out.result.summary;
    },
    async previewData(req) {
      const out = await direct({ kind: "preview", ...req });
      if (out.result.kind !== "preview") throw new Error("unexpected engine answer");
      return out.result.preview;
    },
    async startJob(request: JobRequest) {
      const jobId = randomUUID();
      runInWorker(
        request,
        options,
        (msg) => {
          if (msg.type === "progress") emit({ type: "progress", jobId, progress: msg.progress });
        },
        (job) => running.set(jobId, job),
        sessionThread(),
        keepThread,
      )
        .then((out) => {
          results.set(jobId, { result: out.result as JobResult, bytes: out.bytes });
          emit({ type: "done", jobId, result: out.result as JobResult });
        })
        .catch((err: Error & { cancelled?: boolean }) => emit({ type: "error", jobId, message: err.message, cancelled: err.cancelled === true }))
        .finally(() => running.delete(jobId));
      return { jobId };
    },
    async cancelJob(jobId) {
      running.get(jobId)?.cancel();
    },
    async exportModel({ jobId, path }) {
      const { result, bytes } = finished(jobId);
      await refuseInputModel(path, result.report.model.path);
      await atomicWrite(path, bytes);
      result.report.output = { path, sha256: sha256(bytes) };
      return { path, bytes: bytes.length };
    },
    async exportReport({ jobId, path, format }) {
      const { result, bytes } = finished(jobId);
      await refuseInputModel(path, result.report.model.path);
      const report = { ...result.report, output: result.report.output ?? { path: "(model not exported yet)", sha256: sha256(bytes) } };
      const text = format === "json" ? JSON.stringify(report, null, 2) + "\n" : renderHtmlReport(report);
      const data = new TextEncoder().encode(text);
      await atomicWrite(path, data);
      return { path, bytes: data.length };
    },
    async close() {
      closed = true;
      const spare = idle;
      idle = null;
      await Promise.all([...running.values()].map((job) => job.stop()));
      await spare?.stop();
      running.clear();
    },
  };
}
