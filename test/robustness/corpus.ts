// The bad-input corpus of issue 4, generated into a temp folder so nothing hostile is checked in.
// Each entry is a file or folder plus an id; the expectations (which message, through which route) live
// in bad-inputs.test.ts, and docs/RELIABILITY.md lists them with the message a user sees.
//
// Layout under the root (every part readable by `nobody`, so the same corpus serves the runs that drop
// root, except the folders that are unreadable on purpose):
//   good/model.onnx          small valid CNN, input [N, 3, 32, 32]
//   good/calib/              8 real CIFAR-10 PNGs
//   models/<id>.onnx         one bad model each (external-data cases in their own folder)
//   images/<id>/             one folder per image case, holding only that case
//   mixed/                   the good images plus every image case at once
//   out/                     where tests write (one sub-folder per case)
import { clone, create } from "@bufbuild/protobuf";
import { NodeProtoSchema, TypeProtoSchema, ValueInfoProtoSchema } from "onnx-buf";
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import sharp from "sharp";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { float32Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { externalize, ModelBuilder, mulberry32 } from "../helpers/model-builder.ts";
import { npy, npz } from "../helpers/numpy.ts";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURES = path.resolve(REPO, "../shared/fixtures");
export const RESNET20 = path.join(FIXTURES, "models", "resnet20-cifar10.onnx");
export const CIFAR_TEST = path.join(FIXTURES, "cifar10-test");

export type ModelId =
  | "zero-bytes"
  | "random-bytes"
  | "truncated-10"
  | "truncated-50"
  | "truncated-99"
  | "huge-tensor"
  | "external-missing"
  | "external-truncated"
  | "external-escape"
  | "opset-22"
  | "custom-domain-op"
  | "no-quantizable-layer"
  | "two-inputs"
  | "dynamic-size"
  | "png-named-onnx"
  | "zip-named-onnx"
  | "non-finite-weights"
  | "huge-input"
  | "no-channels";

export type ImageId =
  | "zero-bytes"
  | "truncated-jpeg"
  | "truncated-png"
  | "bomb-png"
  | "text-as-jpg"
  | "png-16-bit"
  | "cmyk-jpeg"
  | "animated-gif"
  | "name-with-spaces"
  | "name-non-ascii"
  | "name-with-newline"
  | "symlink-loop"
  | "unreadable-folder";

/** Folders of NumPy arrays that cannot feed the good model (input [N, 3, 32, 32] float32). */
export type ArrayId = "npy-wrong-dtype" | "npy-wrong-shape" | "npy-truncated-header" | "npy-truncated-data" | "npz-missing-key" | "npz-not-a-zip";

export interface ArrayCase {
  id: ArrayId;
  dir: string;
  /** the one file in dir */
  file: string;
}

export interface ImageCase {
  id: ImageId;
  /** the folder holding only this case */
  dir: string;
  /** the entry's path relative to `dir` and to the mixed folder, as the scanner reports it ("x/" for folders) */
  rel: string;
  /** decodes fine (an unusual but valid image): it must be used, not skipped */
  valid: boolean;
}

export interface Corpus {
  root: string;
  goodModel: string;
  goodCalib: string;
  /** file names in goodCalib */
  goodImages: string[];
  models: Record<ModelId, string>;
  images: Record<ImageId, ImageCase>;
  arrays: Record<ArrayId, ArrayCase>;
  mixed: string;
  /** a fresh, empty, existing output folder */
  outDir(name: string): Promise<string>;
  cleanup(): Promise<void>;
}

/** Small valid CNN for 32 x 32 RGB images: conv, relu, pool, fc. Quantizes in well under a second. */
export function smallCnn(seed = 5): ModelBuilder {
  return new ModelBuilder({ opset: 13, seed }).input("input", ["N", 3, 32, 32]).conv({ out: 8 }).relu().globalAveragePool().flatten().gemm({ out: 10 }).output();
}

/** A minimal ZIP archive (one stored entry) written by hand: a real archive, not just the magic bytes. */
export function zipOf(name: string, content: Buffer): Buffer {
  const nameBytes = Buffer.from(name);
  const crc = zlib.crc32(content);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(10, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(content.length, 18);
  local.writeUInt32LE(content.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(10, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(content.length, 20);
  central.writeUInt32LE(content.length, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const centralOffset = local.length + nameBytes.length + content.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + nameBytes.length, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, nameBytes, content, central, nameBytes, end]);
}

/** A PNG whose header claims width x height (CRC fixed, so only the size is wrong), with the body of `small`. */
export function pngClaiming(small: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(small);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(zlib.crc32(out.subarray(12, 29)), 29);
  return out;
}

/** The first `n` PNGs of the CIFAR-10 test set, in a stable order across classes. */
export async function cifarPngs(n: number): Promise<string[]> {
  const out: string[] = [];
  const classes = (await readdir(CIFAR_TEST, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const lists = await Promise.all(classes.map(async (c) => (await readdir(path.join(CIFAR_TEST, c))).sort().map((f) => path.join(CIFAR_TEST, c, f))));
  for (let i = 0; out.length < n; i++) for (const l of lists) if (out.length < n && l[i]) out.push(l[i]);
  return out;
}

async function put(file: string, content: Buffer | Uint8Array | string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

export async function buildCorpus(): Promise<Corpus> {
  const root = await mkdtemp(path.join(os.tmpdir(), "nibble-corpus-"));
  await chmod(root, 0o755);
  const good = path.join(root, "good");
  const goodModel = await put(path.join(good, "model.onnx"), smallCnn().bytes());
  const goodCalib = path.join(good, "calib");
  await mkdir(goodCalib, { recursive: true });
  const sources = await cifarPngs(8);
  const goodImages: string[] = [];
  for (const [i, src] of sources.entries()) {
    const name = `good-${i}-${path.basename(path.dirname(src))}.png`;
    await copyFile(src, path.join(goodCalib, name));
    goodImages.push(name);
  }

  // ---- models ----
  const m = (name: string) => path.join(root, "models", name);
  const resnet = await readFile(RESNET20);
  const rnd = mulberry32(2025);
  const models = {} as Record<ModelId, string>;
  models["zero-bytes"] = await put(m("zero-bytes.onnx"), Buffer.alloc(0));
  models["random-bytes"] = await put(m("random-bytes.onnx"), Buffer.from(Array.from({ length: 8192 }, () => Math.floor(rnd() * 256))));
  for (const pct of [10, 50, 99] as const) {
    models[`truncated-${pct}`] = await put(m(`resnet20-truncated-${pct}.onnx`), resnet.subarray(0, Math.floor((resnet.length * pct) / 100)));
  }
  const huge = smallCnn().build();
  huge.graph!.initializer.push(float32Tensor("huge", [1], [0]));
  huge.graph!.initializer.at(-1)!.dims = [1n << 20n, 1n << 20n]; // 2^40 elements claimed, 4 bytes stored
  models["huge-tensor"] = await put(m("huge-tensor.onnx"), encodeModel(huge));

  const external = async (id: ModelId, location: string, edit: (bin: Uint8Array) => Uint8Array | null): Promise<void> => {
    const model = smallCnn().build();
    const bin = edit(externalize(model, location));
    const dir = m(id);
    if (bin) await put(path.join(dir, "weights.bin"), bin);
    models[id] = await put(path.join(dir, "model.onnx"), encodeModel(model));
  };
  await external("external-missing", "weights.bin", () => null);
  await external("external-truncated", "weights.bin", (bin) => bin.subarray(0, bin.length - 100));
  await external("external-escape", "../../etc/passwd", (bin) => bin);

  const opset22 = new ModelBuilder({ opset: 21, seed: 5 }).input("input", ["N", 3, 32, 32]).conv({ out: 8 }).relu().globalAveragePool().flatten().gemm({ out: 10 }).output().build();
  opset22.opsetImport[0].version = 22n;
  models["opset-22"] = await put(m("opset-22.onnx"), encodeModel(opset22));

  // A custom-domain operator between the conv and the classifier: onnxruntime has no kernel for it.
  const custom = new ModelBuilder({ opset: 13, seed: 5 }).input("input", ["N", 3, 32, 32]).conv({ out: 8 }).relu();
  const customModel = custom.globalAveragePool().flatten().gemm({ out: 10 }).output().build();
  const relu = customModel.graph!.node.find((n) => n.opType === "Relu")!;
  const reluOut = relu.output[0];
  relu.output[0] = "pre_custom";
  customModel.graph!.node.splice(customModel.graph!.node.indexOf(relu) + 1, 0, create(NodeProtoSchema, { name: "fancy", opType: "FancyActivation", domain: "com.example", input: ["pre_custom"], output: [reluOut] }));
  customModel.opsetImport.push({ $typeName: "onnx.OperatorSetIdProto", domain: "com.example", version: 1n });
  models["custom-domain-op"] = await put(m("custom-domain-op.onnx"), encodeModel(customModel));

  models["no-quantizable-layer"] = await put(m("no-quantizable-layer.onnx"), new ModelBuilder().input("input", ["N", 3, 32, 32]).relu().maxPool().output().bytes());

  // Two real inputs: images, and a second tensor added to the first conv's output.
  const two = smallCnn().build();
  const g = two.graph!;
  const firstConv = g.node.find((n) => n.opType === "Conv")!;
  const convOut = firstConv.output[0];
  firstConv.output[0] = "conv_raw";
  g.node.splice(g.node.indexOf(firstConv) + 1, 0, create(NodeProtoSchema, { name: "add_bias_map", opType: "Add", input: ["conv_raw", "bias_map"], output: [convOut] }));
  const biasType = clone(TypeProtoSchema, g.input[0].type!);
  if (biasType.value.case === "tensorType") biasType.value.value.shape!.dim[1].value = { case: "dimValue", value: 8n };
  g.input.push(create(ValueInfoProtoSchema, { name: "bias_map", type: biasType }));
  models["two-inputs"] = await put(m("two-inputs.onnx"), encodeModel(two));

  // Weights as a diverged training run leaves them: a NaN and an infinity in the first conv.
  const nonFinite = smallCnn().build();
  const w = nonFinite.graph!.initializer.find((t) => t.name.startsWith("conv_w"))!;
  const view = new DataView(w.rawData.buffer, w.rawData.byteOffset, w.rawData.byteLength);
  view.setFloat32(0, NaN, true);
  view.setFloat32(4 * 7, Infinity, true);
  models["non-finite-weights"] = await put(m("non-finite-weights.onnx"), encodeModel(nonFinite));

  // An input declared at 100,000 x 100,000 pixels: 30 billion values per image.
  const hugeInput = smallCnn().build();
  const inputType = hugeInput.graph!.input[0].type!.value;
  if (inputType.case === "tensorType") {
    inputType.value.shape!.dim.forEach((d, i) => (d.value = { case: "dimValue", value: BigInt([1, 3, 100_000, 100_000][i]) }));
  }
  models["huge-input"] = await put(m("huge-input.onnx"), encodeModel(hugeInput));

  // A second conv cut down to zero output channels (and the classifier to zero inputs).
  const noChannels = new ModelBuilder({ opset: 13, seed: 5 }).input("input", ["N", 3, 32, 32]).conv({ out: 8 }).relu().conv({ out: 4 }).relu().globalAveragePool().flatten().gemm({ out: 10 }).output().build();
  const inits = noChannels.graph!.initializer;
  const emptied = (prefix: string, k: number, dims: number[]) => {
    const t = inits.filter((x) => x.name.startsWith(prefix))[k];
    inits[inits.indexOf(t)] = float32Tensor(t.name, dims, []);
  };
  emptied("conv_w", 1, [0, 8, 3, 3]);
  emptied("conv_b", 1, [0]);
  emptied("fc_w", 0, [10, 0]);
  models["no-channels"] = await put(m("no-channels.onnx"), encodeModel(noChannels));

  models["dynamic-size"] = await put(
    m("dynamic-size.onnx"),
    new ModelBuilder({ opset: 13, seed: 5 }).input("input", ["N", 3, "height", "width"]).conv({ out: 8 }).relu().globalAveragePool().flatten().gemm({ out: 10 }).output().bytes(),
  );

  // ---- arrays ----
  const values = (n: number) => Array.from({ length: n }, () => rnd() - 0.5);
  const sample = npy("<f4", [3, 32, 32], values(3072));
  const arrayFiles: [ArrayId, string, Buffer][] = [
    ["npy-wrong-dtype", "ints.npy", npy("<i4", [3, 32, 32], new Array(3072).fill(7))],
    ["npy-wrong-shape", "narrow.npy", npy("<f4", [3, 32, 31], values(2976))],
    ["npy-truncated-header", "cut-header.npy", sample.subarray(0, 40)],
    ["npy-truncated-data", "cut-data.npy", sample.subarray(0, sample.length - 1000)],
    ["npz-missing-key", "wrong-key.npz", npz({ image: sample })],
    ["npz-not-a-zip", "notes.npz", Buffer.from("These are notes, not an archive.\n")],
  ];
  const arrays = {} as Record<ArrayId, ArrayCase>;
  for (const [id, name, content] of arrayFiles) {
    const dir = path.join(root, "arrays", id);
    arrays[id] = { id, dir, file: await put(path.join(dir, name), content) };
  }

  const picture = await readFile(sources[0]);
  models["png-named-onnx"] = await put(m("photo.onnx"), picture);
  models["zip-named-onnx"] = await put(m("archive.onnx"), zipOf("model.onnx", resnet.subarray(0, 4096)));

  // ---- images ----
  const bigJpeg = await sharp(sources[1]).resize(256, 256).jpeg({ quality: 90 }).toBuffer();
  const bigPng = await sharp(sources[2]).resize(128, 128).png().toBuffer();
  const contents: [ImageId, string, Buffer | null, boolean][] = [
    ["zero-bytes", "empty.png", Buffer.alloc(0), false],
    ["truncated-jpeg", "cut.jpg", bigJpeg.subarray(0, bigJpeg.length >> 1), false],
    ["truncated-png", "cut.png", bigPng.subarray(0, bigPng.length >> 1), false],
    ["bomb-png", "bomb.png", pngClaiming(picture, 100_000, 100_000), false],
    ["text-as-jpg", "notes.jpg", Buffer.from("This is a text file with an image extension.\n"), false],
    ["png-16-bit", "deep-16bit.png", await sharp(sources[3]).toColourspace("rgb16").png().toBuffer(), true],
    ["cmyk-jpeg", "print-cmyk.jpg", await sharp(sources[4]).toColourspace("cmyk").jpeg({ quality: 95 }).toBuffer(), true],
    ["animated-gif", "moving.gif", await animatedGif(sources[5], sources[6]), true],
    ["name-with-spaces", "a photo with spaces.png", picture, true],
    ["name-non-ascii", "chat-été-猫-Ωμέγα.png", picture, true],
    ["name-with-newline", "line\nbreak.png", picture, true],
    ["symlink-loop", "loop/", null, false],
    ["unreadable-folder", "locked/", null, false],
  ];
  const images = {} as Record<ImageId, ImageCase>;
  const mixed = path.join(root, "mixed");
  for (const f of goodImages) await put(path.join(mixed, f), await readFile(path.join(goodCalib, f)));
  for (const [id, rel, content, valid] of contents) {
    const dir = path.join(root, "images", id);
    await mkdir(dir, { recursive: true });
    for (const base of [dir, mixed]) {
      if (content) await put(path.join(base, rel), content);
      else if (id === "symlink-loop") await symlink(".", path.join(base, "loop"));
      else if (id === "unreadable-folder") {
        const locked = path.join(base, "locked");
        await put(path.join(locked, "hidden-away.png"), picture);
        await chmod(locked, 0o000);
      }
    }
    images[id] = { id, dir, rel, valid };
  }

  let outs = 0;
  return {
    root,
    goodModel,
    goodCalib,
    goodImages,
    models,
    images,
    arrays,
    mixed,
    async outDir(name: string) {
      const dir = path.join(root, "out", `${outs++}-${name.replace(/[^\w.-]+/g, "-")}`);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await chmod(dir, 0o755);
      return dir;
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Two frames (the first is what a model sees). */
async function animatedGif(a: string, b: string): Promise<Buffer> {
  const frames = await Promise.all([a, b].map((f) => sharp(f).ensureAlpha().raw().toBuffer()));
  return sharp(Buffer.concat(frames), { raw: { width: 32, height: 64, channels: 4, pageHeight: 32 } }).gif().toBuffer();
}
