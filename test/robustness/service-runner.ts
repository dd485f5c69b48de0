// Runs a list of engine-service calls in a fresh process and prints one JSON line per call. The bad-input
// tests start it as the unprivileged `nobody` user (tests run as root, and root reads and writes every
// folder), so "no permission" cases meet a real EACCES.
//
//   node --import tsx test/robustness/service-runner.ts '<JSON array of ServiceCall>'
import type { JobEvent, JobRequest } from "../../shared/engine-api.ts";
import { createEngineService } from "../../src-main/service/index.ts";

export type ServiceCall =
  | { call: "inspect"; model: string }
  | { call: "previewData"; dir: string; model: string }
  | { call: "quantize"; request: JobRequest; exportTo?: string };

export type ServiceOutcome = { ok: true; value: unknown } | { ok: false; message: string };

const service = createEngineService();

function job(request: JobRequest): Promise<{ jobId: string; event: JobEvent }> {
  return new Promise((resolve, reject) => {
    let id: string | null = null;
    const early: JobEvent[] = [];
    const stop = service.onEvent((e) => {
      if (e.type === "progress") return;
      if (id === null) return void early.push(e);
      if (e.jobId === id) {
        stop();
        resolve({ jobId: id, event: e });
      }
    });
    service.startJob(request).then(({ jobId }) => {
      id = jobId;
      const e = early.find((x) => x.jobId === jobId);
      if (e) {
        stop();
        resolve({ jobId, event: e });
      }
    }, reject);
  });
}

async function run(c: ServiceCall): Promise<ServiceOutcome> {
  try {
    if (c.call === "inspect") return { ok: true, value: await service.inspect(c.model) };
    if (c.call === "previewData") return { ok: true, value: await service.previewData({ dir: c.dir, model: c.model, preprocess: { preset: "imagenet" }, count: 4 }) };
    const { jobId, event } = await job(c.request);
    if (event.type === "error") return { ok: false, message: event.message };
    if (event.type !== "done") throw new Error("unexpected event");
    if (c.exportTo) return { ok: true, value: await service.exportModel({ jobId, path: c.exportTo }) };
    return { ok: true, value: event.result };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}

const calls = JSON.parse(process.argv[2] ?? "[]") as ServiceCall[];
for (const c of calls) process.stdout.write(`${JSON.stringify(await run(c))}\n`);
await service.close();
