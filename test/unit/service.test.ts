// The engine service: jobs run in worker threads; a job that dies or is cancelled never takes the host with it.
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { JobEvent, JobRequest } from "../../shared/engine-api.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { CANCEL_GRACE_MS, createEngineService, type EngineService } from "../../src-main/service/index.ts";
import { startProbe, type Probe } from "../helpers/deadline.ts";

const root = path.resolve(import.meta.dirname, "../..");
const demo = path.join(root, "resources/demo");
const request: JobRequest = {
  kind: "quantize",
  model: path.join(demo, "resnet20-cifar10.onnx"),
  calibDir: path.join(demo, "calib"),
  evalDir: path.join(demo, "eval"),
  preprocess: { preset: "imagenet" },
  config: defaultQuantConfig(),
};

function finished(service: EngineService, jobId: string, onProgress?: (e: JobEvent) => void): Promise<JobEvent> {
  return new Promise((resolve) => {
    const stop = service.onEvent((e) => {
      if (e.jobId !== jobId) return;
      if (e.type === "progress") return onProgress?.(e);
      stop();
      resolve(e);
    });
  });
}

describe("engine service", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(os.tmpdir(), "nibble-service-"))));
  after(() => rm(dir, { recursive: true, force: true }));

  it("a job whose thread runs out of memory fails with a message, and the next job runs", async () => {
    const starved = createEngineService({ workerMemoryMb: 8 });
    const { jobId } = await starved.startJob(request);
    const e = await finished(starved, jobId);
    assert.equal(e.type, "error");
    assert.match((e as Extract<JobEvent, { type: "error" }>).message, /stopped unexpectedly/);
    await starved.close();

    const service = createEngineService();
    const next = await service.startJob(request);
    const done = await finished(service, next.jobId);
    assert.equal(done.type, "done", JSON.stringify(done).slice(0, 300));
    await service.close();
  });

  it("cancelling during statistics stops by the service's deadline, writes nothing, and the service takes the next job", async () => {
    const service = createEngineService();
    const { jobId } = await service.startJob(request);
    let cancelledAt = 0;
    let deadline = null as Probe | null;
    const e = await finished(service, jobId, (p) => {
      if (!cancelledAt && p.type === "progress" && p.progress.stage === "statistics" && p.progress.done > 0) {
        cancelledAt = performance.now();
        void service.cancelJob(jobId);
        deadline = startProbe(CANCEL_GRACE_MS);
      }
    });
    const took = performance.now() - cancelledAt;
    assert.equal(e.type, "error");
    assert.ok((e as Extract<JobEvent, { type: "error" }>).cancelled);
    assert.ok(deadline && !deadline.fired(), `took ${Math.round(took)} ms, past the ${CANCEL_GRACE_MS} ms deadline`);
    deadline.stop();
    await assert.rejects(service.exportModel({ jobId, path: path.join(dir, "x.onnx") }), /not finished/);
    assert.deepEqual(await readdir(dir), []);
    const inspect = await service.inspect(request.model);
    assert.equal(inspect.layers.length, 20);
    await service.close();
  });
});
