import assert from "node:assert/strict";
import { after, test } from "node:test";
import { clone, create, equals } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType as AT, ModelProtoSchema, NodeProtoSchema, TensorProto_DataLocation, TensorProto_DataType as DT, ValueInfoProtoSchema, type ModelProto, type ValueInfoProto } from "onnx-buf";
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { atomicWrite, encodeModel, loadModel, saveModelAtomic } from "../../src-main/engine/onnx/model-io.ts";
import { float32Tensor, int64Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { externalize, ModelBuilder, mulberry32, randomInput, runOnnx } from "../helpers/model-builder.ts";

const repoRoot = path.resolve(import.meta.dirname, "../..");
const models = path.resolve(repoRoot, "../shared/fixtures/models");
const FIXTURES = ["resnet20", "resnet32", "resnet44", "resnet56"].map((n) => path.join(models, `${n}-cifar10.onnx`));

const tmpRoot = await mkdtemp(path.join(os.tmpdir(), "nibble-onnx-io-"));
after(() => rm(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;
async function tempDir(): Promise<string> {
  const dir = path.join(tmpRoot, String(dirCount++));
  await mkdir(dir);
  return dir;
}

// At opset 21 loading changes nothing, so these tests can ask for byte-exact round trips.
function smallModel(): ModelBuilder {
  return new ModelBuilder({ opset: 21, seed: 11 })
    .input("x", ["N", 3, 8, 8])
    .conv({ out: 4 })
    .relu()
    .globalAveragePool()
    .flatten()
    .gemm({ out: 3 })
    .output();
}

function valueInfo(name: string, dims: number[]): ValueInfoProto {
  const dim = dims.map((d) => ({ value: { case: "dimValue" as const, value: BigInt(d) } }));
  return create(ValueInfoProtoSchema, { name, type: { value: { case: "tensorType", value: { elemType: DT.FLOAT, shape: { dim } } } } });
}

async function rejectsModelError(p: Promise<unknown>, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ModelError, `expected ModelError, got ${String(err)}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

for (const file of FIXTURES) {
  test(`${path.basename(file)} loads at opset 21 with nothing else changed, and saves byte-exact`, async () => {
    const original = await readFile(file);
    const loaded = await loadModel(file);
    assert.deepEqual(loaded.declared, { irVersion: 7, opset: 13, opsets: [{ domain: "ai.onnx", version: 13 }] });
    assert.equal(loaded.irVersion, 10);
    assert.equal(loaded.opset, 21);
    assert.equal(loaded.conversion.rewritten.size, 0, "Slice-13 and Pad-13 mean the same at 21");
    assert.equal(loaded.fileBytes, original.length);
    assert.equal(loaded.externalBytes, 0);
    const back = clone(ModelProtoSchema, loaded.model);
    back.irVersion = 7n;
    back.opsetImport[0].version = 13n;
    assert.deepEqual(Buffer.from(encodeModel(back)), original, "only the two version numbers differ");
    const out = path.join(await tempDir(), "copy.onnx");
    const bytes = encodeModel(loaded.model);
    assert.equal(await saveModelAtomic(loaded.model, out), bytes.length);
    assert.deepEqual(await readFile(out), Buffer.from(bytes));
  });
}

test("names, metadata, doc strings, opsets and value infos survive a save and load", async () => {
  const model = smallModel().build();
  model.docString = "a doc string";
  model.modelVersion = 42n;
  model.domain = "org.example";
  model.producerVersion = "9.9";
  model.metadataProps.push({ $typeName: "onnx.StringStringEntryProto", key: "author", value: "tests" });
  model.opsetImport.push({ $typeName: "onnx.OperatorSetIdProto", domain: "com.example", version: 2n });
  model.graph!.docString = "graph doc";
  model.graph!.valueInfo.push(clone(ModelProtoSchema, model).graph!.output[0]);
  model.graph!.valueInfo[0].name = model.graph!.node[0].output[0];
  model.graph!.node[0].docString = "first node";
  const file = path.join(await tempDir(), "meta.onnx");
  await saveModelAtomic(model, file);
  const back = (await loadModel(file)).model;
  assert.ok(equals(ModelProtoSchema, back, model));
  assert.equal(back.graph!.valueInfo[0].name, model.graph!.node[0].output[0]);
  assert.deepEqual(back.metadataProps.map((p) => [p.key, p.value]), [["author", "tests"]]);
  assert.deepEqual(back.opsetImport.map((o) => [o.domain, o.version]), [["", 21n], ["com.example", 2n]]);
  assert.equal(back.graph!.node[0].docString, "first node");
  assert.equal(back.graph!.node[0].name, model.graph!.node[0].name);
});

async function writeExternalModel(dir: string, bin = "weights.bin", location = bin): Promise<{ file: string; reference: Uint8Array }> {
  const model = smallModel().build();
  const reference = encodeModel(model);
  const data = externalize(model, location);
  await mkdir(path.dirname(path.join(dir, bin)), { recursive: true });
  await writeFile(path.join(dir, bin), data);
  const file = path.join(dir, "model.onnx");
  await writeFile(file, encodeModel(model));
  return { file, reference };
}

test("external data is read into the tensors and the model runs the same", async () => {
  const dir = await tempDir();
  const { file, reference } = await writeExternalModel(dir, "data/weights.bin");
  const loaded = await loadModel(file);
  assert.ok(loaded.externalBytes > 0);
  for (const t of loaded.model.graph!.initializer) {
    assert.equal(t.dataLocation, TensorProto_DataLocation.DEFAULT);
    assert.equal(t.externalData.length, 0);
  }
  assert.ok(Buffer.from(encodeModel(loaded.model)).equals(reference));
  const feeds = { x: { data: randomInput(192), dims: [1, 3, 8, 8] } };
  assert.deepEqual(await runOnnx(encodeModel(loaded.model), feeds), await runOnnx(reference, feeds));
});

test("missing external data is refused", async () => {
  const dir = await tempDir();
  const { file } = await writeExternalModel(dir);
  await rm(path.join(dir, "weights.bin"));
  await rejectsModelError(loadModel(file), /Could not find the external data/);
});

test("truncated external data is refused", async () => {
  const dir = await tempDir();
  const { file } = await writeExternalModel(dir);
  const size = (await stat(path.join(dir, "weights.bin"))).size;
  await truncate(path.join(dir, "weights.bin"), size - 10);
  await rejectsModelError(loadModel(file), /too short/);
});

test("external data locations outside the model's folder are refused", async () => {
  for (const location of ["../../etc/passwd", "/etc/passwd", "sub/../../x.bin", "..\\x.bin", "C:\\x.bin"]) {
    const dir = await tempDir();
    const model = smallModel().build();
    externalize(model, location);
    const file = path.join(dir, "model.onnx");
    await writeFile(file, encodeModel(model));
    await rejectsModelError(loadModel(file), /outside the model's folder/);
  }
  // A symbolic link inside the folder that points elsewhere is refused too.
  const outside = await tempDir();
  const dir = await tempDir();
  const { file } = await writeExternalModel(outside);
  await rename(path.join(outside, "weights.bin"), path.join(outside, "real.bin"));
  await symlink(path.join(outside, "real.bin"), path.join(dir, "weights.bin"));
  await rename(file, path.join(dir, "model.onnx"));
  await rejectsModelError(loadModel(path.join(dir, "model.onnx")), /outside the model's folder/);
});

test("an external length that disagrees with the tensor shape is refused", async () => {
  const dir = await tempDir();
  const model = smallModel().build();
  const data = externalize(model, "w.bin");
  model.graph!.initializer[0].externalData[2].value = "4";
  await writeFile(path.join(dir, "w.bin"), data);
  await writeFile(path.join(dir, "m.onnx"), encodeModel(model));
  await rejectsModelError(loadModel(path.join(dir, "m.onnx")), /external data is 4 bytes/);
});

test("empty, random and truncated files give a ModelError, never a crash", async () => {
  const dir = await tempDir();
  const empty = path.join(dir, "empty.onnx");
  await writeFile(empty, new Uint8Array(0));
  await rejectsModelError(loadModel(empty), /empty/);
  const r = mulberry32(99);
  for (let k = 0; k < 20; k++) {
    const junk = path.join(dir, `junk${k}.onnx`);
    await writeFile(junk, Uint8Array.from({ length: 1 + Math.floor(r() * 4096) }, () => Math.floor(r() * 256)));
    await rejectsModelError(loadModel(junk));
  }
  const original = await readFile(FIXTURES[0]);
  for (const fraction of [0.1, 0.5, 0.99]) {
    const cut = path.join(dir, `cut${fraction}.onnx`);
    await writeFile(cut, original.subarray(0, Math.floor(original.length * fraction)));
    await rejectsModelError(loadModel(cut));
  }
  // Cut exactly after the graph: the model decodes but has no opset.
  const model = (await loadModel(FIXTURES[0])).model;
  model.opsetImport = [];
  const noOpset = path.join(dir, "noopset.onnx");
  await writeFile(noOpset, encodeModel(model));
  await rejectsModelError(loadModel(noOpset), /operator set/);
});

test("missing files and folders give a ModelError", async () => {
  const dir = await tempDir();
  await rejectsModelError(loadModel(path.join(dir, "nope.onnx")), /Could not find/);
  await rejectsModelError(loadModel(dir), /is a folder/);
  await rejectsModelError(loadModel(FIXTURES[0], { maxBytes: 1000 }), /more than/);
});

test("opsets outside 7..21 and IR versions below 3 are refused; IR 3 is read with a note", async () => {
  const dir = await tempDir();
  const write = async (name: string, edit: (m: ModelProto) => void) => {
    const m = smallModel().build();
    edit(m);
    const file = path.join(dir, name);
    await writeFile(file, encodeModel(m));
    return file;
  };
  await rejectsModelError(loadModel(await write("o6.onnx", (m) => (m.opsetImport[0].version = 6n))), /operator set 6; Nibble reads operator sets 7 to 21/);
  await rejectsModelError(loadModel(await write("o22.onnx", (m) => (m.opsetImport[0].version = 22n))), /operator set 22/);
  await rejectsModelError(loadModel(await write("ir2.onnx", (m) => (m.irVersion = 2n))), /IR version 2/);
  const ir3 = await loadModel(await write("ir3.onnx", (m) => (m.irVersion = 3n)));
  assert.equal(ir3.irVersion, 3);
  assert.match(ir3.notes.join(" "), /IR version 3/);
  const ai = await loadModel(await write("ai.onnx", (m) => (m.opsetImport[0].domain = "ai.onnx")));
  assert.equal(ai.declared.opset, 21);
});

test("absurd tensor sizes are refused before anything is allocated", async () => {
  const dir = await tempDir();
  const huge = smallModel().build();
  huge.graph!.initializer.push(float32Tensor("huge", [1], [0]));
  huge.graph!.initializer.at(-1)!.dims = [1n << 20n, 1n << 20n];
  await writeFile(path.join(dir, "huge.onnx"), encodeModel(huge));
  await rejectsModelError(loadModel(path.join(dir, "huge.onnx")), /tensor "huge" claims/);
  const short = smallModel().build();
  short.graph!.initializer[0].dims = [64n, 64n];
  await writeFile(path.join(dir, "short.onnx"), encodeModel(short));
  await rejectsModelError(loadModel(path.join(dir, "short.onnx")), /holds \d+ bytes/);
  const ext = smallModel().build();
  externalize(ext, "w.bin");
  ext.graph!.initializer[0].dims = [1n << 40n];
  await writeFile(path.join(dir, "w.bin"), new Uint8Array(16));
  await writeFile(path.join(dir, "ext.onnx"), encodeModel(ext));
  await rejectsModelError(loadModel(path.join(dir, "ext.onnx")), /more than Nibble can hold/);
});

test("a graph whose operators are out of order is refused", async () => {
  const dir = await tempDir();
  const m = smallModel().build();
  m.graph!.node.reverse();
  await writeFile(path.join(dir, "rev.onnx"), encodeModel(m));
  await rejectsModelError(loadModel(path.join(dir, "rev.onnx")), /out of order/);
});

test("saveModelAtomic replaces an existing file and leaves no temp files", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "out.onnx");
  await writeFile(file, "old contents");
  const model = smallModel().build();
  await saveModelAtomic(model, file);
  assert.deepEqual(await readFile(file), Buffer.from(encodeModel(model)));
  assert.deepEqual(await readdir(dir), ["out.onnx"]);
});

test("a failed save leaves what was at the path untouched and removes its temp file", async () => {
  const model = smallModel().build();
  // The target is a folder: the final rename fails after the temp file was written.
  const dir = await tempDir();
  const target = path.join(dir, "taken.onnx");
  await mkdir(target);
  await writeFile(path.join(target, "keep.txt"), "keep");
  await rejectsModelError(saveModelAtomic(model, target), /a folder with that name/);
  assert.deepEqual(await readdir(dir), ["taken.onnx"]);
  assert.equal(await readFile(path.join(target, "keep.txt"), "utf8"), "keep");
  // An existing file whose name leaves no room for the temp name: creating the temp file fails.
  const long = path.join(dir, `${"m".repeat(240)}.onnx`);
  await writeFile(long, "previous model");
  await rejectsModelError(saveModelAtomic(model, long), /Could not save/);
  assert.equal(await readFile(long, "utf8"), "previous model");
  assert.equal((await readdir(dir)).length, 2);
  // A folder that does not exist.
  await rejectsModelError(atomicWrite(path.join(dir, "missing", "x.onnx"), new Uint8Array(4)), /does not exist/);
  // A model that cannot be encoded never touches the file.
  const bad = create(ModelProtoSchema, { irVersion: 7n });
  (bad as unknown as { irVersion: unknown }).irVersion = "not a number";
  await assert.rejects(saveModelAtomic(bad, long));
  assert.equal(await readFile(long, "utf8"), "previous model");
});

// ---- what loading normalizes: initializers listed as inputs, old opsets ---------------------------

/** The model with every initializer also declared as a graph input, as exporters did before IR 4. */
function listInitializersAsInputs(model: ModelProto): ModelProto {
  for (const t of model.graph!.initializer) {
    const dim = t.dims.map((d) => ({ value: { case: "dimValue" as const, value: d } }));
    model.graph!.input.push(create(ValueInfoProtoSchema, { name: t.name, type: { value: { case: "tensorType", value: { elemType: t.dataType, shape: { dim } } } } }));
  }
  return model;
}

test("initializers also listed as graph inputs become constants; the model computes the same", async () => {
  for (const irVersion of [3, 4, 7]) {
    const model = listInitializersAsInputs(new ModelBuilder({ opset: 11, seed: 3, irVersion }).input("x", [2, 3, 8, 8]).conv({ out: 4 }).batchNorm().relu().output().build());
    const count = model.graph!.initializer.length;
    const file = path.join(await tempDir(), "listed.onnx");
    await writeFile(file, encodeModel(model));
    const loaded = await loadModel(file);
    assert.deepEqual(loaded.model.graph!.input.map((v) => v.name), ["x"]);
    assert.equal(loaded.initializerInputs.length, count);
    assert.equal(loaded.declared.irVersion, irVersion);
    assert.match(loaded.notes.join("\n"), new RegExp(`lists its ${count} stored tensors .* as graph inputs.*the exported model's inputs are "x" only`));
    // as constants, onnxruntime folds the BatchNormalization into the Conv, which reorders float sums
    const feeds = { x: { data: randomInput(2 * 3 * 64), dims: [2, 3, 8, 8] } };
    const [a, b] = [Object.values(await runOnnx(encodeModel(loaded.model), feeds))[0], Object.values(await runOnnx(encodeModel(model), feeds))[0]];
    assert.equal(a.length, b.length);
    assert.ok(a.every((v, i) => Math.abs(v - b[i]) <= 1e-5), "equal within 1e-5");
  }
});

test("an old-opset model is converted at load; the declared versions are kept for display", async () => {
  const model = create(ModelProtoSchema, {
    irVersion: 4n,
    opsetImport: [{ domain: "", version: 9n }],
    graph: {
      name: "old",
      node: [
        { opType: "Slice", input: ["x"], output: ["s"], attribute: [
          { name: "starts", type: AT.INTS, ints: [1n] }, { name: "ends", type: AT.INTS, ints: [3n] }, { name: "axes", type: AT.INTS, ints: [1n] },
        ] },
        { opType: "Softmax", input: ["s"], output: ["y"] },
      ],
      input: [valueInfo("x", [2, 4])],
      output: [valueInfo("y", [2, 2])],
    },
  });
  const file = path.join(await tempDir(), "old.onnx");
  await writeFile(file, encodeModel(model));
  const loaded = await loadModel(file);
  assert.deepEqual([loaded.opset, loaded.irVersion, loaded.declared.opset, loaded.declared.irVersion], [21, 10, 9, 4]);
  assert.deepEqual([...loaded.conversion.rewritten], [["Slice", 1], ["Softmax", 1]]);
  assert.match(loaded.notes.join("\n"), /operator set 9; Nibble converted it to 21, which the 4-bit format needs, rewriting Slice, Softmax/);
  const feeds = { x: { data: randomInput(8), dims: [2, 4] } };
  assert.deepEqual(await runOnnx(encodeModel(loaded.model), feeds), await runOnnx(encodeModel(model), feeds));
});

test("a model the converter cannot carry to opset 21 is refused with the file's name", async () => {
  const model = smallModel().build();
  model.opsetImport[0].version = 9n;
  model.irVersion = 4n;
  model.graph!.node.splice(1, 0, create(NodeProtoSchema, { name: "odd", opType: "Crop", input: [model.graph!.node[0].output[0]], output: ["cropped"] }));
  model.graph!.node[2].input[0] = "cropped";
  const file = path.join(await tempDir(), "crop.onnx");
  await writeFile(file, encodeModel(model));
  await rejectsModelError(loadModel(file), new RegExp(`^"${file}" cannot be converted from ONNX operator set 9 to 21.*Crop "odd" is an experimental operator`));
});

// ---- broken contents: non-finite and empty parameters, impossible inputs ---------------------------

async function loadEdited(edit: (m: ModelProto) => void): Promise<unknown> {
  const model = smallModel().build();
  edit(model);
  const file = path.join(await tempDir(), "edited.onnx");
  await writeFile(file, encodeModel(model));
  return loadModel(file).then(() => null, (e: unknown) => e);
}

function weight(model: ModelProto, prefix: string) {
  return model.graph!.initializer.find((t) => t.name.startsWith(prefix))!;
}

function poke(t: { rawData: Uint8Array }, index: number, value: number): void {
  new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength).setFloat32(4 * index, value, true);
}

test("non-finite layer parameters are refused, naming the layer and the tensor", async () => {
  const nan = await loadEdited((m) => {
    poke(weight(m, "conv_w"), 3, NaN);
    poke(weight(m, "conv_w"), 5, Infinity);
  });
  assert.ok(nan instanceof ModelError);
  assert.match(nan.message, /is damaged: Conv "conv_\d+" has 1 NaN and 1 infinite value among the 108 values of its weights "conv_w_\d+"; a trained model has none.*Export the model again from a checkpoint whose weights are all finite numbers/);
  const bias = await loadEdited((m) => poke(weight(m, "fc_b"), 0, -Infinity));
  assert.ok(bias instanceof ModelError);
  assert.match(bias.message, /Gemm "gemm_\d+" has 1 infinite value among the 3 values of its parameter "fc_b_\d+"/);
});

test("NaN in any other constant is refused; infinities there are allowed (masks and bounds use them)", async () => {
  const withConstant = (value: number) => (m: ModelProto) => {
    const g = m.graph!;
    g.initializer.push(float32Tensor("offset", [1], [value]));
    const last = g.node.at(-1)!;
    const out = last.output[0];
    last.output[0] = "pre_offset";
    g.node.push(create(NodeProtoSchema, { name: "shift", opType: "Add", input: ["pre_offset", "offset"], output: [out] }));
  };
  const nan = await loadEdited(withConstant(NaN));
  assert.ok(nan instanceof ModelError);
  assert.match(nan.message, /the constant "offset" holds 1 NaN among its 1 values, which turns the outputs into NaN/);
  assert.equal(await loadEdited(withConstant(-Infinity)), null);
});

test("a layer with no channels is refused", async () => {
  const empty = await loadEdited((m) => {
    const w = weight(m, "conv_w");
    const i = m.graph!.initializer.indexOf(w);
    m.graph!.initializer[i] = float32Tensor(w.name, [0, 3, 3, 3], []);
  });
  assert.ok(empty instanceof ModelError);
  assert.match(empty.message, /is damaged: Conv "conv_\d+" has no output channels: its weights "conv_w_\d+" have shape 0 x 3 x 3 x 3, with no values at all.*Export the model again/);
});

test("a declared input too large to allocate is refused; a dynamic one is not judged", async () => {
  const huge = await loadEdited((m) => {
    const t = m.graph!.input[0].type!.value;
    assert.ok(t.case === "tensorType");
    t.value.shape!.dim = [1, 3, 100_000, 100_000].map((d) => ({ $typeName: "onnx.TensorShapeProto.Dimension" as const, denotation: "", value: { case: "dimValue" as const, value: BigInt(d) } }));
  });
  assert.ok(huge instanceof ModelError);
  assert.match(huge.message, /cannot be run: its input "x" has the fixed shape \[1, 3, 100000, 100000\]: 30,000,000,000 values \(112 GB as float32\) for one image, more than Nibble can allocate.*re-export the model with the input size it was trained for/);
});

test("a conversion that meets a tensor of the wrong type names the file", async () => {
  const model = create(ModelProtoSchema, {
    irVersion: 5n,
    opsetImport: [{ domain: "", version: 10n }],
    graph: {
      name: "resize",
      node: [{ opType: "Resize", input: ["x", "scales"], output: ["y"] }],
      initializer: [int64Tensor("scales", [4], [1, 1, 2, 2])],
      input: [valueInfo("x", [1, 1, 2, 2])],
      output: [valueInfo("y", [1, 1, 4, 4])],
    },
  });
  const file = path.join(await tempDir(), "int-scales.onnx");
  await writeFile(file, encodeModel(model));
  await rejectsModelError(loadModel(file), new RegExp(`^"${file}" cannot be converted from ONNX operator set 10 to 21: Tensor "scales" holds int64 values, not floating point numbers\\. The file is damaged`));
});
