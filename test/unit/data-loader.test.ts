import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { DataError } from "../../src-main/engine/data/errors.ts";
import { hashImageSet } from "../../src-main/engine/data/hash.ts";
import { batches, type Batch, type BatchOptions } from "../../src-main/engine/data/loader.ts";
import { previewImages } from "../../src-main/engine/data/preview.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { startProbe, type Probe } from "../helpers/deadline.ts";
import { fixtures, put, solidPng, tempDir } from "./data-fixtures.ts";

const opts = (o: Partial<BatchOptions> = {}): BatchOptions => ({
  batchSize: 4, layout: "NCHW", channels: 3, height: 2, width: 2, preprocess: { preset: "raw255" }, ...o,
});

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

/** Ten 2x2 images in two class folders; image i is solid grey value 10*i. */
async function tenImages(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t);
  for (let i = 0; i < 10; i++) await put(dir, `${i < 5 ? "a" : "b"}/${i}.png`, await solidPng(2, 2, [10 * i, 10 * i, 10 * i]));
  return dir;
}

test("batches cover the set in order with labels, the last one short", async (t) => {
  const set = await scanImages(await tenImages(t));
  const got = await collect(batches(set, opts()));
  assert.deepEqual(got.map((b) => b.count), [4, 4, 2]);
  assert.deepEqual(got.map((b) => b.processed), [4, 8, 10]);
  assert.deepEqual(got.flatMap((b) => b.files), set.files.map((f) => f.rel));
  assert.deepEqual(got.flatMap((b) => [...b.labels]), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  assert.equal(got[2].data.length, 2 * 12);
  assert.deepEqual(got.map((b) => b.data[0]), [0, 40, 80]);
  assert.equal(got[1].data[12 * 3 + 11], 70); // last value of image 7
});

test("results do not depend on concurrency, and NHWC matches NCHW", async () => {
  const set = await scanImages(path.join(fixtures, "cifar10-train-1000"), { limit: 50, seed: 3 });
  const base = { batchSize: 16, height: 32, width: 32, preprocess: { preset: "imagenet" as const } };
  const serial = await collect(batches(set, opts({ ...base, concurrency: 1 })));
  const parallel = await collect(batches(set, opts({ ...base, concurrency: 8 })));
  assert.deepEqual(parallel.map((b) => [...b.data]), serial.map((b) => [...b.data]));
  const nhwc = await collect(batches(set, opts({ ...base, layout: "NHWC" })));
  const hw = 32 * 32;
  for (let b = 0; b < serial.length; b++) {
    for (let n = 0; n < serial[b].count; n++) {
      for (const [c, i] of [[0, 0], [1, 517], [2, 1023]]) assert.equal(nhwc[b].data[n * 3 * hw + i * 3 + c], serial[b].data[n * 3 * hw + c * hw + i]);
    }
  }
});

test("undecodable files are skipped, recorded once, and batches stay full", async (t) => {
  const dir = await tenImages(t);
  await put(dir, "a/0b-empty.png", Buffer.alloc(0));
  await put(dir, "a/1b-text.jpg", "hello");
  const set = await scanImages(dir);
  const got = await collect(batches(set, opts()));
  assert.deepEqual(got.map((b) => b.count), [4, 4, 2]);
  assert.deepEqual(got.map((b) => b.processed), [6, 10, 12]);
  assert.ok(!got.flatMap((b) => b.files).some((f) => f.includes("-")));
  assert.deepEqual(set.skipped.map((s) => s.file), ["a/0b-empty.png", "a/1b-text.jpg"]);
  assert.match(set.skipped[0].reason, /empty/);
  await collect(batches(set, opts())); // a second pass (quantized evaluation) adds nothing
  assert.equal(set.skipped.length, 2);
});

test("a set where nothing decodes is a DataError naming files and reasons", async (t) => {
  const dir = await tempDir(t);
  await put(dir, "x.png", "not a png");
  await put(dir, "y.jpg", Buffer.alloc(0));
  const set = await scanImages(dir);
  await assert.rejects(collect(batches(set, opts())), (e: Error) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /None of the 2 images/);
    assert.match(e.message, /x\.png: not an image/);
    assert.match(e.message, /y\.jpg: file is empty/);
    return true;
  });
});

test("bad settings fail before any decoding", async (t) => {
  const set = await scanImages(await tenImages(t));
  await assert.rejects(collect(batches(set, opts({ batchSize: 0 }))), DataError);
  await assert.rejects(collect(batches(set, opts({ preprocess: { preset: "raw255", crop: 5 } }))), /Crop 5 does not match/);
});

test("abort stops a run promptly, before or between batches", async () => {
  const set = await scanImages(path.join(fixtures, "cifar10-test"));
  const spec = { batchSize: 64, height: 32, width: 32 };
  const early = new AbortController();
  early.abort();
  await assert.rejects(collect(batches(set, opts({ ...spec, signal: early.signal }))), { name: "AbortError" });

  const ctl = new AbortController();
  const it = batches(set, opts({ ...spec, signal: ctl.signal }));
  const first = await it.next();
  assert.equal(first.done, false);
  ctl.abort();
  // by timer order, not the clock (test/helpers/deadline.ts): the answer comes before a timer started with the abort
  const soon = startProbe(500);
  await assert.rejects(it.next(), { name: "AbortError" });
  assert.ok(!soon.fired(), "abort is not delayed by the remaining 9,936 images");
  soon.stop();

  // mid-batch: the pending decode is not waited for
  const mid = new AbortController();
  const pending = batches(set, opts({ ...spec, batchSize: 5000, signal: mid.signal })).next();
  const partWay: { probe?: Probe } = {};
  setTimeout(() => {
    mid.abort();
    partWay.probe = startProbe(1000);
  }, 20);
  await assert.rejects(pending, { name: "AbortError" });
  assert.ok(partWay.probe && !partWay.probe.fired(), "a 5,000-image batch is abandoned part way");
  partWay.probe.stop();

  // breaking out of the loop early is clean too
  for await (const b of batches(set, opts(spec))) {
    assert.equal(b.count, 64);
    break;
  }
});

test("previews: evenly spread, preprocessed, enlarged to 96 px, with channel statistics", async (t) => {
  const dir = await tenImages(t);
  const set = await scanImages(dir);
  const previews = await previewImages(set, 3, { layout: "NHWC", channels: 3, height: 2, width: 2, preprocess: { preset: "imagenet" } });
  assert.deepEqual(previews.map((p) => p.file), ["a/0.png", "a/3.png", "b/6.png"]);
  const img = Buffer.from(previews[1].png.replace(/^data:image\/png;base64,/, ""), "base64");
  const meta = await sharp(img).metadata();
  assert.deepEqual([meta.width, meta.height, meta.channels], [96, 96, 3]);
  assert.deepEqual([...(await sharp(img).raw().toBuffer()).subarray(0, 3)], [30, 30, 30]); // normalisation inverted
  const red = previews[1].channels[0];
  assert.ok(Math.abs(red.mean - (30 / 255 - 0.485) / 0.229) < 1e-6);
  assert.equal(red.std, 0);
  assert.equal(red.min, red.max);

  // BGR models are displayed in RGB; undecodable files are passed over
  await put(dir, "a/0.png", "broken");
  await writeFile(path.join(dir, "b/9.png"), await solidPng(2, 2, [255, 0, 0]));
  const caffe = await previewImages(set, 2, { layout: "NCHW", channels: 3, height: 2, width: 2, preprocess: { preset: "caffe" } });
  assert.deepEqual(caffe.map((p) => p.file), ["a/1.png", "b/5.png"]);
  assert.deepEqual(set.skipped.map((s) => s.file), ["a/0.png"]);
  const last = await previewImages({ ...set, files: set.files.slice(9) }, 1, { layout: "NCHW", channels: 3, height: 2, width: 2, preprocess: { preset: "caffe" } });
  assert.deepEqual([...(await sharp(Buffer.from(last[0].png.split(",")[1], "base64")).raw().toBuffer()).subarray(0, 3)], [255, 0, 0]);
  assert.ok(last[0].channels[2].max > 100 && last[0].channels[0].max < 0, "channel 0 is blue");
});

test("the set hash covers relative paths and contents, not the folder's location", async (t) => {
  const a = await tenImages(t);
  const b = await tenImages(t);
  const hash = await hashImageSet(await scanImages(a));
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.equal(await hashImageSet(await scanImages(b)), hash);
  await put(b, "a/0.png", await solidPng(2, 2, [1, 0, 0]));
  assert.notEqual(await hashImageSet(await scanImages(b)), hash);
  const c = await tenImages(t);
  await put(c, "a/0 renamed.png", await solidPng(2, 2, [0, 0, 0]));
  await rm(path.join(c, "a/0.png"));
  assert.notEqual(await hashImageSet(await scanImages(c)), hash);
});
