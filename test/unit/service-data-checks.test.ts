// The engine jobs behind the Data screen's checks, run in-process on real models and images: how labels were
// read, the preprocessing trials, and data errors that say which folder they are about.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { preprocessKey } from "../../shared/describe.ts";
import { runEngineJob, type JobContext } from "../../src-main/service/jobs.ts";

const root = path.resolve(import.meta.dirname, "../..");
const fixtures = path.resolve(root, "../shared/fixtures");
const demo = path.join(root, "resources/demo");
const resnet = path.join(demo, "resnet20-cifar10.onnx");
const ctx = (): JobContext & { stages: string[] } => {
  const stages: string[] = [];
  return { signal: new AbortController().signal, onProgress: (p) => stages.push(`${p.stage} ${p.done}/${p.total}${p.etaSeconds === null ? "" : " eta"}`), stages };
};

describe("data checks", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(os.tmpdir(), "nibble-datachecks-"))));
  after(() => rm(dir, { recursive: true, force: true }));

  it("errors about an empty folder say whether it was the calibration or the evaluation folder", async () => {
    const empty = path.join(dir, "empty");
    await mkdir(empty);
    await assert.rejects(runEngineJob({ kind: "evaluate-fp32", model: resnet, evalDir: empty, preprocess: { preset: "imagenet" } }, ctx()), /^DataError: The evaluation folder .* is empty: no images found in it/);
    const quantize = { kind: "quantize" as const, model: resnet, preprocess: { preset: "imagenet" as const }, config: defaultQuantConfig() };
    await assert.rejects(runEngineJob({ ...quantize, calibDir: empty, evalDir: path.join(demo, "eval") }, ctx()), /^DataError: The calibration folder .* is empty: no images found in it/);
    await assert.rejects(runEngineJob({ ...quantize, calibDir: path.join(demo, "calib"), evalDir: empty, calibLimit: 16 }, ctx()), /^DataError: The evaluation folder .* is empty: no images found in it/);
  });

  it("a labels.txt of numeric indices is reported as read: its own lines, the indices in use", async () => {
    const imagenet = path.join(fixtures, "imagenet-val-1300");
    const lines = (await readFile(path.join(imagenet, "labels.txt"), "utf8")).split("\n").filter(Boolean).slice(0, 12);
    const eval12 = path.join(dir, "imagenet12");
    await mkdir(eval12);
    for (const l of lines) await symlink(path.join(imagenet, l.split(" ")[0]), path.join(eval12, l.split(" ")[0]));
    await writeFile(path.join(eval12, "labels.txt"), `# twelve images\n${lines.join("\n")}\n`);
    const model = path.join(fixtures, "models/mobilenet_v1_0.75_224-imagenet.onnx");
    const out = await runEngineJob({ kind: "preview", dir: eval12, model, preprocess: { preset: "inception" }, count: 2 }, ctx());
    assert.equal(out.result.kind, "preview");
    const labels = (out.result as { preview: { labels: import("../../shared/engine-api.ts").LabelInfo } }).preview.labels;
    const indices = lines.map((l) => Number(l.split(" ")[1]));
    assert.equal(labels.source, "labels-file");
    assert.equal(labels.names, null);
    assert.equal(labels.labelled, 12);
    assert.equal(labels.distinct, new Set(indices).size);
    assert.equal(labels.maxIndex, Math.max(...indices));
    assert.deepEqual(
      labels.examples,
      lines.slice(0, 3).map((l) => ({ text: l, read: `class ${l.split(" ")[1]}` })),
    );
    // class folders: the folder name and its index, with the name
    const folders = await runEngineJob({ kind: "preview", dir: path.join(demo, "eval"), model: resnet, preprocess: { preset: "imagenet" }, count: 1 }, ctx());
    const fl = (folders.result as { preview: { labels: import("../../shared/engine-api.ts").LabelInfo } }).preview.labels;
    assert.equal(fl.source, "class-folders");
    assert.deepEqual(fl.examples[0], { text: "airplane/", read: "class 0 (airplane)" });
  });

  it("the preprocessing trials try every preset both ways on one sample, and the checkpoint's own preset wins", async () => {
    const c = ctx();
    const out = await runEngineJob({ kind: "recommend-preprocess", model: resnet, evalDir: path.join(demo, "eval"), preprocess: { preset: "caffe" }, sample: 60 }, c);
    assert.equal(out.result.kind, "recommend-preprocess");
    const r = out.result as Extract<typeof out.result, { kind: "recommend-preprocess" }>;
    assert.equal(r.images, 60);
    assert.equal(r.trials.length, 10, "five presets, straight and resize-then-crop; the current one is among them");
    assert.equal(new Set(r.trials.map((t) => preprocessKey(t.preprocess))).size, 10);
    assert.ok(r.trials.every((t) => t.accuracy.labelled === 60));
    const imagenet = r.trials.find((t) => preprocessKey(t.preprocess) === preprocessKey({ preset: "imagenet" }))!;
    for (const t of r.trials) assert.ok(imagenet.accuracy.top1! >= t.accuracy.top1!, `${JSON.stringify(t.preprocess)} ${t.accuracy.top1} above ImageNet's ${imagenet.accuracy.top1}`);
    assert.ok(imagenet.accuracy.top1! > 80);
    // one stage, counted over all settings, with a time left once the first batch is in
    assert.ok(c.stages.every((s) => s.startsWith("preprocess ")), c.stages.slice(0, 5).join(", "));
    assert.ok(c.stages.some((s) => / \d+\/600 eta$/.test(s) && !/ 0\/600/.test(s)), c.stages.slice(0, 5).join(", "));
  });
});
