import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, NodeProtoSchema } from "onnx-buf";
import {
  constantOf,
  consumersOf,
  findOrderProblem,
  indexGraph,
  insertNodesAfter,
  nameGenerator,
  removeNodes,
  removeUnusedInitializers,
} from "../../src-main/engine/onnx/graph.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { float32Tensor, tensorToFloat32 } from "../../src-main/engine/onnx/tensor.ts";
import { ModelBuilder, randomInput, runOnnx } from "../helpers/model-builder.ts";

function net() {
  const b = new ModelBuilder({ opset: 13 }).input("x", [1, 3, 4, 4]).conv({ out: 2, name: "c1" });
  const conv = b.current;
  b.relu().add(conv).output();
  return { model: b.build(), conv };
}

test("the index knows producers, consumers, initializers, Constant values and real inputs", () => {
  const { model, conv } = net();
  const g = model.graph!;
  g.node.unshift(
    create(NodeProtoSchema, {
      opType: "Constant", output: ["k"],
      attribute: [create(AttributeProtoSchema, { name: "value_floats", type: AT.FLOATS, floats: [1, 2] })],
    }),
  );
  const index = indexGraph(g);
  assert.equal(index.producers.get(conv)!.name, "c1");
  assert.deepEqual(consumersOf(index, conv).map((n) => n.opType), ["Relu", "Add"]);
  assert.deepEqual(index.inputs, ["x"]);
  assert.ok(constantOf(index, g.node[1].input[1]));
  assert.deepEqual([...tensorToFloat32(constantOf(index, "k")!)], [1, 2]);
  assert.equal(constantOf(index, "x"), undefined);
});

test("insertNodesAfter rewires readers, and keeps graph output names", async () => {
  const { model, conv } = net();
  const g = model.graph!;
  const out = g.output[0].name;
  const feeds = { x: { data: randomInput(48), dims: [1, 3, 4, 4] } };
  const before = (await runOnnx(encodeModel(model), feeds))[out];
  g.initializer.push(float32Tensor("two", [], [2]));
  const fresh = nameGenerator(g);
  const doubled = fresh(`${conv}_x2`);
  const result = insertNodesAfter(g, conv, [create(NodeProtoSchema, { opType: "Mul", input: [conv, "two"], output: [doubled] })], doubled);
  assert.equal(result, doubled);
  assert.equal(findOrderProblem(g), null);
  // relu(2c) + 2c = 2 (relu(c) + c)
  const mid = (await runOnnx(encodeModel(model), feeds))[out];
  mid.forEach((v, i) => assert.ok(Math.abs(v - 2 * before[i]) < 1e-5));
  // After the graph output: the output keeps its name and now carries the new value.
  const tmp = fresh("tmp");
  const kept = insertNodesAfter(g, out, [create(NodeProtoSchema, { opType: "Mul", input: [out, "two"], output: [tmp] })], tmp);
  assert.equal(kept, out);
  assert.equal(g.output[0].name, out);
  assert.equal(findOrderProblem(g), null);
  const last = (await runOnnx(encodeModel(model), feeds))[out];
  last.forEach((v, i) => assert.ok(Math.abs(v - 4 * before[i]) < 1e-5));
});

test("nameGenerator never repeats a name in the graph or one it made", () => {
  const { model, conv } = net();
  const fresh = nameGenerator(model.graph!);
  assert.equal(fresh("new"), "new");
  assert.equal(fresh("new"), "new_1");
  assert.equal(fresh(conv), `${conv}_1`);
  assert.equal(fresh("c1"), "c1_1");
});

test("findOrderProblem reports nodes out of order, missing tensors, double definitions", () => {
  const { model } = net();
  const g = model.graph!;
  assert.equal(findOrderProblem(g), null);
  g.node.reverse();
  assert.match(findOrderProblem(g)!, /out of order/);
  g.node.reverse();
  g.node[1].input[0] = "ghost";
  assert.match(findOrderProblem(g)!, /"ghost", which nothing produces/);
  g.node[1].input[0] = g.node[0].output[0];
  g.node[1].output[0] = g.node[0].output[0];
  assert.match(findOrderProblem(g)!, /already defined/);
});

test("removeNodes and removeUnusedInitializers drop only what nothing reads", () => {
  const { model } = net();
  const g = model.graph!;
  const [w, b] = g.node[0].input.slice(1);
  removeUnusedInitializers(g, [w, b]);
  assert.equal(g.initializer.length, 2, "still read by the conv");
  removeNodes(g, [g.node[0]]);
  removeUnusedInitializers(g, [w]);
  assert.deepEqual(g.initializer.map((t) => t.name), [b]);
});
