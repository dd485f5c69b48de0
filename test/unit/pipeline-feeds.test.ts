// How data reach the models (issue 8): several inputs fed from .npz folders, batch-1 models run in batches only
// when a batch gives the same outputs, dynamic input sizes, detector-shaped outputs, and the data-folder
// conveniences (held-out evaluation on a shared folder, an outside labels file, a too-small calibration set).
import { fromBinary } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ModelProtoSchema } from "onnx-buf";
import sharp from "sharp";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { QuantConfig } from "../../shared/types.ts";
import { formatReport } from "../../src-main/cli/format.ts";
import { DataError } from "../../src-main/engine/data/errors.ts";
import { batches } from "../../src-main/engine/data/loader.ts";
import { suggestInputSize } from "../../src-main/engine/data/preview.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { tensorInfoOf } from "../../src-main/engine/onnx/graph.ts";
import { calibrate, evaluateModel, quantize } from "../../src-main/engine/pipeline/quantize.ts";
import { ModelBuilder, mulberry32, runOnnx } from "../helpers/model-builder.ts";
import { npy, npz } from "../helpers/numpy.ts";

const W8A8: QuantConfig = defaultQuantConfig({ wBits: 8, aBits: 8 });
let tmp: string;
const rnd = mulberry32(41);
const randoms = (n: number) => Array.from({ length: n }, () => 2 * rnd() - 1);

async function folder(name: string, files: Record<string, Buffer | string>): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) await writeFile(path.join(dir, f), content);
  return dir;
}

async function model(name: string, b: ModelBuilder): Promise<string> {
  const file = path.join(tmp, `${name}.onnx`);
  await writeFile(file, b.bytes());
  return file;
}

async function pngs(name: string, n: number, size: [number, number], channels: 3 | 4 = 3, extra: Record<string, string> = {}): Promise<string> {
  const files: Record<string, Buffer | string> = { ...extra };
  for (let i = 0; i < n; i++) {
    const raw = Buffer.from(Array.from({ length: size[0] * size[1] * channels }, () => Math.floor(rnd() * 256)));
    files[`${String(i).padStart(2, "0")}.png`] = await sharp(raw, { raw: { width: size[1], height: size[0], channels } }).png().toBuffer();
  }
  return folder(name, files);
}

/** Two inputs: an image-like tensor and a per-sample vector added before the classifier. */
function twoInputModel(): ModelBuilder {
  const b = new ModelBuilder({ seed: 3 }).input("image", ["N", 3, 8, 8]).conv({ out: 4 }).relu().globalAveragePool().flatten();
  const pooled = b.current;
  return b.input("offset", ["N", 4]).from(pooled).node("Add", ["offset"], [1, 4]).gemm({ out: 3 }).output();
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-feeds-"));
});
after(() => rm(tmp, { recursive: true, force: true }));

describe("a model with two inputs, fed from a folder of .npz files", () => {
  let file: string;
  let data: string;
  const samples: { image: number[]; offset: number[]; label: number }[] = [];
  before(async () => {
    file = await model("two-inputs", twoInputModel());
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i++) samples.push({ image: randoms(3 * 64), offset: randoms(4), label: i % 3 });
    // nine single-sample files (float64 offsets, as numpy saves by default) and one batch of three
    for (let i = 0; i < 9; i++) {
      const s = samples[i];
      files[`s${i}.npz`] = npz({ image: npy("<f4", [3, 8, 8], s.image), offset: npy("<f8", [4], s.offset), label: npy("<i8", [], [s.label]) });
    }
    const rest = samples.slice(9);
    files["batch.npz"] = npz({
      image: npy("<f4", [3, 3, 8, 8], rest.flatMap((s) => s.image)),
      offset: npy("<f4", [3, 4], rest.flatMap((s) => s.offset)),
      label: npy("<i8", [3], rest.map((s) => s.label)),
    });
    data = await folder("two-inputs-data", files);
  });

  test("the FP32 check feeds every sample with its own label (top-1 as onnxruntime computes it directly)", async () => {
    const r = await evaluateModel({ model: file, data: { dir: data }, preprocess: { preset: "imagenet" } });
    // files are read in name order: batch.npz (samples 9-11), then s0..s8
    const order = [...samples.slice(9), ...samples.slice(0, 9)];
    let correct = 0;
    const bytes = twoInputModel().bytes();
    for (const s of order) {
      const out = await runOnnx(bytes, { image: { data: Float32Array.from(s.image), dims: [1, 3, 8, 8] }, offset: { data: Float32Array.from(s.offset), dims: [1, 4] } });
      const logits = Object.values(out)[0];
      if (logits.indexOf(Math.max(...logits)) === s.label) correct++;
    }
    assert.equal(r.fp32.images, 12);
    assert.equal(r.fp32.labelled, 12);
    assert.equal(r.fp32.top1, (100 * correct) / 12);
  });

  test("quantizes at W8A8 and reports the output's fidelity against FP32", async () => {
    const { report } = await quantize({ model: file, calib: { dir: data }, eval: { dir: data, limit: undefined }, preprocess: { preset: "imagenet" }, config: W8A8 });
    assert.ok(report.outputs && report.outputs.length === 1, JSON.stringify(report.outputs));
    const o = report.outputs[0];
    assert.equal(o.samples, report.evaluation!.images);
    assert.ok(o.cosine! > 0.99 && o.sqnrDb! > 10 && o.maxAbsError < o.referenceMaxAbs, JSON.stringify(o));
    assert.equal(report.detection, null);
  });

  const wrong: [string, Record<string, Buffer>, RegExp[]][] = [
    ["a missing input", { "a.npz": npz({ image: npy("<f4", [3, 8, 8], randoms(192)) }) }, [/has no array named "offset" \(its arrays: "image"\)/, /"image" \[N, 3, 8, 8\], "offset" \[N, 4\]/]],
    ["a wrong shape", { "a.npz": npz({ image: npy("<f4", [3, 8, 9], randoms(216)), offset: npy("<f4", [4], randoms(4)) }) }, [/\(array "image"\) has shape \(3, 8, 9\), but input "image" takes \[N, 3, 8, 8\]/, /one sample of shape \[3, 8, 8\] or a batch of shape \[k, 3, 8, 8\]/]],
    ["a wrong dtype", { "a.npz": npz({ image: npy("<i4", [3, 8, 8], new Array(192).fill(1)), offset: npy("<f4", [4], randoms(4)) }) }, [/\(array "image"\) holds int32 values, but input "image" takes float32 \[N, 3, 8, 8\]/, /arr\.astype\(numpy\.float32\)/]],
    ["unequal sample counts", { "a.npz": npz({ image: npy("<f4", [2, 3, 8, 8], randoms(384)), offset: npy("<f4", [3, 4], randoms(12)) }) }, [/holds 2 samples for one input but 3 in array "offset"/]],
    ["a single .npy for two inputs", { "a.npy": npy("<f4", [3, 8, 8], randoms(192)) }, [/is a single array, but the model has 2 inputs \("image", "offset"\)/, /numpy\.savez\(file, image=\.\.\., offset=\.\.\.\)/]],
  ];
  for (const [what, files, patterns] of wrong) {
    test(`refuses ${what}, naming the file and the expected shape`, async () => {
      const dir = await folder(`wrong-${what.replace(/\W+/g, "-")}`, files);
      await assert.rejects(quantize({ model: file, calib: { dir }, eval: null, preprocess: { preset: "imagenet" }, config: W8A8 }), (e: Error) => {
        assert.ok(e instanceof DataError, String(e));
        assert.ok(e.message.includes(path.join(dir, Object.keys(files)[0])), e.message);
        for (const p of patterns) assert.match(e.message, p);
        return true;
      });
    });
  }

  test("an image folder cannot feed it, and the message says what can", async () => {
    const images = await pngs("two-inputs-images", 2, [8, 8]);
    await assert.rejects(quantize({ model: file, calib: { dir: images }, eval: null, preprocess: { preset: "imagenet" }, config: W8A8 }), (e: Error) => {
      assert.ok(e instanceof ModelError);
      assert.match(e.message, /has 2 inputs \("image", "offset"\); a folder of images fills only one/);
      assert.match(e.message, /folder of \.npz files, each holding one array per input named after it/);
      return true;
    });
  });
});

/** A detector head: scores [N, 64, 2] (softmax) and boxes [N, 64, 4] = a fixed grid of anchor boxes plus a small offset. */
function detectorModel(): ModelBuilder {
  const b = new ModelBuilder({ seed: 8 }).input("input", ["N", 3, 16, 16]).conv({ out: 8, stride: 2 }).relu().conv({ out: 6, kernel: 1, pad: 0 });
  b.transpose([0, 2, 3, 1]).node("Reshape", [b.constant("shape", [3], [0, 64, 6], true)], [1, 64, 6]);
  const head = b.current;
  const slice = (from: number, to: number) => [b.constant("starts", [1], [from], true), b.constant("ends", [1], [to], true), b.constant("axes", [1], [2], true)];
  b.from(head).node("Slice", slice(0, 2), [1, 64, 2]).node("Mul", [b.constant("sharpen", [], [4])], [1, 64, 2]).node("Softmax", [], [1, 64, 2], { axis: 2 }, "scores");
  b.output();
  const anchors: number[] = [];
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) anchors.push(x / 8 - 0.1, y / 8 - 0.1, x / 8 + 0.25, y / 8 + 0.25);
  b.from(head).node("Slice", slice(2, 6), [1, 64, 4]).node("Tanh", [], [1, 64, 4]).node("Mul", [b.constant("small", [], [0.05])], [1, 64, 4]);
  b.node("Add", [b.constant("anchors", [1, 64, 4], anchors)], [1, 64, 4], {}, "boxes").output();
  return b;
}

describe("a model whose outputs look like a detector's", () => {
  test("W8A8 keeps FP32's detections; the report says how many, at which thresholds", async () => {
    const file = await model("detector", detectorModel());
    const images = await pngs("detector-images", 12, [16, 16]);
    const { report } = await quantize({ model: file, calib: { dir: images }, eval: { dir: images }, preprocess: { preset: "imagenet" }, config: W8A8, detection: { scoreThreshold: 0.6 } });
    const d = report.detection!;
    assert.ok(d, "detection fidelity reported");
    assert.equal(d.scores, report.outputs!.find((o) => o.shape.length === 3 && o.shape[2] === 2)!.output);
    assert.deepEqual([d.scoreThreshold, d.nmsIou, d.matchIou, d.classes, d.backgroundClass, d.boxFormat], [0.6, 0.45, 0.5, 2, 0, "corners"]);
    assert.ok(d.fp32Detections > 0, JSON.stringify(d));
    assert.equal(d.kept + (d.quantizedDetections - d.extra - d.kept), d.kept);
    assert.ok(d.keptPercent! >= 90, JSON.stringify(d));
    assert.equal(report.fp32!.top1, null, "no top-1 for a detector");
    assert.equal(report.agreement, null);
    assert.equal(report.outputs!.length, 2);
    assert.match(formatReport(report), /Detections \(.*score > 0\.6, NMS 0\.45, match IoU 0\.5\): the quantized model keeps \d+ of FP32's \d+ \(\d+\.\d%\)/);
  });
});

describe("batch-1 models run in batches only when a batch gives the same outputs", () => {
  const head = (batch: number | string) => new ModelBuilder({ seed: 4 }).input("input", [batch, 3, 8, 8]).conv({ out: 4 }).relu().globalAveragePool();
  test("a Reshape to [1, 4] is relaxed: batches of 64, the same statistics as the model with a free batch", async () => {
    const b1 = head(1);
    b1.node("Reshape", [b1.constant("shape", [2], [1, 4], true)], [1, 4]).gemm({ out: 3 }).output();
    const bn = head("N");
    bn.node("Reshape", [bn.constant("shape", [2], [-1, 4], true)], [1, 4]).gemm({ out: 3 }).output();
    const images = await pngs("batch-images", 10, [8, 8]);
    const one = await calibrate({ model: await model("batch-1", b1), calib: { dir: images }, preprocess: { preset: "imagenet" }, config: W8A8 });
    const free = await calibrate({ model: await model("batch-n", bn), calib: { dir: images }, preprocess: { preset: "imagenet" }, config: W8A8 });
    assert.deepEqual(one.batching, { batchSize: 64, relaxed: true, note: null });
    for (const [tensor, s] of free.statistics) {
      const t = one.statistics.get(tensor)!;
      assert.ok(Math.abs(t.globalMax - s.globalMax) <= 1e-5 * Math.abs(s.globalMax) && Math.abs(t.globalMin - s.globalMin) <= 1e-5 * (1 + Math.abs(s.globalMin)), tensor);
    }
  });

  test("a graph that bakes the batch in runs sample by sample, and the report says so", async () => {
    const b = head(1);
    b.node("Reshape", [b.constant("column", [2], [4, 1], true)], [4, 1]).node("Reshape", [b.constant("row", [2], [1, 4], true)], [1, 4]).gemm({ out: 3 }).output();
    const images = await pngs("baked-images", 4, [8, 8]);
    const { report } = await quantize({ model: await model("baked", b), calib: { dir: images }, eval: null, preprocess: { preset: "imagenet" }, config: W8A8 });
    assert.match(report.warnings.join("\n"), /only runs one sample at a time .* so calibration and evaluation ran sample by sample/);
  });
});

describe("dynamic input sizes", () => {
  const dynamic = () => new ModelBuilder({ seed: 6 }).input("x", ["N", 3, "H", "W"]).conv({ out: 4, stride: 2 }).relu().conv({ out: 4, stride: 2 }).relu().globalAveragePool().flatten().gemm({ out: 2 }).output();
  let images: string;
  before(async () => {
    images = await pngs("dynamic-images", 6, [30, 50]);
  });

  test("without a size, the refusal says how to choose one", async () => {
    const file = await model("dynamic", dynamic());
    await assert.rejects(quantize({ model: file, calib: { dir: images }, eval: null, preprocess: { preset: "imagenet" }, config: W8A8 }), (e: Error) => {
      assert.ok(e instanceof ModelError && e.message.includes(file), e.message);
      assert.match(e.message, /takes images of any size \(input "x" \[N, 3, H, W\]\)/);
      assert.match(e.message, /--input-size HxW/);
      assert.match(e.message, /a multiple of 4/);
      return true;
    });
  });

  test("with a size it quantizes, and the exported file keeps the dynamic height and width", async () => {
    const { bytes, report } = await quantize({ model: await model("dynamic", dynamic()), calib: { dir: images }, eval: { dir: images }, preprocess: { preset: "imagenet", inputSize: [32, 48] }, config: W8A8 });
    const exported = fromBinary(ModelProtoSchema, bytes);
    assert.deepEqual(tensorInfoOf(exported.graph!.input[0]).shape, ["N", 3, "H", "W"]);
    assert.ok(report.fp32 && report.outputs![0].samples === report.evaluation!.images);
  });

  test("the suggested size is the images' median size rounded to the stride", async () => {
    const set = await scanImages(images);
    assert.deepEqual(await suggestInputSize(set, 32), [32, 64]);
    assert.deepEqual(await suggestInputSize(set, 4), [32, 52]);
  });

  test("a size the graph cannot take, and a size that contradicts a fixed input, are refused with the fix", async () => {
    // an upsampled stride-2 branch added to a full-size one: the height and width must be even
    const b = new ModelBuilder({ seed: 9 }).input("x", ["N", 3, "H", "W"]);
    const x = b.current;
    b.conv({ out: 4, stride: 2 }).node("Resize", ["", b.constant("scales", [4], [1, 1, 2, 2])], [1, 4, 2, 2], {}, "up");
    const up = b.current;
    b.from(x).conv({ out: 4 }).node("Add", [up], [1, 4, 1, 1]).globalAveragePool().flatten().gemm({ out: 2 }).output();
    const file = await model("even-only", b);
    await assert.rejects(quantize({ model: file, calib: { dir: images }, eval: null, preprocess: { preset: "imagenet", inputSize: [31, 47] }, config: W8A8 }), (e: Error) => {
      assert.ok(e instanceof ModelError && e.message.includes(file), e.message);
      assert.match(e.message, /cannot run at input size 31x47 \(onnxruntime: .*\)\. Choose a size whose height and width are multiples of 2, e\.g\. 32x48/);
      return true;
    });
    const fixed = await model("fixed", new ModelBuilder().input("x", ["N", 3, 16, 16]).conv({ out: 4 }).globalAveragePool().flatten().gemm({ out: 2 }).output());
    await assert.rejects(quantize({ model: fixed, calib: { dir: images }, eval: null, preprocess: { preset: "imagenet", inputSize: [32, 32] }, config: W8A8 }), (e: Error) => {
      assert.match(e.message, /The input size 32x32 does not fit ".*fixed\.onnx": its input "x" is fixed at 16x16 \(height x width\)\. Leave the input size empty for this model\./);
      return true;
    });
  });
});

describe("NHWC and 4-channel inputs", () => {
  test("an NHWC model with 4 channels reads RGBA images: alpha (times the scale) or a constant in channel 4", async () => {
    const b = new ModelBuilder({ seed: 2 }).input("img", ["N", 8, 8, 4]).transpose([0, 3, 1, 2]).conv({ out: 4 }).relu().globalAveragePool().flatten().gemm({ out: 2 }).output();
    const raw = Buffer.alloc(8 * 8 * 4);
    for (let i = 0; i < 64; i++) raw.set([200, 100, 50, 64], i * 4);
    const dir = await folder("rgba", { "a.png": await sharp(raw, { raw: { width: 8, height: 8, channels: 4 } }).png().toBuffer() });
    const spec = { layout: "NHWC" as const, channels: 4, height: 8, width: 8, batchSize: 1 };
    for await (const batch of batches(await scanImages(dir), { ...spec, preprocess: { preset: "raw01" } })) {
      assert.deepEqual(Array.from(batch.data.subarray(0, 4)), [200, 100, 50, 64].map((v) => Math.fround(v / 255)));
    }
    for await (const batch of batches(await scanImages(dir), { ...spec, preprocess: { preset: "raw01", fourthChannel: 0.5 } })) assert.equal(batch.data[3], 0.5);
    const { report } = await quantize({ model: await model("nhwc4", b), calib: { dir }, eval: null, preprocess: { preset: "raw01" }, config: W8A8 });
    assert.equal(report.calibration.images, 1);
  });
});

describe("data folders: roles, a shared folder, an outside labels file, small sets", () => {
  const small = () => new ModelBuilder({ seed: 5 }).input("x", ["N", 3, 8, 8]).conv({ out: 4 }).relu().globalAveragePool().flatten().gemm({ out: 3 }).output();
  let file: string;
  let images: string;
  before(async () => {
    file = await model("small", small());
    images = await pngs("labelled", 10, [8, 8], 3);
  });

  test("calibration and evaluation on the same folder: evaluation only on what calibration did not use, and the report says so", async () => {
    const { report } = await quantize({ model: file, calib: { dir: images }, eval: { dir: images }, preprocess: { preset: "imagenet" }, config: W8A8 });
    assert.equal(report.calibration.images, 5);
    assert.equal(report.evaluation!.images, 5);
    assert.match(report.warnings.join("\n"), /same folder: calibration used 5 of its 10 files \(a seeded random subset\), and evaluation ran only on the other 5, which calibration never saw/);
  });

  test("a labels file outside the folder labels the evaluation images", async () => {
    const labels = path.join(tmp, "outside-labels.txt");
    await writeFile(labels, Array.from({ length: 10 }, (_, i) => `${String(i).padStart(2, "0")}.png ${i % 3}`).join("\n"));
    const { report } = await quantize({ model: file, calib: { dir: images, limit: 4 }, eval: { dir: images, labels }, preprocess: { preset: "imagenet" }, config: W8A8 });
    assert.equal(report.fp32!.labelled, 6);
    assert.notEqual(report.fp32!.top1, null);
    await assert.rejects(scanImages(images, { labels: path.join(tmp, "missing.txt") }), /The labels file .*missing\.txt cannot be read \(ENOENT\)/);
  });

  test("a calibration set too small for the methods is warned about, saying how many they need", async () => {
    const { report } = await quantize({ model: file, calib: { dir: images, limit: 3 }, eval: null, preprocess: { preset: "imagenet" }, config: defaultQuantConfig({ wBits: 4, aBits: 4 }) });
    assert.match(report.warnings.join("\n"), /Only 3 calibration samples could be used; ACIQ clipping and per-channel activation bits need at least 32/);
  });

  test("nothing left to evaluate on is 'not measured', never 'on 0 images'", async () => {
    const one = await pngs("single", 1, [8, 8]);
    const { report } = await quantize({ model: file, calib: { dir: one }, eval: { dir: one }, preprocess: { preset: "imagenet" }, config: W8A8 });
    assert.equal(report.fp32, null);
    assert.equal(report.evaluation!.measured, false);
    assert.match(report.warnings.join("\n"), /calibration used all of it, so accuracy was not measured/);
    const text = formatReport(report);
    assert.match(text, /Evaluation: not measured/);
    assert.doesNotMatch(text, /on 0 images|0 samples/);
  });

  test("messages name the role of the folder", async () => {
    const empty = await folder("empty", {});
    await assert.rejects(quantize({ model: file, calib: { dir: images, limit: 2 }, eval: { dir: empty }, preprocess: { preset: "imagenet" }, config: W8A8 }), /The evaluation folder .*empty is empty: no images found in it/);
    await assert.rejects(quantize({ model: file, calib: { dir: empty }, eval: null, preprocess: { preset: "imagenet" }, config: W8A8 }), /The calibration folder .*empty is empty/);
  });
});
