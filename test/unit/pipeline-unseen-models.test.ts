// The engine works on ONNX CNN classifiers it has never seen: small models built in code with the
// operators and layouts exporters actually produce (unfolded BatchNorm, depthwise and grouped convs,
// residual adds, NHWC inputs behind a Transpose, Clip as ReLU6, LeakyReLU, MatMul classifiers,
// non-square inputs, old opsets whose attributes moved to inputs), each quantized end to end at W4A4.
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, ModelProtoSchema, NodeProtoSchema, type ModelProto } from "onnx-buf";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { quantize, type QuantizeOutcome } from "../../src-main/engine/pipeline/quantize.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { ALL_METHODS, type Method, type QuantConfig } from "../../shared/types.ts";
import { ModelBuilder, mulberry32 } from "../helpers/model-builder.ts";

const CLASSES = ["cats", "dogs"] as const;
const PER_CLASS = 20;
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

let tmp: string;
let data: string;
/** the same images in a second folder: one folder for both would evaluate only on what calibration did not use */
let evalData: string;
/** every image with its class index, in no particular order */
const images: { file: string; label: number }[] = [];

function config(methods: Method[]): QuantConfig {
  return defaultQuantConfig({ methods });
}

/** Noisy images around random colours, in several sizes (square, portrait, landscape). */
async function writeImages(dir: string): Promise<void> {
  const rnd = mulberry32(42);
  const sizes: [number, number][] = [[32, 32], [24, 36], [40, 28], [33, 47], [16, 16]];
  for (const [label, name] of CLASSES.entries()) {
    await mkdir(path.join(dir, name), { recursive: true });
    for (let i = 0; i < PER_CLASS; i++) {
      const [width, height] = sizes[i % sizes.length];
      // Colours independent of the class, so a random model's predictions vary from image to image
      // and its accuracy is not a trivial 0, 50 or 100%: a preprocessing mistake would show.
      const background = { r: Math.floor(rnd() * 256), g: Math.floor(rnd() * 256), b: Math.floor(rnd() * 256) };
      const base = await sharp({ create: { width, height, channels: 3, background } }).raw().toBuffer();
      const noisy = Buffer.from(base.map((v) => Math.max(0, Math.min(255, Math.round(v + (rnd() - 0.5) * 160)))));
      const file = path.join(dir, name, `img-${String(i).padStart(2, "0")}.png`);
      await sharp(noisy, { raw: { width, height, channels: 3 } }).png().toFile(file);
      images.push({ file, label });
    }
  }
}

/**
 * Our own preprocessing, written from the documented contract rather than taken from the engine:
 * stretch to the model input with a linear kernel, ImageNet mean/std, NCHW or NHWC.
 */
async function imageTensor(height: number, width: number, layout: "NCHW" | "NHWC"): Promise<{ data: Float32Array; dims: number[] }> {
  const n = images.length;
  const hw = height * width;
  const out = new Float32Array(n * hw * 3);
  const f = Math.fround;
  for (const [i, img] of images.entries()) {
    const px = await sharp(img.file).toColourspace("srgb").removeAlpha().resize(width, height, { fit: "fill", kernel: "linear" }).raw().toBuffer();
    assert.equal(px.length, hw * 3);
    for (let p = 0; p < hw; p++) {
      for (let c = 0; c < 3; c++) {
        const v = f(f(f(px[p * 3 + c] * (1 / 255)) - f(IMAGENET_MEAN[c])) / f(IMAGENET_STD[c]));
        out[layout === "NCHW" ? i * hw * 3 + c * hw + p : (i * hw + p) * 3 + c] = v;
      }
    }
  }
  return { data: out, dims: layout === "NCHW" ? [n, 3, height, width] : [n, height, width, 3] };
}

async function runModel(bytes: Uint8Array, input: { data: Float32Array; dims: number[] }): Promise<{ logits: Float32Array; classes: number }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor("float32", input.data, input.dims) });
    const t = out[session.outputNames[0]];
    return { logits: t.data as Float32Array, classes: Number(t.dims[t.dims.length - 1]) };
  } finally {
    await session.release();
  }
}

/** Top-1 class per image; the first maximum wins a tie. */
function predictions(logits: Float32Array, classes: number): number[] {
  return images.map((_, i) => {
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[i * classes + k] > logits[i * classes + best]) best = k;
    return best;
  });
}

function top1Percent(logits: Float32Array, classes: number): number {
  const p = predictions(logits, classes);
  return (100 * images.filter((img, i) => p[i] === img.label).length) / images.length;
}

function defaultOpset(model: ModelProto): number | undefined {
  const entry = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
  return entry === undefined ? undefined : Number(entry.version);
}

interface Case {
  name: string;
  bytes: Uint8Array;
  /** Conv/Gemm/MatMul nodes */
  layers: number;
  height: number;
  width: number;
  layout: "NCHW" | "NHWC";
}

/** (a) opset 11: conv + unfolded BN + relu, depthwise conv + BN + relu, conv, residual add, relu, GAP, gemm. */
function residualBnModel(): Case {
  const b = new ModelBuilder({ opset: 11, seed: 5 }).input("image", ["N", 3, 32, 32]);
  b.conv({ out: 8, bias: false }).batchNorm().relu();
  const skip = b.current;
  b.conv({ out: 8, groups: 8, bias: false }).batchNorm().relu();
  b.conv({ out: 8 }).add(skip).relu();
  b.globalAveragePool().flatten().gemm({ out: 2 }).output();
  return { name: "opset 11 residual with unfolded BatchNorm and depthwise conv", bytes: b.bytes(), layers: 4, height: 32, width: 32, layout: "NCHW" };
}

/** (b) opset 17: NHWC input, Transpose, conv, ReLU6 as Clip, maxpool, conv, LeakyReLU, GAP, MatMul without bias. */
function nhwcModel(): Case {
  const b = new ModelBuilder({ opset: 17, seed: 6 }).input("pixels", ["N", 32, 32, 3]);
  b.transpose([0, 3, 1, 2]).conv({ out: 8 }).clip(0, 6).maxPool().conv({ out: 8 }).leakyRelu(0.1);
  b.globalAveragePool().flatten().matmul({ out: 2 }).output();
  return { name: "opset 17 NHWC input, ReLU6, LeakyReLU, MatMul classifier", bytes: b.bytes(), layers: 3, height: 32, width: 32, layout: "NHWC" };
}

/** (c) opset 21: grouped conv (groups=2) on a non-square 48x40 input. */
function groupedModel(): Case {
  const b = new ModelBuilder({ opset: 21, seed: 7 }).input("input", ["N", 3, 48, 40]);
  b.conv({ out: 8, stride: 2 }).relu().conv({ out: 8, groups: 2 }).relu();
  b.globalAveragePool().flatten().gemm({ out: 2 }).output();
  return { name: "opset 21 grouped conv, non-square 48x40 input", bytes: b.bytes(), layers: 3, height: 48, width: 40, layout: "NCHW" };
}

/**
 * (d) opset 13 with ReduceMean(axes=[2,3], keepdims=1) where GlobalAveragePool would be. The builder has
 * no ReduceMean, so this swaps the node in the built proto: same output shape [N, C, 1, 1]. At opset 13
 * ReduceMean takes axes as an attribute; at 21 as an input, so the exporter's upgrade must move it.
 */
function reduceMeanModel(): Case {
  const b = new ModelBuilder({ opset: 13, seed: 8 }).input("image", ["N", 3, 32, 32]);
  b.conv({ out: 8 }).relu().conv({ out: 8 }).relu().globalAveragePool("pool").flatten().gemm({ out: 2 }).output();
  const model = b.build();
  const nodes = model.graph!.node;
  const i = nodes.findIndex((n) => n.opType === "GlobalAveragePool");
  nodes[i] = create(NodeProtoSchema, {
    name: "pool",
    opType: "ReduceMean",
    input: nodes[i].input,
    output: nodes[i].output,
    attribute: [
      create(AttributeProtoSchema, { name: "axes", type: AT.INTS, ints: [2n, 3n] }),
      create(AttributeProtoSchema, { name: "keepdims", type: AT.INT, i: 1n }),
    ],
  });
  return { name: "opset 13 ReduceMean with axes attribute", bytes: toBinary(ModelProtoSchema, model), layers: 3, height: 32, width: 32, layout: "NCHW" };
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-unseen-"));
  data = path.join(tmp, "images");
  await writeImages(data);
  evalData = path.join(tmp, "images-again");
  await cp(data, evalData, { recursive: true });
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function runCase(c: Case, methods: Method[]): Promise<void> {
  // The original model runs as is in onnxruntime: the fixture is valid before Nibble touches it.
  const modelPath = path.join(tmp, `${c.name.replace(/\W+/g, "-")}.onnx`);
  await writeFile(modelPath, c.bytes);
  const input = await imageTensor(c.height, c.width, c.layout);
  const fp32 = await runModel(c.bytes, input);
  const expectedFp32 = top1Percent(fp32.logits, fp32.classes);
  assert.ok(new Set(predictions(fp32.logits, fp32.classes)).size > 1, "fixture sanity: the random model does not predict one class for every image");

  const outcome: QuantizeOutcome = await quantize({
    model: modelPath,
    calib: { dir: data },
    eval: { dir: evalData },
    preprocess: { preset: "imagenet" },
    config: config(methods),
  });
  const { report, bytes } = outcome;

  // The exported model loads and runs in onnxruntime, at opset 21, with finite outputs.
  const exported = fromBinary(ModelProtoSchema, bytes);
  assert.equal(defaultOpset(exported), 21, "exported default-domain opset");
  const quant = await runModel(bytes, input);
  assert.equal(quant.logits.length, images.length * 2);
  assert.ok(quant.logits.every(Number.isFinite), "quantized outputs are finite");

  // The report covers every layer, and its numbers are numbers.
  assert.equal(report.layers.length, c.layers, `layers: ${report.layers.map((l) => l.name).join(", ")}`);
  assert.equal(report.evaluation?.images, images.length);
  assert.equal(report.calibration.images, images.length);
  assert.ok(report.agreement, "agreement reported");
  assert.equal(typeof report.agreement.agreement, "number");
  assert.ok(Number.isFinite(report.agreement.agreement) && report.agreement.agreement >= 0 && report.agreement.agreement <= 100);
  assert.equal(typeof report.quantized?.top1, "number");
  // ... and the quantized accuracy and agreement are those of the exported bytes.
  assert.equal(report.quantized?.top1, top1Percent(quant.logits, quant.classes), "quantized top-1 equals running the exported bytes ourselves");
  const a = predictions(fp32.logits, fp32.classes);
  const q = predictions(quant.logits, quant.classes);
  assert.equal(report.agreement.agreement, (100 * a.filter((p, i) => p === q[i]).length) / images.length, "agreement equals our own count");

  // The FP32 accuracy it reports is what the original model scores on the same images.
  assert.ok(report.fp32, "fp32 accuracy reported");
  assert.equal(report.fp32.labelled, images.length);
  assert.equal(report.fp32.top1, expectedFp32, "FP32 top-1 equals running the original model ourselves");
}

describe("quantize() on classifiers it has never seen (W4A4, the same images calibrate and evaluate)", () => {
  const cases = [residualBnModel, nhwcModel, groupedModel, reduceMeanModel];
  for (const make of cases) {
    const c = make();
    test(`${c.name}, all methods`, () => runCase(c, [...ALL_METHODS]));
  }
  test("opset 11 residual with unfolded BatchNorm and depthwise conv, methods none", () => runCase(residualBnModel(), []));
  test("opset 13 ReduceMean with axes attribute, methods none", () => runCase(reduceMeanModel(), []));
});

test("the ReduceMean model's axes attribute really is an attribute before export, and an input after", async () => {
  const c = reduceMeanModel();
  const source = fromBinary(ModelProtoSchema, c.bytes).graph!.node.find((n) => n.opType === "ReduceMean")!;
  assert.ok(source.attribute.some((a) => a.name === "axes"));
  assert.equal(source.input.length, 1);
  const modelPath = path.join(tmp, "reducemean-check.onnx");
  await writeFile(modelPath, c.bytes);
  const { bytes } = await quantize({ model: modelPath, calib: { dir: data }, eval: null, preprocess: { preset: "imagenet" }, config: config([]) });
  const node = fromBinary(ModelProtoSchema, bytes).graph!.node.find((n) => n.opType === "ReduceMean")!;
  assert.ok(node, "ReduceMean survives export");
  assert.ok(!node.attribute.some((a) => a.name === "axes"), "axes attribute removed");
  assert.equal(node.input.length, 2, "axes moved to an input");
});
