// An independent measurement for the end-to-end test: top-1 of an ONNX file on a class-per-folder image
// set, with onnxruntime-node and sharp directly (ImageNet mean/std on 0..1, NCHW, images already at
// the model's 32 x 32), so the number on the screen is checked against code the app does not share.
import { readdir } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

export async function top1(modelPath: string, dir: string, size = 32): Promise<{ images: number; correct: number; top1: number }> {
  const classes = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const items: { file: string; label: number }[] = [];
  for (const [label, cls] of classes.entries()) for (const f of (await readdir(path.join(dir, cls))).sort()) items.push({ file: path.join(dir, cls, f), label });
  const session = await ort.InferenceSession.create(modelPath);
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  let correct = 0;
  const batch = 100;
  for (let start = 0; start < items.length; start += batch) {
    const chunk = items.slice(start, start + batch);
    const data = new Float32Array(chunk.length * 3 * size * size);
    for (const [b, item] of chunk.entries()) {
      const { data: px } = await sharp(item.file).removeAlpha().toColourspace("srgb").resize(size, size, { fit: "fill" }).raw().toBuffer({ resolveWithObject: true });
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < size * size; i++) data[((b * 3 + c) * size * size) + i] = (px[i * 3 + c] / 255 - MEAN[c]) / STD[c];
    }
    const out = await session.run({ [input]: new ort.Tensor("float32", data, [chunk.length, 3, size, size]) });
    const logits = out[output].data as Float32Array;
    const k = logits.length / chunk.length;
    for (const [b, item] of chunk.entries()) {
      let best = 0;
      for (let j = 1; j < k; j++) if (logits[b * k + j] > logits[b * k + best]) best = j;
      if (best === item.label) correct++;
    }
  }
  await session.release();
  return { images: items.length, correct, top1: (100 * correct) / items.length };
}
