// Worker-thread entry: runs an engine job per message so the calling thread (window, host, CLI) never stalls.
import { parentPort, workerData } from "node:worker_threads";
import { joinLibvipsGate, type LibvipsSlot } from "../engine/data/libvips-gate.ts";
import { countNativeCallsIn, type NativeCallCounter } from "../engine/native-calls.ts";
import { runEngineJob, type EngineRequest } from "./jobs.ts";
import { describeError } from "./errors.ts";

export interface EngineWorkerData {
  /** lets the service terminate this thread only outside onnxruntime (see engine/native-calls.ts) */
  nativeCalls: NativeCallCounter;
  /** this thread's place in the process's libvips gate (see engine/data/libvips-gate.ts) */
  libvips: LibvipsSlot | null;
}

const data = workerData as EngineWorkerData | null;
if (data?.nativeCalls) countNativeCallsIn(data.nativeCalls);
joinLibvipsGate(data?.libvips ?? null);

export type ToWorker = { type: "start"; request: EngineRequest } | { type: "cancel" };

const port = parentPort!;
// one job at a time; the thread may be given more (the service keeps it for the session)
let controller = new AbortController();

port.on("message", (msg: ToWorker) => {
  if (msg.type === "cancel") {
    controller.abort();
    return;
  }
  const job = (controller = new AbortController());
  runEngineJob(msg.request, { signal: job.signal, onProgress: (progress) => port.postMessage({ type: "progress", progress }) })
    .then((out) => port.postMessage({ type: "done", result: out.result, bytes: out.bytes }, out.bytes ? [out.bytes.buffer as ArrayBuffer] : []))
    .catch((err: unknown) => port.postMessage({ type: "error", ...describeError(err, job.signal.aborted) }));
});
