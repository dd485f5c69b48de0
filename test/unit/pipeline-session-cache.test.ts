// The session cache: a second run (in one process, or one service)  with the same inputs decodes nothing again and runs FP32 on nothing again, any
// change to what the work depends on is a miss, and the results are the same with the cache as without it.
import assert from "node:assert/strict";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { quantize, type QuantizeRequest } from "../../src-main/engine/pipeline/quantize.ts";
import { cacheCounters, resetSessionCache } from "../../src-main/engine/pipeline/session-cache.ts";
import { createEngineService, type EngineService } from "../../src-main/service/index.ts";
import { runEngineJob } from "../../src-main/service/jobs.ts";
import type { JobEvent, JobRequest } from "../../shared/engine-api.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { QuantReport } from "../../shared/types.ts";

const demo = path.resolve(import.meta.dirname, "../../resources/demo");
const model = path.join(demo, "resnet20-cifar10.onnx");
const CALIB = 64;
const EVAL = 100;

/** The report without what legitimately differs between two runs: when, and how long each stage took. */
function comparable(r: QuantReport): unknown {
  const { createdAt: _c, timings: _t, ...rest } = r as QuantReport & { createdAt?: string; timings?: unknown };
  return rest;
}

describe("session cache", () => {
  let calib: string;
  let request: QuantizeRequest;
  const stages: string[] = [];
  const run = async (over: Partial<QuantizeRequest> = {}) => {
    stages.length = 0;
    const before = { ...cacheCounters };
    const out = await quantize({ ...request, ...over, onProgress: (p) => stages.push(p.stage) });
    const delta = Object.fromEntries(Object.entries(cacheCounters).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
    return { report: out.report, bytes: out.bytes, delta, stages: new Set(stages) };
  };

  before(async () => {
    // a copy, so one test can change a file's contents
    calib = await mkdtemp(path.join(os.tmpdir(), "nibble-cache-"));
    await cp(path.join(demo, "calib"), calib, { recursive: true });
    request = {
      model,
      calib: { dir: calib, limit: CALIB },
      eval: { dir: path.join(demo, "eval"), limit: EVAL, seed: 1 },
      preprocess: { preset: "imagenet" },
      config: defaultQuantConfig({ methods: ["aciq", "biascorr"] }),
      layerErrors: false,
    };
  });
  after(() => rm(calib, { recursive: true, force: true }));
  beforeEach(() => resetSessionCache());

  it("a second run decodes only the first-sample probes and runs FP32 on nothing; the results are those without the cache", async () => {
    resetSessionCache(0);
    const uncached = await run();
    resetSessionCache();
    const first = await run();
    assert.ok(first.stages.has("statistics"));
    assert.ok(first.delta.decodedSamples >= CALIB + EVAL, `first run decoded ${first.delta.decodedSamples}`);
    assert.ok(first.delta.fp32Batches > 0);
    const second = await run();
    assert.ok(!second.stages.has("statistics"), "no calibration pass");
    assert.equal(second.delta.statisticsHits, 1);
    // each folder's probe reads its first 2 samples before anything else
    assert.ok(second.delta.decodedSamples <= 4, `second run decoded ${second.delta.decodedSamples}`);
    assert.equal(second.delta.fp32Batches, 0, "FP32 did not run");
    assert.ok(second.delta.fp32Hits >= 1);
    assert.deepEqual(second.bytes, first.bytes);
    assert.deepEqual(comparable(second.report), comparable(first.report));
    assert.deepEqual(comparable(first.report), comparable(uncached.report));
    assert.deepEqual(first.bytes, uncached.bytes);
  });

  it("another preprocessing or input size is a miss", async () => {
    await run();
    const other = await run({ preprocess: { preset: "imagenet", resize: 36 } });
    assert.ok(other.stages.has("statistics"));
    assert.ok(other.delta.decodedSamples >= CALIB + EVAL);
    assert.ok(other.delta.fp32Batches > 0);
    const again = await run({ preprocess: { preset: "imagenet", resize: 36 } });
    assert.ok(!again.stages.has("statistics"));
  });

  it("a changed file in the folder is a miss", async () => {
    const first = await run();
    const used = first.report.calibration.images;
    assert.ok(used > 0);
    const cls = (await readdir(calib, { withFileTypes: true })).find((d) => d.isDirectory())!.name;
    const files = (await readdir(path.join(calib, cls))).sort();
    // every file of the class gets the next one's bytes: whichever were picked, one of them changed
    const contents = await Promise.all(files.map((f) => readFile(path.join(calib, cls, f))));
    await Promise.all(files.map((f, i) => writeFile(path.join(calib, cls, f), contents[(i + 1) % files.length])));
    const changed = await run();
    assert.ok(changed.stages.has("statistics"), "statistics gathered again");
    assert.ok(changed.delta.decodedSamples >= CALIB);
    await Promise.all(files.map((f, i) => writeFile(path.join(calib, cls, f), contents[i])));
  });

  it("over the memory bound the samples are decoded again, with the same results", async () => {
    const first = await run();
    resetSessionCache(1024);
    const small = await run();
    const again = await run();
    assert.ok(again.delta.decodedSamples >= EVAL, "evaluation images decoded again");
    assert.ok(again.delta.fp32Batches > 0);
    assert.deepEqual(comparable(small.report), comparable(first.report));
    assert.deepEqual(comparable(again.report), comparable(first.report));
  });

  it("an ablation decodes the evaluation images and runs FP32 once for all its combinations", async () => {
    const out = await runEngineJob(
      { kind: "ablation", model, calibDir: calib, calibLimit: CALIB, evalDir: path.join(demo, "eval"), preprocess: request.preprocess, config: defaultQuantConfig({ methods: ["aciq", "biascorr"] }) },
      { signal: new AbortController().signal, onProgress: () => undefined },
    );
    assert.equal(out.result.kind, "ablation");
    if (out.result.kind !== "ablation") return;
    assert.equal(out.result.rows.length, 4);
    const evalImages = 500;
    assert.ok(cacheCounters.decodedSamples < CALIB + evalImages + 10, `decoded ${cacheCounters.decodedSamples} for 4 combinations`);
    assert.ok(cacheCounters.feedHits >= 3);
  });
});

describe("the service's session thread", () => {
  const job = {
    kind: "quantize" as const,
    model,
    calibDir: path.join(demo, "calib"),
    calibLimit: CALIB,
    evalDir: path.join(demo, "eval"),
    preprocess: { preset: "imagenet" as const },
    config: defaultQuantConfig({ methods: ["aciq"] }),
  };
  const runJob = async (service: EngineService, request: JobRequest = job, cancelAt?: string) => {
    const { jobId } = await service.startJob(request);
    const stages = new Set<string>();
    const end = await new Promise<JobEvent>((resolve) => {
      const stop = service.onEvent((e) => {
        if (e.jobId !== jobId) return;
        if (e.type === "progress") {
          stages.add(e.progress.stage);
          if (e.progress.stage === cancelAt) void service.cancelJob(jobId);
          return;
        }
        stop();
        resolve(e);
      });
    });
    return { end, stages };
  };

  it("a second job reuses the first one's statistics and FP32 outputs; a cancelled job's thread is not reused", async () => {
    const service = createEngineService();
    try {
      const first = await runJob(service);
      assert.equal(first.end.type, "done");
      assert.ok(first.stages.has("statistics"));
      const second = await runJob(service);
      assert.equal(second.end.type, "done");
      assert.ok(!second.stages.has("statistics"), `stages of the second job: ${[...second.stages]}`);
      const top1 = (e: JobEvent) => (e.type === "done" && e.result.kind === "quantize" ? e.result.report.quantized?.top1 : undefined);
      assert.equal(top1(second.end), top1(first.end));
      const cancelled = await runJob(service, { ...job, calibLimit: CALIB + 1 }, "statistics");
      assert.equal(cancelled.end.type, "error");
      const after = await runJob(service);
      assert.equal(after.end.type, "done");
      assert.ok(after.stages.has("statistics"), "a fresh thread, a cold cache");
    } finally {
      await service.close();
    }
  });
});
