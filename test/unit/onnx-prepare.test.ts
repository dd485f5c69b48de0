import assert from "node:assert/strict";
import { after, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType, NodeProtoSchema, ValueInfoProtoSchema, type ModelProto } from "onnx-buf";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { foldBatchNorm } from "../../src-main/engine/onnx/batchnorm.ts";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { encodeModel, loadModel, type LoadedModel } from "../../src-main/engine/onnx/model-io.ts";
import { prepareModel, requireImageInput, type PreparedModel } from "../../src-main/engine/onnx/prepare.ts";
import { tensorToFloat32 } from "../../src-main/engine/onnx/tensor.ts";
import { ModelBuilder, randomInput, runOnnx, type WeightSource } from "../helpers/model-builder.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const shared = path.resolve(repoRoot, "../shared");
const tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-onnx-prepare-"));
after(() => rm(tmp, { recursive: true, force: true }));
let fileCount = 0;

async function loadBuilt(model: ModelProto | ModelBuilder): Promise<LoadedModel> {
  const file = path.join(tmp, `m${fileCount++}.onnx`);
  await writeFile(file, encodeModel(model instanceof ModelBuilder ? model.build() : model));
  return loadModel(file);
}

/** Runs the loaded and the prepared model on the same input; asserts they agree within 1e-4 relative. */
async function assertSameOutputs(loaded: LoadedModel, prepared: PreparedModel, dims: number[]): Promise<void> {
  const feeds = { [prepared.input.name]: { data: randomInput(dims.reduce((a, b) => a * b, 1), 5), dims } };
  const a = Object.values(await runOnnx(encodeModel(loaded.model), feeds))[0];
  const b = Object.values(await runOnnx(encodeModel(prepared.model), feeds))[0];
  assert.equal(a.length, b.length);
  const scale = Math.max(...a.map(Math.abs));
  const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  assert.ok(diff <= 1e-4 * scale, `max abs diff ${diff} vs output scale ${scale}`);
}

test("foldBatchNorm matches vectors/bn_folding.json within 1e-5 relative", async () => {
  const v = JSON.parse(await readFile(path.join(shared, "vectors/bn_folding.json"), "utf8"));
  const out = foldBatchNorm({
    weight: Float32Array.from(v.weight), weightDims: v.weight_shape, outAxis: 0, bias: null,
    gamma: v.gamma, beta: v.beta, mean: v.running_mean, variance: v.running_var, eps: v.eps,
  });
  const close = (got: ArrayLike<number>, want: number[]) =>
    want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= 1e-5 * Math.max(Math.abs(w), 1e-6), `${got[i]} vs ${w}`));
  close(out.weight, v.folded_weight);
  close(out.bias, v.folded_bias);
});

const BN_CASES: { name: string; build: (b: ModelBuilder) => ModelBuilder; dims: number[]; kind: string }[] = [
  { name: "conv + BN", build: (b) => b.conv({ out: 6 }).batchNorm(), dims: [2, 3, 8, 8], kind: "conv" },
  { name: "conv without bias + BN", build: (b) => b.conv({ out: 6, bias: false }).batchNorm(), dims: [2, 3, 8, 8], kind: "conv" },
  { name: "depthwise conv + BN", build: (b) => b.conv({ out: 3, groups: 3 }).batchNorm(), dims: [2, 3, 8, 8], kind: "depthwise" },
  { name: "depthwise x2 multiplier + BN", build: (b) => b.conv({ out: 6, groups: 3, bias: false }).batchNorm(), dims: [2, 3, 8, 8], kind: "depthwise" },
  { name: "grouped conv + BN", build: (b) => b.conv({ out: 4 }).conv({ out: 6, groups: 2 }).batchNorm(), dims: [2, 3, 8, 8], kind: "grouped" },
  { name: "gemm (transB=1) + BN", build: (b) => b.globalAveragePool().flatten().gemm({ out: 5 }).batchNorm(), dims: [2, 3, 8, 8], kind: "fc" },
  { name: "gemm (transB=0, no bias) + BN", build: (b) => b.globalAveragePool().flatten().gemm({ out: 5, transB: false, bias: false }).batchNorm(), dims: [2, 3, 8, 8], kind: "fc" },
];

for (const c of BN_CASES) {
  test(`${c.name} folds and gives the same onnxruntime output`, async () => {
    const b = c.build(new ModelBuilder({ opset: 13, seed: 21 }).input("x", ["N", 3, 8, 8])).relu().output();
    const loaded = await loadBuilt(b);
    const before = encodeModel(loaded.model);
    const prepared = prepareModel(loaded);
    assert.equal(prepared.foldedBatchNorms, 1);
    assert.deepEqual(prepared.unfoldedBatchNorms, []);
    assert.ok(!prepared.model.graph!.node.some((n) => n.opType === "BatchNormalization"));
    // The BN parameters are gone with it.
    assert.ok(!prepared.model.graph!.initializer.some((t) => t.name.startsWith("bn_")));
    const layer = prepared.layers.at(-1)!;
    assert.equal(layer.info.kind, c.kind);
    assert.equal(layer.info.halfRange, true, "conv -> BN -> Relu becomes conv -> Relu");
    assert.ok(layer.bias, "the folded layer has a bias");
    assert.deepEqual(encodeModel(loaded.model), before, "the loaded model is not modified");
    await assertSameOutputs(loaded, prepared, c.dims);
  });
}

test("gemm with beta != 1 and a [1, N] bias folds exactly", async () => {
  const b = new ModelBuilder({ opset: 13, seed: 4 }).input("x", [2, 3, 4, 4]).globalAveragePool().flatten().gemm({ out: 5 }).batchNorm().output();
  const model = b.build();
  const gemm = model.graph!.node.find((n) => n.opType === "Gemm")!;
  gemm.attribute.push(create(AttributeProtoSchema, { name: "beta", type: AttributeProto_AttributeType.FLOAT, f: 0.5 }));
  const bias = model.graph!.initializer.find((t) => t.name === gemm.input[2])!;
  bias.dims = [1n, 5n];
  const loaded = await loadBuilt(model);
  const prepared = prepareModel(loaded);
  assert.equal(prepared.foldedBatchNorms, 1);
  await assertSameOutputs(loaded, prepared, [2, 3, 4, 4]);
});

test("BatchNorms that cannot be folded stay in place and are reported", async () => {
  const b = new ModelBuilder({ opset: 13 }).input("x", [1, 3, 8, 8]).conv({ out: 4 });
  const conv = b.current;
  const afterRelu = b.relu().batchNorm({ name: "after_relu" }).current;
  b.from(conv).batchNorm({ name: "shared_input" }).add(afterRelu).output();
  const loaded = await loadBuilt(b);
  const prepared = prepareModel(loaded);
  assert.equal(prepared.foldedBatchNorms, 0);
  assert.deepEqual(
    prepared.unfoldedBatchNorms.map((u) => u.name),
    ["after_relu", "shared_input"],
  );
  assert.match(prepared.unfoldedBatchNorms[0].reason, /does not directly follow a Conv or Gemm/);
  assert.match(prepared.unfoldedBatchNorms[1].reason, /also used elsewhere/);
  assert.equal(prepared.model.graph!.node.filter((n) => n.opType === "BatchNormalization").length, 2);
  assert.ok(prepared.notes.some((w) => w.includes('"after_relu" was not folded')));
  await assertSameOutputs(loaded, prepared, [1, 3, 8, 8]);
});

for (const weights of ["constant", "identity", "transpose", "reshape"] as WeightSource[]) {
  test(`weights behind "${weights}" become initializers and layers are found`, async () => {
    const b = new ModelBuilder({ opset: 13, seed: 8 }).input("x", [1, 3, 8, 8]);
    b.conv({ out: 4, weights }).batchNorm().relu().globalAveragePool().flatten().gemm({ out: 3, weights }).relu().matmul({ out: 2, weights }).output();
    const loaded = await loadBuilt(b);
    const prepared = prepareModel(loaded);
    assert.equal(prepared.materializedWeights, 3);
    assert.equal(prepared.foldedBatchNorms, 1);
    assert.deepEqual(prepared.layers.map((l) => l.info.op), ["Conv", "Gemm", "MatMul"]);
    const inits = new Set(prepared.model.graph!.initializer.map((t) => t.name));
    for (const l of prepared.layers) assert.ok(inits.has(l.weight), `${l.weight} is an initializer`);
    const ops = new Set(prepared.model.graph!.node.map((n) => n.opType));
    for (const op of ["Constant", "Identity", "Transpose", "Reshape"]) assert.ok(!ops.has(op), `${op} removed`);
    // The stored source tensors (transposed / flat copies) are gone too.
    assert.ok(![...inits].some((n) => /_t_|_src_|_flat_|_shape_/.test(n)));
    await assertSameOutputs(loaded, prepared, [1, 3, 8, 8]);
  });
}

test("layer descriptions: kinds, layouts, axes, biases, groups", async () => {
  const b = new ModelBuilder({ opset: 17 }).input("x", [1, 4, 8, 8]);
  b.conv({ out: 8, name: "plain" }).conv({ out: 8, groups: 8, bias: false, name: "dw" }).conv({ out: 4, groups: 2, name: "grp" });
  b.globalAveragePool().flatten().gemm({ out: 6, transB: false, name: "g0" }).gemm({ out: 5, name: "g1" }).matmul({ out: 3, name: "mm" }).output();
  const p = prepareModel(await loadBuilt(b));
  const by = new Map(p.layers.map((l) => [l.info.name, l]));
  assert.deepEqual([...by.keys()], ["plain", "dw", "grp", "g0", "g1", "mm"]);
  const plain = by.get("plain")!;
  assert.deepEqual([plain.info.kind, plain.weightLayout, plain.weightAxis, plain.info.outChannels, plain.groups], ["conv", "OC_IC_K", 0, 8, 1]);
  assert.deepEqual(plain.info.weightShape, [8, 4, 3, 3]);
  assert.equal(plain.info.params, 8 * 4 * 9);
  assert.ok(plain.bias);
  const dw = by.get("dw")!;
  assert.deepEqual([dw.info.kind, dw.groups, dw.bias], ["depthwise", 8, null]);
  assert.deepEqual([by.get("grp")!.info.kind, by.get("grp")!.groups], ["grouped", 2]);
  const g0 = by.get("g0")!;
  assert.deepEqual([g0.info.kind, g0.weightLayout, g0.weightAxis, g0.info.outChannels], ["fc", "IC_OC", 1, 6]);
  const g1 = by.get("g1")!;
  assert.deepEqual([g1.weightLayout, g1.weightAxis, g1.info.outChannels], ["OC_IC", 0, 5]);
  const mm = by.get("mm")!;
  assert.deepEqual([mm.weightLayout, mm.weightAxis, mm.info.outChannels, mm.bias], ["IC_OC", 1, 3, null]);
  assert.deepEqual(p.layers.map((l) => l.info.role), ["first", "hidden", "hidden", "hidden", "hidden", "last"]);
  assert.equal(p.layers[0].input, "x");
  assert.equal(p.output, mm.output);
});

test("activations: a sole Relu, ReLU6 or Clip(0, b) reader makes a layer half-range; other Clip bounds are kept, LeakyRelu reported", async () => {
  const b = new ModelBuilder({ opset: 13 }).input("x", [1, 3, 8, 8]);
  b.conv({ out: 4, name: "relu6" }).clip(0, 6).conv({ out: 4, name: "clip" }).clip(-1, 1).conv({ out: 4, name: "leaky" }).leakyRelu(0.1);
  const c = b.conv({ out: 4, name: "shared" }).current;
  b.relu().add(c).conv({ out: 4, name: "relu" }).relu().conv({ out: 4, name: "out" }).output();
  const p = prepareModel(await loadBuilt(b));
  const act = Object.fromEntries(p.layers.map((l) => [l.info.name, [l.info.activation, l.info.halfRange, l.activationOutput !== null]]));
  assert.deepEqual(act, {
    relu6: ["relu6", true, true],
    clip: ["clip", false, true],
    leaky: ["leakyrelu", false, true],
    shared: ["none", false, false],
    relu: ["relu", true, true],
    out: ["none", false, false],
  });
  const relu = p.layers.find((l) => l.info.name === "relu")!;
  const reader = p.model.graph!.node.find((n) => n.input[0] === relu.output)!;
  assert.equal(reader.opType, "Relu");
  assert.equal(relu.activationOutput, reader.output[0]);
  assert.deepEqual(p.layers.find((l) => l.info.name === "clip")!.info.activationClamp, [-1, 1]);
  assert.deepEqual(p.layers.find((l) => l.info.name === "relu6")!.info.activationClamp, [0, 6]);
  // A single layer feeding the output is both first and last; "first" wins the role.
  assert.equal(p.layers[0].info.role, "first");
  assert.equal(p.layers.at(-1)!.isLast, true);
});

test("unnamed and duplicate layer names get stable generated names written onto the nodes", async () => {
  const b = new ModelBuilder({ opset: 13 }).input("x", [1, 3, 8, 8]).conv({ out: 4, name: "" }).conv({ out: 4, name: "dup" }).conv({ out: 4, name: "dup" }).output();
  const loaded = await loadBuilt(b);
  const p1 = prepareModel(loaded);
  const p2 = prepareModel(loaded);
  const names = p1.layers.map((l) => l.info.name);
  assert.deepEqual(names, p2.layers.map((l) => l.info.name));
  assert.equal(new Set(names).size, 3);
  assert.deepEqual(names.slice(0, 2), ["Conv_0", "dup"]);
  for (const l of p1.layers) assert.ok(p1.model.graph!.node.some((n) => n.name === l.info.name));
  assert.equal(loaded.model.graph!.node[0].name, "", "the loaded model keeps its empty name");
});

const RESNETS = [["resnet20", 3], ["resnet32", 5], ["resnet44", 7], ["resnet56", 9]] as const;
for (const [name, blocks] of RESNETS) {
  test(`${name}: ${6 * blocks + 1} convs + 1 Gemm, half-range exactly as ALGORITHMS.md §5.3`, async () => {
    const p = prepareModel(await loadModel(path.join(shared, `fixtures/models/${name}-cifar10.onnx`)));
    const convs = p.layers.filter((l) => l.info.op === "Conv");
    assert.equal(convs.length, 6 * blocks + 1);
    assert.deepEqual(p.layers.filter((l) => l.info.op !== "Conv").map((l) => [l.info.op, l.info.name]), [["Gemm", "/linear/Gemm"]]);
    assert.equal(p.foldedBatchNorms, 0);
    for (const l of convs) {
      const stem = l.info.name === "/conv1/Conv";
      const first = /\/conv1\/Conv$/.test(l.info.name);
      const second = /\/conv2\/Conv$/.test(l.info.name);
      assert.ok(first || second, l.info.name);
      assert.equal(l.info.halfRange, first, `${l.info.name}: half-range iff the stem or a block's first conv`);
      assert.equal(l.info.role, stem ? "first" : "hidden");
    }
    const fc = p.layers.at(-1)!;
    assert.deepEqual([fc.info.role, fc.info.halfRange, fc.weightAxis, fc.output], ["last", false, 0, "logits"]);
    assert.deepEqual(
      [p.input.name, p.input.layout, p.input.channels, p.input.height, p.input.width, p.input.fixedBatch],
      ["input", "NCHW", 3, 32, 32, null],
    );
    assert.equal(p.output, "logits");
  });
}

test("resnet20: prepared model is the same network", async () => {
  const loaded = await loadModel(path.join(shared, "fixtures/models/resnet20-cifar10.onnx"));
  const prepared = prepareModel(loaded);
  assert.deepEqual(encodeModel(prepared.model), encodeModel(loaded.model));
  const w = prepared.model.graph!.initializer.find((t) => t.name === prepared.layers[0].weight)!;
  assert.equal(tensorToFloat32(w).length, 16 * 3 * 3 * 3);
});

test("input layout: NHWC through Transpose, NCHW by shape, unknown for other ranks", async () => {
  const nhwc = prepareModel(await loadBuilt(new ModelBuilder().input("img", ["batch", 24, 32, 3]).transpose([0, 3, 1, 2]).conv({ out: 4 }).output()));
  assert.deepEqual([nhwc.input.layout, nhwc.input.channels, nhwc.input.height, nhwc.input.width], ["NHWC", 3, 24, 32]);
  assert.deepEqual(requireImageInput(nhwc), { name: "img", layout: "NHWC", channels: 3, height: 24, width: 32, fixedBatch: null });

  const gray = prepareModel(await loadBuilt(new ModelBuilder().input("x", [4, 1, 28, 28]).conv({ out: 4 }).output()));
  assert.deepEqual([gray.input.layout, gray.input.channels, gray.input.fixedBatch], ["NCHW", 1, 4]);

  // No Conv/Transpose reachable: the shape alone decides.
  const byShape = prepareModel(await loadBuilt(new ModelBuilder().input("x", [1, 16, 16, 4]).relu().output()));
  assert.equal(byShape.input.layout, "NHWC");

  const flat = prepareModel(await loadBuilt(new ModelBuilder().input("x", [1, 12]).gemm({ out: 3 }).output()));
  assert.equal(flat.input.layout, null);
  assert.throws(() => requireImageInput(flat), (e: unknown) => e instanceof ModelError && /cannot read as a batch of images/.test(e.message));
});

test("IR 3 models (initializers listed as inputs): they are constants, before and after folding", async () => {
  const model = new ModelBuilder({ opset: 11, irVersion: 3 }).input("x", [1, 3, 8, 8]).conv({ out: 4, bias: false }).batchNorm().relu().output().build();
  const g = model.graph!;
  for (const t of g.initializer) {
    const dim = t.dims.map((d) => ({ value: { case: "dimValue" as const, value: d } }));
    g.input.push(create(ValueInfoProtoSchema, { name: t.name, type: { value: { case: "tensorType", value: { elemType: t.dataType, shape: { dim } } } } }));
  }
  const loaded = await loadBuilt(model);
  const p = prepareModel(loaded);
  assert.equal(p.input.name, "x");
  assert.deepEqual(p.model.graph!.input.map((v) => v.name), ["x"], "no initializer is a graph input");
  assert.ok(!p.model.graph!.initializer.some((t) => t.name.startsWith("bn_")), "the folded BatchNorm's parameters are gone");
  assert.ok(p.layers[0].bias);
  await assertSameOutputs(loaded, p, [1, 3, 8, 8]);
});

test("a custom-domain node is not a layer and does not break preparation", async () => {
  const model = new ModelBuilder().input("x", [1, 3, 8, 8]).conv({ out: 4 }).output().build();
  model.graph!.node.push(create(NodeProtoSchema, { opType: "Conv", domain: "com.example", input: [model.graph!.output[0].name, model.graph!.node[0].input[1]], output: ["y2"] }));
  model.opsetImport.push({ $typeName: "onnx.OperatorSetIdProto", domain: "com.example", version: 1n });
  const p = prepareModel(await loadBuilt(model));
  assert.equal(p.layers.length, 1);
});
