// The worker side of the fuzzer: writes one mutated file and runs it through the code under test.
// Models: loadModel + prepareModel + requireImageInput, then inspectModel on the same file. Images:
// the loader's batches() over a set holding only that file, as calibration reads it.
import { unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { parentPort } from "node:worker_threads";
import { batches } from "../../src-main/engine/data/loader.ts";
import { DataError } from "../../src-main/engine/data/errors.ts";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { inspectModel } from "../../src-main/engine/onnx/inspect.ts";
import { encodeModel, loadModel } from "../../src-main/engine/onnx/model-io.ts";
import { prepareModel, requireImageInput } from "../../src-main/engine/onnx/prepare.ts";
import type { FromTarget, ToTarget } from "./fuzz-core.ts";

async function runModel(file: string): Promise<void> {
  const prepared = prepareModel(await loadModel(file));
  encodeModel(prepared.model);
  try {
    requireImageInput(prepared);
  } finally {
    await inspectModel(file);
  }
}

async function runImage(file: string, seed: number): Promise<void> {
  const set = { root: path.dirname(file), files: [{ path: file, rel: path.basename(file), label: null }], classes: [], skipped: [] };
  // Half the cases read the header first (resize + crop), the other half stretch straight away.
  const preprocess = seed % 2 === 0 ? { preset: "imagenet" as const } : { preset: "imagenet" as const, resize: 36, crop: 32 };
  for await (const b of batches(set, { batchSize: 4, layout: "NCHW", channels: 3, height: 32, width: 32, preprocess, concurrency: 2 })) {
    if (!b.data.every(Number.isFinite)) throw new Error("non-finite tensor value");
  }
}

parentPort!.on("message", async (m: ToTarget) => {
  const file = path.join(m.dir, m.name);
  let reply: FromTarget;
  try {
    await writeFile(file, m.bytes);
    if (m.fuzzCase.target === "model") await runModel(file);
    else await runImage(file, m.fuzzCase.seed);
    reply = { type: "result", id: m.fuzzCase.id, verdict: "ok", detail: "" };
  } catch (e) {
    const verdict = e instanceof ModelError ? "ModelError" : e instanceof DataError ? "DataError" : "other";
    const detail = e instanceof Error ? `${e.name}: ${e.message}${verdict === "other" ? `\n${e.stack}` : ""}` : String(e);
    reply = { type: "result", id: m.fuzzCase.id, verdict, detail };
  }
  await unlink(file).catch(() => undefined);
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ type: "ready" } satisfies FromTarget);
