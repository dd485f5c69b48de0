import assert from "node:assert/strict";
import { after, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NodeProtoSchema, ValueInfoProtoSchema } from "onnx-buf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { formatSummary, inspectModel } from "../../src-main/engine/onnx/inspect.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { ModelBuilder } from "../helpers/model-builder.ts";
import type { ModelProto } from "onnx-buf";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const resnet20 = path.resolve(repoRoot, "../shared/fixtures/models/resnet20-cifar10.onnx");
const tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-onnx-inspect-"));
after(() => rm(tmp, { recursive: true, force: true }));
let n = 0;
async function save(model: ModelProto): Promise<string> {
  const file = path.join(tmp, `m${n++}.onnx`);
  await writeFile(file, encodeModel(model));
  return file;
}

test("resnet20 summary", async () => {
  const s = await inspectModel(resnet20);
  assert.equal(s.fileBytes, 1_087_981);
  assert.equal(s.params, 269_034);
  assert.equal(s.irVersion, 7);
  assert.deepEqual(s.opsets, [{ domain: "ai.onnx", version: 13 }]);
  assert.equal(s.producer, "pytorch 1.13.0");
  assert.deepEqual(s.inputs, [{ name: "input", elemType: "float32", shape: ["N", 3, 32, 32] }]);
  assert.deepEqual(s.outputs, [{ name: "logits", elemType: "float32", shape: ["N", 10] }]);
  assert.equal(s.layout, "NCHW");
  assert.deepEqual(s.inputSize, [32, 32]);
  assert.equal(s.layers.length, 20);
  assert.equal(s.layers.filter((l) => l.halfRange).length, 10);
  assert.equal(s.foldedBatchNorms, 0);
  assert.deepEqual(s.warnings, []);
  assert.deepEqual(s.unsupported, []);
  const text = formatSummary(s);
  assert.match(text, /Parameters\s+269,034/);
  assert.match(text, /^\s+1\s+\/conv1\/Conv\s+Conv\s+conv\s+16x3x3x3\s+16\s+relu\s+half\s+first$/m);
  assert.match(text, /^\s+20\s+\/linear\/Gemm\s+Gemm\s+fc\s+10x64\s+10\s+none\s+signed\s+last$/m);
  // Aligned: every table row starts its "op" column at the same place.
  const rows = text.split("\n").filter((l) => /^\s+\d+\s+\//.test(l));
  assert.equal(new Set(rows.map((r) => r.indexOf(" Conv ") > 0 ? r.indexOf(" Conv ") : r.indexOf(" Gemm "))).size, 1);
});

test("warnings: depthwise, unknown and custom operators, control flow, several inputs, folded BN", async () => {
  const b = new ModelBuilder({ opset: 13 }).input("x", [1, 3, 8, 8]).conv({ out: 3, groups: 3, name: "dw" }).batchNorm().relu().output();
  const model = b.build();
  const g = model.graph!;
  const out = g.output[0].name;
  g.input.push(create(ValueInfoProtoSchema, { name: "extra", type: g.input[0].type }));
  g.node.push(
    create(NodeProtoSchema, { opType: "NonMaxSuppression", input: [out], output: ["nms"] }),
    create(NodeProtoSchema, { opType: "Weird", domain: "com.example", input: ["extra"], output: ["w"] }),
    create(NodeProtoSchema, { opType: "Loop", input: ["", ""], output: ["l"] }),
  );
  model.opsetImport.push({ $typeName: "onnx.OperatorSetIdProto", domain: "com.example", version: 1n });
  const s = await inspectModel(await save(model));
  assert.equal(s.foldedBatchNorms, 1);
  assert.deepEqual(s.unsupported, ["NonMaxSuppression", "Loop", "com.example:Weird"]);
  const text = s.warnings.join("\n");
  assert.match(text, /2 inputs \("x", "extra"\)/);
  assert.match(text, /depthwise networks are hard at 4 bits; consider keeping them at 8/);
  assert.match(text, /not been checked with: NonMaxSuppression/);
  assert.match(text, /control flow \(Loop\)/);
  assert.match(text, /outside standard ONNX \(com.example:Weird\)/);
  assert.match(formatSummary(s), /Warnings\n  - /);
});

test("a model without quantizable layers says so", async () => {
  const s = await inspectModel(await save(new ModelBuilder().input("x", [1, 3, 8, 8]).relu().maxPool().output().build()));
  assert.deepEqual(s.layers, []);
  assert.match(s.warnings.join(" "), /no layer to quantize/);
  assert.doesNotMatch(formatSummary(s), /#\s+layer/);
});

test("inspecting a damaged file gives a ModelError", async () => {
  const file = path.join(tmp, "bad.onnx");
  await writeFile(file, "this is not a model");
  await assert.rejects(inspectModel(file), ModelError);
});

test("UltraFace (opset 9, weights listed as inputs): inspect shows the file's versions and says what loading did", async () => {
  const s = await inspectModel(path.resolve(repoRoot, "../shared/fixtures/models/ultraface-rfb-320.onnx"));
  assert.equal(s.irVersion, 4);
  assert.deepEqual(s.opsets, [{ domain: "ai.onnx", version: 9 }]);
  assert.deepEqual(s.inputs.map((i) => i.name), ["input"]);
  assert.deepEqual(s.outputs.map((o) => o.name), ["scores", "boxes"]);
  const warnings = s.warnings.join("\n");
  assert.match(warnings, /lists its 244 stored tensors \(weights and constants\) as graph inputs.*the exported model's inputs are "input" only/);
  assert.match(warnings, /operator set 9; Nibble converted it to 21.*rewriting Unsqueeze \(24x\), Softmax, Slice \(6x\)/);
  assert.ok(s.layers.length > 40);
});
