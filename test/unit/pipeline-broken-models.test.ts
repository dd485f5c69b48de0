// Models whose operators do not fit together (a hand-edited or damaged file) are refused with what
// onnxruntime says about the file itself, not as an "unexpected error"; a failure of a model Nibble
// derived from a good file stays unexpected, because it is Nibble's bug.
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import type { ModelProto } from "onnx-buf";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { float32Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { quantize } from "../../src-main/engine/pipeline/quantize.ts";
import { explainRuntimeFailure } from "../../src-main/engine/pipeline/runtime-failure.ts";
import { cifarPngs } from "../robustness/corpus.ts";
import { ModelBuilder } from "../helpers/model-builder.ts";

const tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-broken-"));
after(() => rm(tmp, { recursive: true, force: true }));
const calib = path.join(tmp, "calib");
await mkdir(calib);
for (const [i, f] of (await cifarPngs(4)).entries()) await copyFile(f, path.join(calib, `${i}.png`));

function small(): ModelProto {
  return new ModelBuilder({ opset: 13, seed: 5 }).input("input", ["N", 3, 32, 32]).conv({ out: 8 }).relu().globalAveragePool().flatten().gemm({ out: 10 }).output().build();
}

function replaceWeight(m: ModelProto, prefix: string, dims: number[]): void {
  const inits = m.graph!.initializer;
  const i = inits.findIndex((t) => t.name.startsWith(prefix));
  inits[i] = float32Tensor(inits[i].name, dims, new Array(dims.reduce((a, b) => a * b, 1)).fill(0.1));
}

async function quantizeFile(name: string, model: ModelProto): Promise<unknown> {
  const file = path.join(tmp, name);
  await writeFile(file, encodeModel(model));
  const req = { model: file, calib: { dir: calib }, eval: null, preprocess: { preset: "imagenet" as const }, config: defaultQuantConfig(), histograms: false };
  return quantize(req).then(() => null, (e: unknown) => e);
}

const BROKEN: [string, (m: ModelProto) => void, RegExp][] = [
  // found only while running: the conv's weight expects 4 input channels, the image has 3
  ["conv-channels", (m) => replaceWeight(m, "conv_w", [8, 4, 3, 3]), /Input channels C is not equal to kernel channels \* group\. C: 3 kernel channels: 4/],
  // found when onnxruntime loads it: the classifier's weight does not match the 8 features
  ["gemm-shape", (m) => replaceWeight(m, "fc_w", [10, 5]), /\[ShapeInferenceError\] Dimension mismatch/],
  // a misspelt operator
  ["unknown-op", (m) => (m.graph!.node.find((n) => n.opType === "Relu")!.opType = "Rellu"), /No Op registered for Rellu/],
];

for (const [name, edit, said] of BROKEN) {
  test(`${name}: refused with onnxruntime's reason and what to do`, async () => {
    const m = small();
    edit(m);
    const e = await quantizeFile(`${name}.onnx`, m);
    assert.ok(e instanceof ModelError, `a ModelError, got ${String(e)}`);
    assert.match(e.message, new RegExp(`^onnxruntime cannot run ".*${name}\\.onnx" as it is, so Nibble cannot measure or quantize it: `));
    assert.match(e.message, said);
    assert.match(e.message, /export it again from the original framework\.$/);
    assert.doesNotMatch(e.message, /Load model from/);
  });
}

test("a failure on a model derived from a file that runs stays Nibble's own error", async () => {
  const file = path.join(tmp, "good.onnx");
  await writeFile(file, encodeModel(small()));
  const ours = new Error("a bug in a derived graph");
  const feeds = { input: { type: "float32" as const, data: new Float32Array(3 * 32 * 32).fill(0.5), dims: [1, 3, 32, 32] } };
  assert.equal(await explainRuntimeFailure(ours, file, feeds), ours);
});
