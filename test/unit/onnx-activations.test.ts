// Bounded activations are found with the range they give (issue 8): inspect used to call every Clip(0, 6)
// "relu6, signed" and knew no Clip with other bounds, HardSigmoid, HardSwish, Sigmoid, Tanh or PRelu.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType } from "onnx-buf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { formatSummary, inspectModel } from "../../src-main/engine/onnx/inspect.ts";
import { encodeModel, loadModel } from "../../src-main/engine/onnx/model-io.ts";
import { prepareModel } from "../../src-main/engine/onnx/prepare.ts";
import { ModelBuilder } from "../helpers/model-builder.ts";

const tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-activations-"));
after(() => rm(tmp, { recursive: true, force: true }));
let n = 0;
async function prepared(b: ModelBuilder, patch?: (m: ReturnType<ModelBuilder["build"]>) => void) {
  const m = b.build();
  patch?.(m);
  const file = path.join(tmp, `m${n++}.onnx`);
  await writeFile(file, encodeModel(m));
  return { file, p: prepareModel(await loadModel(file)) };
}

test("every bounded activation is found with its clamp and output range", async () => {
  const b = new ModelBuilder({ opset: 14 }).input("x", [1, 3, 8, 8]);
  b.conv({ out: 4, name: "relu6" }).clip(0, 6);
  b.conv({ out: 4, name: "clip" }).clip(-1, 2);
  b.conv({ out: 4, name: "clip0" }).clip(0, 4);
  b.conv({ out: 4, name: "hsig" }).act("HardSigmoid", { alpha: 0.25, beta: 0.5 });
  b.conv({ out: 4, name: "hswish" }).act("HardSwish");
  b.conv({ out: 4, name: "sig" }).act("Sigmoid");
  b.conv({ out: 4, name: "tanh" }).act("Tanh");
  b.conv({ out: 4, name: "leaky" }).leakyRelu(0.1);
  const slope = b.constant("slope", [4, 1, 1], [0.2, 0.2, 0.2, 0.2]);
  b.conv({ out: 4, name: "prelu" }).act("PRelu", {}, [slope]);
  // HardSwish as converters before opset 14 write it: x · HardSigmoid(x; 1/6, 1/2)
  const x = b.conv({ out: 4, name: "hswish2" }).current;
  const hs = b.act("HardSigmoid", { alpha: 1 / 6, beta: 0.5 }).current;
  b.from(x).mul(hs).conv({ out: 4, name: "out" }).output();
  const { p } = await prepared(b);
  const got = Object.fromEntries(p.layers.map((l) => [l.info.name, [l.info.activation, l.info.halfRange, l.info.activationClamp, l.info.activationRange]]));
  assert.deepEqual(got, {
    relu6: ["relu6", true, [0, 6], [0, 6]],
    clip: ["clip", false, [-1, 2], [-1, 2]],
    clip0: ["clip", true, [0, 4], [0, 4]],
    hsig: ["hardsigmoid", false, [-2, 2], [0, 1]],
    hswish: ["hardswish", false, [-3, null], [-0.375, null]],
    sig: ["sigmoid", false, [null, null], [0, 1]],
    tanh: ["tanh", false, [null, null], [-1, 1]],
    leaky: ["leakyrelu", false, [null, null], [null, null]],
    prelu: ["prelu", false, [null, null], [null, null]],
    hswish2: ["hardswish", false, [-3, null], [-0.375, null]],
    out: ["none", false, [null, null], [null, null]],
  });
  // the pattern's output is the Mul's, the tensor the next layer reads
  const hs2 = p.layers.find((l) => l.info.name === "hswish2")!;
  assert.equal(p.model.graph!.node.find((nd) => nd.output[0] === hs2.activationOutput)!.opType, "Mul");
});

test("Clip with attributes (opset < 11) and without a lower bound", async () => {
  const b = new ModelBuilder({ opset: 11 }).input("x", [1, 3, 8, 8]);
  b.conv({ out: 4, name: "relu6" }).act("Clip");
  b.conv({ out: 4, name: "upper" }).act("Clip");
  b.conv({ out: 4, name: "out" }).output();
  const { p } = await prepared(b, (m) => {
    m.opsetImport[0].version = 10n;
    const clips = m.graph!.node.filter((nd) => nd.opType === "Clip");
    const f = (name: string, v: number) => create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: v });
    clips[0].attribute = [f("min", 0), f("max", 6)];
    clips[1].attribute = [f("max", 3)];
  });
  const by = new Map(p.layers.map((l) => [l.info.name, l.info]));
  assert.deepEqual([by.get("relu6")!.activation, by.get("relu6")!.activationClamp], ["relu6", [0, 6]]);
  assert.deepEqual([by.get("upper")!.activation, by.get("upper")!.activationClamp, by.get("upper")!.halfRange], ["clip", [null, 3], false]);
});

test("a Clip whose bounds are computed while running is not taken for a bounded activation", async () => {
  const b = new ModelBuilder({ opset: 13 }).input("x", [1, 3, 8, 8]);
  const lo = b.conv({ out: 4, name: "other" }).current;
  b.conv({ out: 4, name: "dyn" }).act("Clip", {}, [lo]);
  b.conv({ out: 4, name: "out" }).output();
  const { p } = await prepared(b);
  assert.equal(p.layers.find((l) => l.info.name === "dyn")!.info.activation, "none");
});

test("inspect says what it found: MobileNet's Clip(0, 6) is relu6 from 0 to 6, not signed", async () => {
  const file = path.resolve(import.meta.dirname, "../../../shared/fixtures/models/mobilenet_v1_0.75_224-imagenet.onnx");
  const text = formatSummary(await inspectModel(file));
  const rows = text.split("\n").filter((l) => /^\s+\d+\s+Conv_/.test(l));
  assert.equal(rows.length, 28);
  for (const r of rows.slice(0, 27)) assert.match(r, /relu6\s+0 to 6\s/);
  assert.doesNotMatch(text, /relu6\s+signed/);
});
