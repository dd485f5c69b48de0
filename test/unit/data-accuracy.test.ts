// End-to-end check of the data layer against a real model: if decoding, channel order, layout or
// normalisation were wrong, ResNet-20's accuracy on CIFAR-10 would collapse or drift.
// The published figure is 91.73% top-1 on all 10,000 test images. The default run uses a seeded
// subset of 1,000 (about 3 s); NIBBLE_FULL_EVAL=1 also runs all 10,000 and requires exactly 91.73.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { batches } from "../../src-main/engine/data/loader.ts";
import { scanImages, type ImageSet } from "../../src-main/engine/data/scan.ts";
import { fixtures } from "./data-fixtures.ts";

async function top1(set: ImageSet): Promise<{ correct: number; total: number }> {
  const session = await ort.InferenceSession.create(path.join(fixtures, "models", "resnet20-cifar10.onnx"));
  let correct = 0;
  let total = 0;
  const spec = { batchSize: 250, layout: "NCHW" as const, channels: 3, height: 32, width: 32, preprocess: { preset: "imagenet" as const } };
  for await (const b of batches(set, spec)) {
    const { logits } = await session.run({ input: new ort.Tensor("float32", b.data, [b.count, 3, 32, 32]) });
    const out = logits.data as Float32Array;
    for (let i = 0; i < b.count; i++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (out[i * 10 + k] > out[i * 10 + best]) best = k;
      if (best === b.labels[i]) correct++;
    }
    total += b.count;
  }
  await session.release();
  return { correct, total };
}

test("ResNet-20 on 1,000 seeded CIFAR-10 test images: top-1 as measured (92.3%)", async () => {
  const set = await scanImages(path.join(fixtures, "cifar10-test"), { limit: 1000, seed: 0 });
  const { correct, total } = await top1(set);
  assert.equal(total, 1000);
  // This subset scores 923/1000 with this pipeline (deterministic). The band leaves room for kernel or
  // runtime rounding changes that flip a few images; swapped channels or a wrong layout lose far more.
  assert.ok(correct >= 915 && correct <= 930, `top-1 ${correct / 10}%, expected 92.3%`);
});

test("ResNet-20 on all 10,000 CIFAR-10 test images: exactly 91.73%", { skip: !process.env.NIBBLE_FULL_EVAL && "set NIBBLE_FULL_EVAL=1 (about 25 s)" }, async () => {
  const { correct, total } = await top1(await scanImages(path.join(fixtures, "cifar10-test")));
  assert.equal(total, 10_000);
  assert.equal(correct, 9173);
});
