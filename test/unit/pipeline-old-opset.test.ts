// UltraFace (PyTorch 1.2, opset 9, weights listed as graph inputs) through the whole pipeline: it used to
// stop with onnxruntime's "Slice:13 has input size 1" because opset-9 attributes survived the upgrade.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { quantize } from "../../src-main/engine/pipeline/quantize.ts";

const FIXTURES = path.resolve(import.meta.dirname, "../../../shared/fixtures");

test("UltraFace quantizes at W8A8; the export has opset 21, the one real input and both outputs", async () => {
  const { report, bytes } = await quantize({
    model: path.join(FIXTURES, "models", "ultraface-rfb-320.onnx"),
    calib: { dir: path.join(FIXTURES, "faces"), limit: 4 },
    eval: null,
    // the fixtures README: RGB, (x - 127) / 128
    preprocess: { preset: "custom", mean: [127, 127, 127], std: [128, 128, 128], scale: 1 },
    config: defaultQuantConfig({ wBits: 8, aBits: 8, methods: [] }),
    histograms: false,
  });
  assert.ok(report.layers.length > 40);
  const model = fromBinary(ModelProtoSchema, bytes);
  assert.equal(Number(model.opsetImport.find((o) => o.domain === "")!.version), 21);
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    assert.deepEqual(session.inputNames, ["input"]);
    assert.deepEqual(session.outputNames, ["scores", "boxes"]);
    const x = new ort.Tensor("float32", new Float32Array(3 * 240 * 320).fill(0.1), [1, 3, 240, 320]);
    const out = await session.run({ input: x });
    assert.deepEqual(out.scores.dims, [1, 4420, 2]);
    assert.ok((out.boxes.data as Float32Array).every(Number.isFinite));
  } finally {
    await session.release();
  }
});
