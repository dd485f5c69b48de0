import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelBuilder, randomInput, runOnnx, type WeightSource } from "../helpers/model-builder.ts";

function smallCnn(opset: number, weights: WeightSource = "initializer"): ModelBuilder {
  const b = new ModelBuilder({ opset, seed: 3 }).input("x", ["N", 3, 8, 8]);
  b.conv({ out: 8, weights }).batchNorm().relu();
  const skip = b.current;
  b.conv({ out: 8, groups: 8, weights }).batchNorm().clip(0, 6);
  b.conv({ out: 8, groups: 2 }).leakyRelu(0.1).add(skip).maxPool().globalAveragePool().flatten();
  b.gemm({ out: 6, weights }).relu().matmul({ out: 4, weights }).output();
  return b;
}

for (const opset of [11, 13, 15, 17, 19, 21]) {
  test(`built models run in onnxruntime (opset ${opset})`, async () => {
    const b = smallCnn(opset);
    const out = await runOnnx(b.bytes(), { x: { data: randomInput(2 * 3 * 64), dims: [2, 3, 8, 8] } });
    const y = Object.values(out)[0];
    assert.equal(y.length, 2 * 4);
    assert.ok(y.every(Number.isFinite));
  });
}

for (const weights of ["constant", "identity", "transpose", "reshape"] as const) {
  test(`weights delivered through "${weights}" give the same network as initializers`, async () => {
    const feeds = { x: { data: randomInput(3 * 64), dims: [1, 3, 8, 8] } };
    const plain = Object.values(await runOnnx(smallCnn(13).bytes(), feeds))[0];
    const other = Object.values(await runOnnx(smallCnn(13, weights).bytes(), feeds))[0];
    assert.deepEqual(other, plain);
  });
}

test("NHWC input through a Transpose runs", async () => {
  const b = new ModelBuilder({ opset: 17 }).input("image", [1, 8, 8, 3]).transpose([0, 3, 1, 2]).conv({ out: 4 }).relu().output();
  const out = await runOnnx(b.bytes(), { image: { data: randomInput(192), dims: [1, 8, 8, 3] } });
  assert.equal(Object.values(out)[0].length, 4 * 64);
});

test("the builder refuses opsets outside 11..21", () => {
  assert.throws(() => new ModelBuilder({ opset: 10 }), RangeError);
  assert.throws(() => new ModelBuilder({ opset: 22 }), RangeError);
});
