// Shared by faults.test.ts and privacy.test.ts: the demo run, the loopback host started exactly as
// `npm run web` starts it (optionally inside a network namespace of its own), a client for its HTTP API
// and event stream, one driver that cancels a job at a chosen progress event through either transport,
// and the check that nothing temporary was left behind.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { JobEvent, JobRequest } from "../../shared/engine-api.ts";
import { HTTP, type ApiMethod } from "../../shared/ipc.ts";
import type { Progress } from "../../shared/types.ts";
import { CANCEL_GRACE_MS } from "../../src-main/service/index.ts";
import { startProbe, type Probe } from "../helpers/deadline.ts";
import { readEventFrames } from "../helpers/http.ts";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DEMO_DIR = path.join(REPO, "resources/demo");
export const DEMO = {
  model: path.join(DEMO_DIR, "resnet20-cifar10.onnx"),
  calib: path.join(DEMO_DIR, "calib"),
  eval: path.join(DEMO_DIR, "eval"),
};

/** The demo quantize-and-evaluate run (128 calibration images, 500 evaluation images). */
export function demoRequest(overrides: Partial<Extract<JobRequest, { kind: "quantize" }>> = {}): JobRequest {
  return {
    kind: "quantize",
    model: DEMO.model,
    calibDir: DEMO.calib,
    evalDir: DEMO.eval,
    preprocess: { preset: "imagenet" },
    config: defaultQuantConfig(),
    calibLimit: 128,
    ...overrides,
  };
}

/** A short run that still produces a model (32 calibration images, no evaluation): "the next job". */
export const QUICK_REQUEST: JobRequest = demoRequest({ calibLimit: 32, evalDir: null });

/**
 * Files in `dir` that a run of Nibble could have left: everything except the files the test expects and
 * tsx's transform cache (tsx-<uid>), which exists only because these tests run the engine from sources.
 */
export async function leftovers(dir: string, expected: string[] = []): Promise<string[]> {
  const names = await readdir(dir);
  return names.filter((n) => !expected.includes(n) && !/^tsx-\d+$/.test(n)).sort();
}

/** The two ways a renderer reaches the engine: in-process service calls, or the loopback host's HTTP API. */
export interface Transport {
  startJob(req: JobRequest): Promise<string>;
  cancelJob(jobId: string): Promise<void>;
  /** resolves with the written size, rejects with the message the user would see */
  exportModel(jobId: string, file: string): Promise<number>;
  onEvent(listener: (e: JobEvent) => void): () => void;
}

export interface CancelOutcome {
  /** the progress event the cancel was sent on; null when the job ended before reaching it */
  trigger: Progress | null;
  final: JobEvent;
  /** from the cancel request to the job's final event */
  ms: number;
  /** the final event came before a CANCEL_GRACE_MS timer started just after the cancel had run out (test/helpers/deadline.ts) */
  beforeDeadline: boolean;
  /** how late that timer ran in this thread: the machine's share of `ms` */
  timerLateMs: number;
  stages: Progress["stage"][];
}

/** Runs `request` and cancels it on the first progress event `at` accepts. */
export function runAndCancel(t: Transport, request: JobRequest, at: (p: Progress) => boolean): Promise<CancelOutcome> {
  return new Promise((resolve, reject) => {
    let jobId: string | null = null;
    const early: JobEvent[] = [];
    let trigger: Progress | null = null;
    let cancelledAt = 0;
    let probe: Probe | null = null;
    const stages: Progress["stage"][] = [];
    const handle = (e: JobEvent) => {
      if (e.jobId !== jobId) return;
      if (e.type === "progress") {
        if (stages.at(-1) !== e.progress.stage) stages.push(e.progress.stage);
        if (!trigger && at(e.progress)) {
          trigger = e.progress;
          cancelledAt = performance.now();
          t.cancelJob(e.jobId).catch(reject);
          // after cancelJob: the service starts its deadline timer synchronously inside it
          probe = startProbe(CANCEL_GRACE_MS);
        }
        return;
      }
      stop();
      const ms = trigger ? performance.now() - cancelledAt : NaN;
      resolve({ trigger, final: e, ms, beforeDeadline: probe !== null && !probe.fired(), timerLateMs: probe?.lateMs() ?? 0, stages });
      probe?.stop();
    };
    const stop = t.onEvent((e) => (jobId === null ? early.push(e) : handle(e)));
    t.startJob(request).then((id) => {
      jobId = id;
      early.splice(0).forEach(handle);
    }, reject);
  });
}

/** Runs `request` to its end and returns the final event. */
export function runToEnd(t: Transport, request: JobRequest): Promise<{ jobId: string; final: JobEvent }> {
  return new Promise((resolve, reject) => {
    let jobId: string | null = null;
    const early: JobEvent[] = [];
    const handle = (e: JobEvent) => {
      if (e.jobId !== jobId || e.type === "progress") return;
      stop();
      resolve({ jobId: e.jobId, final: e });
    };
    const stop = t.onEvent((e) => (jobId === null ? early.push(e) : handle(e)));
    t.startJob(request).then((id) => {
      jobId = id;
      early.splice(0).forEach(handle);
    }, reject);
  });
}

export interface Reply<T = unknown> {
  status: number;
  body: T & { error?: string };
}

/** The loopback host's HTTP API, over raw sockets with the token header (as the served page sends it). */
export class HostClient implements Transport {
  constructor(
    readonly port: number,
    readonly token: string,
  ) {}

  request<T = unknown>(method: "GET" | "POST", route: string, body?: unknown): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        {
          host: "127.0.0.1",
          port: this.port,
          method,
          path: route,
          headers: {
            host: `127.0.0.1:${this.port}`,
            [HTTP.tokenHeader]: this.token,
            ...(data === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(data)) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            try {
              // a call that returns nothing (cancelJob) answers with an empty body
              resolve({ status: res.statusCode ?? 0, body: (text === "" ? {} : JSON.parse(text)) as T & { error?: string } });
            } catch {
              reject(new Error(`not JSON (${res.statusCode}): ${text.slice(0, 200)}`));
            }
          });
        },
      );
      req.on("error", reject);
      req.end(data);
    });
  }

  async call<T = unknown>(method: ApiMethod, arg: unknown): Promise<Reply<T>> {
    return this.request<T>("POST", HTTP.call(method), arg);
  }

  async startJob(req: JobRequest): Promise<string> {
    const r = await this.call<{ jobId: string }>("startJob", req);
    if (r.status !== 200) throw new Error(`startJob: ${r.status} ${r.body.error}`);
    return r.body.jobId;
  }

  async cancelJob(jobId: string): Promise<void> {
    const r = await this.call("cancelJob", jobId);
    if (r.status !== 200) throw new Error(`cancelJob: ${r.status} ${r.body.error}`);
  }

  async exportModel(jobId: string, file: string): Promise<number> {
    const r = await this.call<{ bytes: number }>("exportModel", { jobId, path: file });
    if (r.status !== 200) throw new Error(r.body.error ?? `status ${r.status}`);
    return r.body.bytes;
  }

  readonly #listeners = new Set<(e: JobEvent) => void>();
  #stream: http.ClientRequest | null = null;

  /** Opens the event stream once; resolves when the host has registered it, so no event is missed. */
  connectEvents(): Promise<void> {
    return new Promise((resolve, reject) => {
      let connected = false;
      const req = http.get(
        { host: "127.0.0.1", port: this.port, path: HTTP.events, headers: { host: `127.0.0.1:${this.port}`, [HTTP.tokenHeader]: this.token } },
        (res) => {
          if (res.statusCode !== 200) return reject(new Error(`events: ${res.statusCode}`));
          readEventFrames(res, (frame) => {
            if (frame.startsWith(": connected")) {
              connected = true;
              resolve();
            }
            if (frame.startsWith("data: ")) {
              const e = JSON.parse(frame.slice(6)) as JobEvent;
              this.#listeners.forEach((l) => l(e));
            }
          });
        },
      );
      req.on("error", (err) => {
        if (!connected) reject(err);
      });
      this.#stream = req;
    });
  }

  onEvent(listener: (e: JobEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#stream?.destroy();
    this.#stream = null;
  }
}

export interface HostProcess {
  /** in a network namespace of its own (`offline`), the host is reachable only from inside it: see offline-client.ts */
  client: HostClient;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/** Whether `ip` (iproute2) can bring up loopback inside a fresh network namespace. */
export function canUnshareNetwork(): string | false {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "taking the network away with unshare -n needs root";
  const probe = spawnSync("unshare", ["-n", "sh", "-c", "ip link set lo up"], { encoding: "utf8" });
  if (probe.error) return `unshare is not installed (${probe.error.message}); it comes with util-linux`;
  if (probe.status !== 0) return `unshare -n or ip link set lo up failed here (${probe.stderr.trim()}); install iproute2 and run as root with CAP_SYS_ADMIN`;
  return false;
}

/**
 * Starts `node --import tsx src-main/host/main.ts --root ...` (what `npm run web` runs) and waits for the one
 * line it prints. With `offline`, inside a new network namespace that has nothing but loopback.
 */
export async function startHostProcess(opts: { roots: string[]; env?: NodeJS.ProcessEnv; offline?: boolean; straceTo?: string }): Promise<HostProcess> {
  const node = [process.execPath, "--import", "tsx", "src-main/host/main.ts", ...opts.roots.flatMap((r) => ["--root", r])];
  // `exec` keeps the host as the child itself, so SIGTERM reaches it.
  const [cmd, ...args] = opts.offline
    ? ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", ...node]
    : opts.straceTo
      ? ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", opts.straceTo, ...node]
      : node;
  const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  // a test that fails or times out must not leave a host running
  const orphan = () => child.kill("SIGKILL");
  process.once("exit", orphan);
  child.once("exit", () => process.off("exit", orphan));
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the host did not start in 120 s: ${stderr}`)), 120_000);
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^Nibble is running at (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the host exited with ${code}: ${stderr}`));
    });
  });
  const u = new URL(url);
  const client = new HostClient(Number(u.port), u.searchParams.get("token")!);
  if (!opts.offline) await client.connectEvents().catch((err: unknown) => (child.kill("SIGKILL"), Promise.reject(err as Error)));
  return {
    client,
    child,
    stderr: () => stderr,
    stop: () =>
      new Promise<void>((resolve) => {
        client.close();
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        // under strace the host is strace's child: stop it, and strace ends with it
        const traced = opts.straceTo ? Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/)[0]) : 0;
        if (traced > 0) process.kill(traced, "SIGTERM");
        else child.kill("SIGTERM");
      }),
  };
}
