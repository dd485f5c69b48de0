// Skip reasons under concurrent decoding. libvips has one error buffer for the whole process (see
// src-main/engine/data/libvips-gate.ts), so images failing while others decode, in the same engine
// thread or in others, used to swap, merge or lose their reasons. A folder where most files are broken,
// each in a way whose message names it (a JPEG marker code of its own), decoded by three engine threads
// and this thread at once, several times: every file must get exactly the reason it gets alone.
// Before the gate, every run of this folder gave some file a wrong or empty reason, even in one thread.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import sharp from "sharp";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { JobEvent } from "../../shared/engine-api.ts";
import { batches } from "../../src-main/engine/data/loader.ts";
import { loadPixels } from "../../src-main/engine/data/preprocess.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { createEngineService, type EngineService } from "../../src-main/service/index.ts";
import { cifarPngs, smallCnn } from "./corpus.ts";

const GROUPS = 40;
const ROUNDS = 3;
const ENGINE_THREADS = 3;
const spec = { layout: "NCHW", channels: 3, height: 32, width: 32 } as const;

let dir: string;
let model: string;
let service: EngineService;
/** each broken file's reason when it is decoded with nothing else in flight */
const alone = new Map<string, string>();

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "nibble-decode-race-"));
  model = path.join(dir, "model.onnx");
  await writeFile(model, smallCnn().bytes());
  const images = path.join(dir, "images");
  await mkdir(images);
  const sources = await cifarPngs(GROUPS);
  const expected = new Map<string, RegExp>();
  for (const [i, src] of sources.entries()) {
    const picture = sharp(src).resize(96, 96);
    const jpeg = await picture.clone().jpeg({ quality: 90 }).toBuffer();
    const png = await picture.clone().png().toBuffer();
    // A marker libjpeg does not know, right after SOI: "Unsupported marker type 0xNN", NN this file's own.
    const code = 0x02 + ((i * 37) % 0xb0);
    const marked = Buffer.from(jpeg);
    marked[2] = 0xff;
    marked[3] = code;
    const files: [string, Buffer, RegExp | null][] = [
      [`${i}-good.png`, png, null],
      [`${i}-marker.jpg`, marked, new RegExp(`Unsupported marker type 0x${code.toString(16).padStart(2, "0")}\\)$`)],
      [`${i}-good.jpg`, jpeg, null],
      [`${i}-cut.jpg`, jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), /premature end of JPEG/],
      [`${i}-cut.png`, png.subarray(0, Math.floor(png.length * 0.6)), /libpng read error/],
    ];
    for (const [name, bytes, reason] of files) {
      await writeFile(path.join(images, name), bytes);
      if (reason) expected.set(name, reason);
    }
  }
  for (const name of (await readdir(images)).sort()) {
    const reason = await loadPixels(path.join(images, name), { preset: "imagenet" }, spec).then(() => null, (e: Error) => e.message);
    assert.equal(reason !== null, expected.has(name), `${name} decodes alone: ${reason}`);
    if (reason === null) continue;
    assert.match(reason, /^cannot be decoded, the file is damaged or incomplete \(/, name);
    assert.match(reason, expected.get(name)!, `${name}: the decoder's own detail`);
    alone.set(name, reason);
  }
  service = createEngineService();
});

after(async () => {
  await service?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function quantizeSkips(): Promise<{ file: string; reason: string }[]> {
  return new Promise((resolve, reject) => {
    let jobId: string | null = null;
    const early: JobEvent[] = [];
    const settle = (e: JobEvent) => {
      if (e.type === "progress") return;
      stop();
      if (e.type === "error") reject(new Error(e.message));
      else if (e.result.kind === "quantize") resolve(e.result.report.calibration.skipped);
      else reject(new Error(`unexpected ${e.result.kind} result`));
    };
    const stop = service.onEvent((e) => (e.jobId === jobId ? settle(e) : early.push(e)));
    service
      .startJob({ kind: "quantize", model, calibDir: path.join(dir, "images"), evalDir: null, preprocess: { preset: "imagenet" }, config: defaultQuantConfig() })
      .then(({ jobId: id }) => {
        jobId = id;
        early.filter((e) => e.jobId === id).forEach(settle);
      }, reject);
  });
}

async function loaderSkips(): Promise<{ file: string; reason: string }[]> {
  const set = await scanImages(path.join(dir, "images"));
  for await (const b of batches(set, { ...spec, batchSize: 8, preprocess: { preset: "imagenet" } })) assert.ok(b.count > 0);
  return set.skipped;
}

test("every broken file keeps its own reason while three engine threads and this one decode the same folder", async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const runs = await Promise.all([...Array.from({ length: ENGINE_THREADS }, quantizeSkips), loaderSkips()]);
    for (const [k, skipped] of runs.entries()) {
      const who = k < ENGINE_THREADS ? `engine thread ${k + 1}` : "this thread";
      assert.deepEqual(
        new Map(skipped.map((s) => [s.file, s.reason])),
        alone,
        `round ${round + 1}, ${who}: reasons differ from the ones each file gets alone`,
      );
    }
  }
});
