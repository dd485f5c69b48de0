import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorProtoSchema, TensorProto_DataType as DT } from "onnx-buf";
import {
  dataTypeLabel,
  dataTypeName,
  float32Tensor,
  halfToFloat,
  int64Tensor,
  packedIntTensor,
  rawByteLength,
  tensorElementCount,
  tensorStorageProblem,
  tensorToFloat32,
  tensorToIntegers,
  unpackIntTensor,
} from "../../src-main/engine/onnx/tensor.ts";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { mulberry32, runOnnx } from "../helpers/model-builder.ts";

test("INT4 packs two per byte, lower index in the low nibble", () => {
  const t = packedIntTensor("q", [3], Int8Array.from([1, -1, -8]), "INT4");
  assert.equal(t.dataType, DT.INT4);
  assert.deepEqual([...t.rawData], [0xf1, 0x08]);
  const u = packedIntTensor("u", [2, 2], Uint8Array.from([1, 2, 3, 15]), "UINT4");
  assert.deepEqual([...u.rawData], [0x21, 0xf3]);
});

test("INT4/UINT4/INT8/UINT8 unpack to the codes they were packed from", () => {
  const r = mulberry32(5);
  for (const [type, lo, hi] of [["INT4", -8, 7], ["UINT4", 0, 15], ["INT8", -128, 127], ["UINT8", 0, 255]] as const) {
    for (const n of [1, 2, 7, 64]) {
      const codes = lo < 0 ? new Int8Array(n) : new Uint8Array(n);
      for (let i = 0; i < n; i++) codes[i] = lo + Math.floor(r() * (hi - lo + 1));
      const t = packedIntTensor("t", [n], codes, type);
      assert.equal(t.rawData.length, type.endsWith("4") ? Math.ceil(n / 2) : n);
      assert.deepEqual([...unpackIntTensor(t)], [...codes], `${type} n=${n}`);
      assert.equal(tensorStorageProblem(t), null);
    }
  }
});

test("packedIntTensor refuses codes outside the type's range and wrong counts", () => {
  assert.throws(() => packedIntTensor("q", [1], Int8Array.from([8]), "INT4"), RangeError);
  assert.throws(() => packedIntTensor("q", [1], Uint8Array.from([16]), "UINT4"), RangeError);
  assert.throws(() => packedIntTensor("q", [3], Int8Array.from([1, 2]), "INT4"), RangeError);
});

test("onnxruntime reads our INT4 packing the same way (DequantizeLinear, opset 21)", async () => {
  const codes = Int8Array.from([-8, -3, 0, 1, 5, 7, -1]);
  const model = create(ModelProtoSchema, {
    irVersion: 10n,
    opsetImport: [{ domain: "", version: 21n }],
    graph: {
      name: "dq",
      node: [
        { opType: "Add", input: ["x", "zero"], output: ["x2"] },
        { opType: "DequantizeLinear", input: ["q", "s"], output: ["d"] },
        { opType: "Add", input: ["d", "x2"], output: ["y"] },
      ],
      initializer: [packedIntTensor("q", [7], codes, "INT4"), float32Tensor("s", [], [0.5]), float32Tensor("zero", [7], new Array(7).fill(0))],
      input: [{ name: "x", type: { value: { case: "tensorType", value: { elemType: DT.FLOAT, shape: { dim: [{ value: { case: "dimValue", value: 7n } }] } } } } }],
      output: [{ name: "y", type: { value: { case: "tensorType", value: { elemType: DT.FLOAT } } } }],
    },
  });
  const out = await runOnnx(toBinary(ModelProtoSchema, model), { x: { data: new Float32Array(7), dims: [7] } });
  assert.deepEqual([...out.y], [...codes].map((c) => c * 0.5));
});

test("tensorToFloat32 reads FLOAT, DOUBLE, FLOAT16 and BFLOAT16 from raw data and typed fields", () => {
  const values = [1, -2.5, 0.15625, 1024];
  assert.deepEqual([...tensorToFloat32(float32Tensor("f", [4], values))], values);
  assert.deepEqual([...tensorToFloat32(create(TensorProtoSchema, { dims: [4n], dataType: DT.FLOAT, floatData: values }))], values);
  const dbl = new Uint8Array(32);
  values.forEach((v, i) => new DataView(dbl.buffer).setFloat64(8 * i, v, true));
  assert.deepEqual([...tensorToFloat32(create(TensorProtoSchema, { dims: [4n], dataType: DT.DOUBLE, rawData: dbl }))], values);
  assert.deepEqual([...tensorToFloat32(create(TensorProtoSchema, { dims: [4n], dataType: DT.DOUBLE, doubleData: values }))], values);
  // 1, -2.5, 0.15625, 1024 in binary16
  const halves = [0x3c00, 0xc100, 0x3100, 0x6400];
  const raw16 = new Uint8Array(8);
  halves.forEach((h, i) => new DataView(raw16.buffer).setUint16(2 * i, h, true));
  assert.deepEqual([...tensorToFloat32(create(TensorProtoSchema, { dims: [4n], dataType: DT.FLOAT16, rawData: raw16 }))], values);
  assert.deepEqual([...tensorToFloat32(create(TensorProtoSchema, { dims: [4n], dataType: DT.FLOAT16, int32Data: halves }))], values);
  // bfloat16 is the top half of float32: 1 = 0x3f80, -2.5 = 0xc020
  assert.deepEqual([...tensorToFloat32(create(TensorProtoSchema, { dims: [2n], dataType: DT.BFLOAT16, int32Data: [0x3f80, 0xc020] }))], [1, -2.5]);
  assert.throws(() => tensorToFloat32(int64Tensor("i", [1], [3])), ModelError);
});

test("halfToFloat handles subnormals, infinities and NaN", () => {
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(halfToFloat(0x7c00), Infinity);
  assert.equal(halfToFloat(0xfc00), -Infinity);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  assert.equal(halfToFloat(0x8000), -0);
});

test("int64Tensor round trips through tensorToIntegers; float32Tensor checks counts", () => {
  assert.deepEqual(tensorToIntegers(int64Tensor("s", [3], [-1, 0, 2n ** 40n])), [-1, 0, 2 ** 40]);
  assert.deepEqual(tensorToIntegers(create(TensorProtoSchema, { dims: [2n], dataType: DT.INT32, int32Data: [4, -5] })), [4, -5]);
  assert.throws(() => float32Tensor("f", [2, 2], [1, 2, 3]), RangeError);
  assert.equal(tensorElementCount(float32Tensor("s", [], [3])), 1);
});

test("tensorStorageProblem catches shapes that disagree with the stored data", () => {
  const t = float32Tensor("w", [2, 2], [1, 2, 3, 4]);
  assert.equal(tensorStorageProblem(t), null);
  t.dims = [4n, 4n];
  assert.match(tensorStorageProblem(t)!, /64 bytes.*holds 16 bytes/);
  t.dims = [2n ** 20n, 2n ** 20n];
  assert.match(tensorStorageProblem(t)!, /more than Nibble can hold/);
  t.dims = [-1n, 4n];
  assert.match(tensorStorageProblem(t)!, /negative/);
  const typed = create(TensorProtoSchema, { name: "f", dims: [3n], dataType: DT.FLOAT, floatData: [1, 2] });
  assert.match(tensorStorageProblem(typed)!, /claims 3 elements but stores 2/);
  const empty = create(TensorProtoSchema, { name: "e", dims: [0n, 5n], dataType: DT.FLOAT });
  assert.equal(tensorStorageProblem(empty), null);
});

test("data type names and sizes", () => {
  assert.equal(dataTypeName(DT.INT4), "INT4");
  assert.equal(dataTypeName(999), "data type 999");
  assert.equal(dataTypeLabel(DT.FLOAT), "float32");
  assert.equal(dataTypeLabel(DT.FLOAT8E4M3FN), "float8e4m3fn");
  assert.equal(rawByteLength(DT.INT4, 5), 3);
  assert.equal(rawByteLength(DT.STRING, 5), undefined);
});
