// Every real model of ../shared/fixtures, as loadModel hands it to the pipeline (converted to opset 21,
// initializers no longer graph inputs), computes what the file itself computes in onnxruntime, on real
// images with each model's documented preprocessing (fixtures README).
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { encodeModel, loadModel } from "../../src-main/engine/onnx/model-io.ts";

const FIXTURES = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const IMAGES_PER_MODEL = 4;

interface Recipe {
  images: string;
  /** pixel value → model value, per channel */
  normalize: (v: number, c: number) => number;
  /** centre crop of the stored image before any resize */
  crop?: number;
  /** the largest |converted − original| allowed on any output element */
  tolerance: number;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

// Exact where the conversion changes only version numbers; UltraFace's weights were graph inputs, and as
// constants onnxruntime folds its BatchNormalizations into the convolutions, which reorders float sums.
const RECIPES: Record<string, Recipe> = {
  resnet: { images: "cifar10-test/cat", normalize: (v, c) => (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], tolerance: 0 },
  "mobilenet_v1_0.75_224-imagenet.onnx": { images: "imagenet-val-1300", normalize: (v) => v / 127.5 - 1, crop: 224, tolerance: 0 },
  "tiny-darknet-imagenet.onnx": { images: "imagenet-val-1300", normalize: (v) => v / 255, crop: 224, tolerance: 0 },
  "ultraface-rfb-320.onnx": { images: "faces", normalize: (v) => (v - 127) / 128, tolerance: 1e-5 },
};

async function imageTensor(file: string, dims: number[], recipe: Recipe): Promise<ort.Tensor> {
  const nhwc = dims[3] === 3;
  const [h, w] = nhwc ? [dims[1], dims[2]] : [dims[2], dims[3]];
  let img = sharp(file).removeAlpha();
  if (recipe.crop) {
    const meta = await sharp(file).metadata();
    const c = recipe.crop;
    img = img.extract({ left: Math.floor((meta.width! - c) / 2), top: Math.floor((meta.height! - c) / 2), width: c, height: c });
  }
  const px = await img.resize(w, h, { fit: "fill" }).raw().toBuffer();
  const x = new Float32Array(3 * h * w);
  for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) x[nhwc ? p * 3 + c : c * h * w + p] = recipe.normalize(px[p * 3 + c], c);
  return new ort.Tensor("float32", x, nhwc ? [1, h, w, 3] : [1, 3, h, w]);
}

const models = (await readdir(path.join(FIXTURES, "models"))).filter((f) => f.endsWith(".onnx")).sort();

test("the fixtures include an old-opset model with initializers listed as inputs", () => {
  assert.ok(models.includes("ultraface-rfb-320.onnx"));
});

for (const name of models) {
  test(`${name}: the converted model computes what the file computes`, async () => {
    const recipe = RECIPES[name] ?? RECIPES[name.split("-")[0].replace(/\d+$/, "")];
    assert.ok(recipe, `a preprocessing recipe for ${name}`);
    const file = path.join(FIXTURES, "models", name);
    const loaded = await loadModel(file);
    assert.equal(Number(loaded.model.opsetImport.find((o) => o.domain === "")!.version), 21);
    const options: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };
    const original = await ort.InferenceSession.create(await readFile(file), options);
    const converted = await ort.InferenceSession.create(encodeModel(loaded.model), options);
    try {
      assert.deepEqual(converted.inputNames, [original.inputNames[0]], "the converted model has only the real input");
      assert.deepEqual(converted.outputNames, original.outputNames);
      const input = loaded.model.graph!.input[0].type!.value;
      assert.ok(input.case === "tensorType");
      const dims = input.value.shape!.dim.map((d) => (d.value.case === "dimValue" ? Number(d.value.value) : 1));
      const dir = path.join(FIXTURES, recipe.images);
      const files = (await readdir(dir)).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().slice(0, IMAGES_PER_MODEL);
      let worst = 0;
      for (const f of files) {
        const feeds = { [original.inputNames[0]]: await imageTensor(path.join(dir, f), dims, recipe) };
        const [a, b] = [await original.run(feeds), await converted.run(feeds)];
        for (const out of original.outputNames) {
          const x = a[out].data as Float32Array;
          const y = b[out].data as Float32Array;
          assert.deepEqual(b[out].dims, a[out].dims);
          for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
        }
      }
      assert.ok(worst <= recipe.tolerance, `${name}: largest difference ${worst} > ${recipe.tolerance}`);
    } finally {
      await original.release();
      await converted.release();
    }
  });
}
