// The opset converter, rule by rule, against onnxruntime: each graph is written the way an exporter of
// its operator set wrote it, run at that opset, converted to 21, run again on the same seeded input,
// and compared with an explicit tolerance. Each case also checks that the rule is needed: the same
// graph merely relabelled as opset 21 is refused by onnxruntime or computes something else.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { TensorProto_DataType as DT, type ModelProto } from "onnx-buf";
import { ModelError } from "../../src-main/engine/onnx/errors.ts";
import { convertToTargetOpset, type ConversionResult } from "../../src-main/engine/onnx/opset/index.ts";
import { float32Tensor, int64Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { attr, copy, graph, opModel, randomFeeds, run, type Feeds, type ModelSpec, type RunResult } from "../helpers/op-model.ts";

interface Tolerance {
  /** max |converted − original| ≤ atol + rtol · |original| for every element */
  atol: number;
  rtol?: number;
}
const EXACT: Tolerance = { atol: 0 };

function assertClose(actual: RunResult, expected: RunResult, tol: Tolerance, what: string): void {
  assert.deepEqual(actual.names.toSorted(), expected.names.toSorted(), `${what}: output names`);
  for (const name of expected.names) {
    const a = actual.values[name];
    const e = expected.values[name];
    assert.deepEqual(a.dims, e.dims, `${what}: shape of ${name}`);
    for (let i = 0; i < e.data.length; i++) {
      const bound = tol.atol + (tol.rtol ?? 0) * Math.abs(e.data[i]);
      assert.ok(Math.abs(a.data[i] - e.data[i]) <= bound, `${what}: ${name}[${i}] = ${a.data[i]}, original ${e.data[i]} (tolerance ${bound})`);
    }
  }
}

function differs(a: RunResult, b: RunResult): boolean {
  return a.names.some((n) => !b.values[n] || a.values[n].dims.join() !== b.values[n].dims.join() || a.values[n].data.some((v, i) => v !== b.values[n].data[i]));
}

/** The model declared as opset 21 without any rewrite. */
function relabelled(model: ModelProto): ModelProto {
  const m = copy(model);
  m.opsetImport[0].version = 21n;
  m.irVersion = 10n;
  return m;
}

interface CaseOptions {
  tol?: Tolerance;
  feeds?: (model: ModelProto, seed: number) => Feeds;
  seeds?: number[];
  /** false when the old form happens to run unchanged at 21 (checked to compute the same, then) */
  needed?: boolean;
}

async function assertConverts(spec: ModelSpec, options: CaseOptions = {}): Promise<{ converted: ModelProto; result: ConversionResult }> {
  const model = opModel(spec);
  const converted = copy(model);
  const result = convertToTargetOpset(converted);
  assert.equal(Number(converted.opsetImport[0].version), 21);
  assert.ok(converted.irVersion >= 10n);
  const what = spec.nodes.map((n) => `${n.op}-${spec.opset}`).join(", ");
  for (const seed of options.seeds ?? [1, 2]) {
    const feeds = options.feeds ? options.feeds(model, seed) : randomFeeds(model, seed);
    const original = await run(model, feeds);
    assertClose(await run(converted, feeds), original, options.tol ?? EXACT, what);
    if (options.needed !== false && seed === (options.seeds ?? [1])[0]) {
      const naive = await run(relabelled(model), feeds).catch((e: Error) => e);
      assert.ok(naive instanceof Error || differs(naive, original), `${what}: the relabelled model ran unchanged, so this case does not show the rule is needed`);
    }
  }
  return { converted, result };
}

function assertRefused(spec: ModelSpec, pattern: RegExp): void {
  assert.throws(() => convertToTargetOpset(opModel(spec)), (e: unknown) => e instanceof ModelError && pattern.test(e.message) && /re-export|export the model/i.test(e.message));
}

const INT64_MAX = 9223372036854775807n;

// ---- attributes that became inputs ---------------------------------------------------------------

test("Slice-1 (opset 9): starts, ends, axes become inputs; INT64_MAX ends and negative starts keep their meaning", async () => {
  const { result } = await assertConverts({
    opset: 9,
    inputs: { x: [2, 5, 6] },
    nodes: [
      { op: "Slice", inputs: ["x"], outputs: ["a"], attrs: { axes: attr.is([2]), starts: attr.is([2]), ends: attr.is([INT64_MAX]) } },
      { op: "Slice", inputs: ["x"], outputs: ["b"], attrs: { axes: attr.is([1, 2]), starts: attr.is([-3, 0]), ends: attr.is([-1, 2]) } },
      { op: "Slice", inputs: ["x"], outputs: ["c"], attrs: { starts: attr.is([1, 1]), ends: attr.is([2, 100]) } },
    ],
    outputs: ["a", "b", "c"],
  });
  assert.equal(result.rewritten.get("Slice"), 3);
});

test("Pad-2 (opsets 7 and 10): pads and value become inputs; constant, reflect and edge modes", async () => {
  for (const opset of [7, 10]) {
    await assertConverts({
      opset,
      inputs: { x: [1, 2, 4, 5] },
      nodes: [
        { op: "Pad", inputs: ["x"], outputs: ["c"], attrs: { pads: attr.is([0, 0, 1, 2, 0, 0, 2, 1]), value: attr.f(0.5) } },
        { op: "Pad", inputs: ["x"], outputs: ["z"], attrs: { pads: attr.is([0, 1, 0, 0, 0, 0, 1, 3]) } },
        { op: "Pad", inputs: ["x"], outputs: ["r"], attrs: { mode: attr.s("reflect"), pads: attr.is([0, 0, 2, 1, 0, 0, 1, 2]) } },
        { op: "Pad", inputs: ["x"], outputs: ["e"], attrs: { mode: attr.s("edge"), pads: attr.is([0, 0, 1, 1, 0, 0, 3, 0]) } },
      ],
      outputs: ["c", "z", "r", "e"],
    });
  }
});

test("Pad-2 on float64 data: the padding value takes the data's type (CastLike)", async () => {
  const { converted } = await assertConverts({
    opset: 10,
    inputs: { x: [2, 3] },
    nodes: [
      { op: "Cast", inputs: ["x"], outputs: ["xd"], attrs: { to: attr.i(DT.DOUBLE) } },
      { op: "Pad", inputs: ["xd"], outputs: ["pd"], attrs: { pads: attr.is([1, 0, 0, 2]), value: attr.f(-2.25) } },
      { op: "Cast", inputs: ["pd"], outputs: ["y"], attrs: { to: attr.i(DT.FLOAT) } },
    ],
    outputs: ["y"],
  });
  assert.ok(converted.graph!.node.some((n) => n.opType === "CastLike"));
});

test("Clip-6 (opset 9): min and max become inputs, each optional", async () => {
  await assertConverts({
    opset: 9,
    inputs: { x: [3, 7] },
    nodes: [
      { op: "Clip", inputs: ["x"], outputs: ["both"], attrs: { min: attr.f(-0.25), max: attr.f(0.5) } },
      { op: "Clip", inputs: ["x"], outputs: ["lo"], attrs: { min: attr.f(0) } },
      { op: "Clip", inputs: ["x"], outputs: ["hi"], attrs: { max: attr.f(0.1) } },
      { op: "Clip", inputs: ["x"], outputs: ["none"] },
    ],
    outputs: ["both", "lo", "hi", "none"],
  });
});

test("TopK-1 (opset 9): k becomes an input; values and indices unchanged", async () => {
  await assertConverts({
    opset: 9,
    inputs: { x: [3, 10] },
    nodes: [{ op: "TopK", inputs: ["x"], outputs: ["values", "indices"], attrs: { k: attr.i(4), axis: attr.i(1) } }],
    outputs: ["values", { name: "indices", type: DT.INT64 }],
  });
});

test("Squeeze and Unsqueeze (opset 11): axes become inputs, negative axes included; Squeeze without axes stays", async () => {
  const { result } = await assertConverts({
    opset: 11,
    inputs: { x: [2, 1, 3, 1] },
    nodes: [
      { op: "Squeeze", inputs: ["x"], outputs: ["s"], attrs: { axes: attr.is([-1]) } },
      { op: "Unsqueeze", inputs: ["s"], outputs: ["u"], attrs: { axes: attr.is([0, 4]) } },
      { op: "Squeeze", inputs: ["x"], outputs: ["all"] },
    ],
    outputs: ["u", "all"],
  });
  assert.equal(result.rewritten.get("Squeeze"), 1);
});

test("Reductions: ReduceSum (opset 12) and the others (opset 17) take axes as an input; no axes still means all", async () => {
  await assertConverts(
    {
      opset: 12,
      inputs: { x: [2, 3, 4] },
      nodes: [
        { op: "ReduceSum", inputs: ["x"], outputs: ["sum"], attrs: { axes: attr.is([1]), keepdims: attr.i(0) } },
        { op: "ReduceMean", inputs: ["x"], outputs: ["mean"], attrs: { axes: attr.is([-1, 0]) } },
        { op: "ReduceMax", inputs: ["x"], outputs: ["max"] },
      ],
      outputs: ["sum", "mean", "max"],
    },
    { tol: { atol: 1e-6 } },
  );
  const ops = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"];
  await assertConverts(
    {
      opset: 17,
      inputs: { x: [2, 3, 4] },
      nodes: ops.map((op) => ({ op, inputs: ["x"], outputs: [op], attrs: { axes: attr.is([2]) } })),
      outputs: ops,
    },
    { tol: { atol: 1e-6, rtol: 1e-6 } },
  );
});

test("Split-2 (opset 11) with sizes and equal parts, Split-13 (opset 17) equal parts: split input / num_outputs", async () => {
  await assertConverts({
    opset: 11,
    inputs: { x: [2, 7, 6] },
    nodes: [
      { op: "Split", inputs: ["x"], outputs: ["a", "b", "c"], attrs: { axis: attr.i(1), split: attr.is([2, 4, 1]) } },
      { op: "Split", inputs: ["x"], outputs: ["d", "e", "f"], attrs: { axis: attr.i(-1) } },
    ],
    outputs: ["a", "b", "c", "d", "e", "f"],
  });
  await assertConverts({
    opset: 17,
    inputs: { x: [2, 6] },
    nodes: [{ op: "Split", inputs: ["x"], outputs: ["a", "b"], attrs: { axis: attr.i(1) } }],
    outputs: ["a", "b"],
  });
});

// ---- Upsample and Resize -------------------------------------------------------------------------

test("Upsample-7 (scales attribute) becomes Resize: nearest and linear, integer and fractional scales", async () => {
  for (const [mode, scales] of [["nearest", [1, 1, 2, 2]], ["nearest", [1, 1, 1.5, 3]], ["linear", [1, 1, 2, 2]], ["linear", [1, 1, 1.7, 2.5]]] as const) {
    const { converted } = await assertConverts(
      { opset: 7, inputs: { x: [1, 2, 5, 4] }, nodes: [{ op: "Upsample", inputs: ["x"], outputs: ["y"], attrs: { mode: attr.s(mode), scales: attr.fs(scales) } }], outputs: ["y"] },
      { tol: mode === "linear" ? { atol: 1e-6 } : EXACT },
    );
    assert.equal(converted.graph!.node[0].opType, "Resize");
  }
});

test("Upsample-9 (scales input), constant or computed while running, becomes Resize", async () => {
  await assertConverts({
    opset: 9,
    inputs: { x: [1, 3, 4, 5] },
    initializers: [float32Tensor("scales", [4], [1, 1, 2.5, 2])],
    nodes: [{ op: "Upsample", inputs: ["x", "scales"], outputs: ["y"], attrs: { mode: attr.s("nearest") } }],
    outputs: ["y"],
  });
  // scales computed from the input's own shape, as PyTorch 1.x exported interpolate(size=...)
  await assertConverts({
    opset: 9,
    inputs: { x: [1, 2, 3, 4] },
    initializers: [float32Tensor("target", [4], [1, 2, 7, 10])],
    nodes: [
      { op: "Shape", inputs: ["x"], outputs: ["shape"] },
      { op: "Cast", inputs: ["shape"], outputs: ["shape_f"], attrs: { to: attr.i(DT.FLOAT) } },
      { op: "Div", inputs: ["target", "shape_f"], outputs: ["scales"] },
      { op: "Upsample", inputs: ["x", "scales"], outputs: ["y"] },
    ],
    outputs: ["y"],
  });
});

test("Resize-10: asymmetric coordinates; nearest rounds down when enlarging and up when shrinking", async () => {
  for (const [mode, scales] of [["nearest", [1, 1, 2, 3]], ["nearest", [1, 1, 0.5, 0.25]], ["nearest", [1, 1, 0.6, 0.75]], ["linear", [1, 1, 0.6, 1.7]]] as const) {
    await assertConverts(
      {
        opset: 10,
        inputs: { x: [1, 2, 8, 9] },
        initializers: [float32Tensor("scales", [4], scales)],
        nodes: [{ op: "Resize", inputs: ["x", "scales"], outputs: ["y"], attrs: { mode: attr.s(mode) } }],
        outputs: ["y"],
      },
      { tol: mode === "linear" ? { atol: 1e-6 } : EXACT },
    );
  }
});

test("Resize-10 that enlarges one axis and shrinks another with nearest rounding is refused", () => {
  assertRefused(
    {
      opset: 10,
      inputs: { x: [1, 2, 8, 9] },
      initializers: [float32Tensor("scales", [4], [1, 1, 0.6, 2])],
      nodes: [{ op: "Resize", inputs: ["x", "scales"], outputs: ["y"], attrs: { mode: attr.s("nearest") } }],
      outputs: ["y"],
    },
    /Resize "y" enlarges some axes and shrinks others/,
  );
});

// ---- meaning changes -------------------------------------------------------------------------------

test("Softmax, LogSoftmax, Hardmax (opset 11) on any rank: old 2-D coercion rebuilt, or the last axis kept", async () => {
  for (const op of ["Softmax", "LogSoftmax", "Hardmax"]) {
    const tol = op === "Hardmax" ? EXACT : { atol: 1e-6, rtol: 1e-6 };
    // default axis 1 of a 4-D tensor: normalizes over C·H·W together
    const { converted } = await assertConverts({ opset: 11, inputs: { x: [2, 3, 4, 5] }, nodes: [{ op, inputs: ["x"], outputs: ["y"] }], outputs: ["y"] }, { tol });
    assert.ok(converted.graph!.node.some((n) => n.opType === "Flatten"), `${op} on 4-D at axis 1 is rebuilt`);
    await assertConverts({ opset: 11, inputs: { x: [2, 3, 4] }, nodes: [{ op, inputs: ["x"], outputs: ["y"], attrs: { axis: attr.i(0) } }], outputs: ["y"] }, { tol });
    // the last axis: the same in both versions (rank known from the input), so only the axis is written out
    const last = await assertConverts({ opset: 11, inputs: { x: [2, 3, 4] }, nodes: [{ op, inputs: ["x"], outputs: ["y"], attrs: { axis: attr.i(2) } }], outputs: ["y"] }, { tol, needed: false });
    assert.equal(last.converted.graph!.node.length, 1);
  }
});

test("Softmax-1 after a Gemm (classifier logits, rank 2): stays one node", async () => {
  const { converted } = await assertConverts(
    {
      opset: 9,
      inputs: { x: [3, 4] },
      initializers: [float32Tensor("w", [4, 5], Array.from({ length: 20 }, (_, i) => Math.sin(i))), float32Tensor("b", [5], [0.1, 0.2, 0.3, 0.4, 0.5])],
      nodes: [
        { op: "Gemm", inputs: ["x", "w", "b"], outputs: ["logits"] },
        { op: "Softmax", inputs: ["logits"], outputs: ["p"] },
      ],
      outputs: ["p"],
    },
    { tol: { atol: 1e-6 }, needed: false },
  );
  assert.equal(converted.graph!.node.length, 2);
});

test("Softmax-1 on a tensor of unknown rank uses the general form", async () => {
  await assertConverts(
    {
      opset: 9,
      inputs: { x: [2, 3, 4], shape: { dims: [3], type: DT.INT64 } },
      nodes: [
        { op: "Reshape", inputs: ["x", "shape"], outputs: ["r"] },
        { op: "Softmax", inputs: ["r"], outputs: ["y"] },
      ],
      outputs: ["y"],
    },
    { tol: { atol: 1e-6 }, feeds: (m, seed) => randomFeeds(m, seed, { shape: new ort.Tensor("int64", BigInt64Array.from([2n, 3n, 4n]), [3]) }) },
  );
});

test("BatchNormalization-7 (opset 7): spatial = 1 is dropped, spatial = 0 becomes Mul and Add", async () => {
  const c = 3;
  const params = (dims: number[], seed: number) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const v = (k: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + k * 13 + i));
    return [
      float32Tensor("scale", dims, v(1)),
      float32Tensor("bias", dims, v(2)),
      float32Tensor("mean", dims, v(3)),
      float32Tensor("var", dims, v(4).map((x) => 0.5 + Math.abs(x))),
    ];
  };
  await assertConverts({
    opset: 7,
    inputs: { x: [2, c, 4, 4] },
    initializers: params([c], 1),
    nodes: [{ op: "BatchNormalization", inputs: ["x", "scale", "bias", "mean", "var"], outputs: ["y"], attrs: { spatial: attr.i(1), epsilon: attr.f(1e-3), momentum: attr.f(0.9) } }],
    outputs: ["y"],
  }, { tol: { atol: 1e-6, rtol: 1e-6 } });
  const { converted } = await assertConverts({
    opset: 7,
    inputs: { x: [2, c, 4, 4] },
    initializers: params([c, 4, 4], 2),
    nodes: [{ op: "BatchNormalization", inputs: ["x", "scale", "bias", "mean", "var"], outputs: ["y"], attrs: { spatial: attr.i(0) } }],
    outputs: ["y"],
  }, { tol: { atol: 1e-5, rtol: 1e-5 } });
  assert.deepEqual(converted.graph!.node.map((n) => n.opType), ["Mul", "Add"]);
});

test("BatchNormalization-9 listing its training outputs is refused: onnxruntime then normalizes with batch statistics", async () => {
  const c = 2;
  const spec: ModelSpec = {
    opset: 9,
    inputs: { x: [2, c, 3, 3] },
    initializers: [float32Tensor("scale", [c], [1, 2]), float32Tensor("bias", [c], [0, 1]), float32Tensor("mean", [c], [5, -5]), float32Tensor("var", [c], [4, 9])],
    nodes: [{ op: "BatchNormalization", inputs: ["x", "scale", "bias", "mean", "var"], outputs: ["y", "running_mean", "running_var", "saved_mean", "saved_var"] }],
    outputs: ["y"],
  };
  // what onnxruntime computes for it: the stored mean (±5) plays no part
  const y = (await run(opModel(spec), randomFeeds(opModel(spec)))).values.y.data;
  assert.ok(Math.abs(y.slice(0, 9).reduce((a, b) => a + b, 0) / 9) < 1, "normalized with the batch's own mean");
  assertRefused(spec, /BatchNormalization "y" lists the outputs of training mode.*model\.eval\(\)/);
  // the same with only the running mean listed and read
  assertRefused({ ...spec, nodes: [{ ...spec.nodes[0], outputs: ["y", "running_mean"] }, { op: "Identity", inputs: ["running_mean"], outputs: ["m"] }], outputs: ["y", "m"] }, /lists the outputs of training mode/);
});

test("Dropout-7 (opsets 7 and 11): ratio becomes an input, an unread mask is dropped, a read mask is refused", async () => {
  await assertConverts({
    opset: 11,
    inputs: { x: [2, 5] },
    nodes: [{ op: "Dropout", inputs: ["x"], outputs: ["y"], attrs: { ratio: attr.f(0.3) } }],
    outputs: ["y"],
  });
  await assertConverts({
    opset: 7,
    inputs: { x: [2, 5] },
    nodes: [{ op: "Dropout", inputs: ["x"], outputs: ["y", "mask"], attrs: { ratio: attr.f(0.5) } }],
    outputs: ["y"],
  });
  assertRefused({
    opset: 7,
    inputs: { x: [2, 5] },
    nodes: [
      { op: "Dropout", inputs: ["x"], outputs: ["y", "mask"] },
      { op: "Mul", inputs: ["y", "mask"], outputs: ["z"] },
    ],
    outputs: ["z"],
  }, /Dropout "y" passes its mask to other operators/);
});

test("Scatter-9 becomes ScatterElements", async () => {
  await assertConverts({
    opset: 9,
    inputs: { x: [3, 4], u: [2, 4] },
    initializers: [int64Tensor("idx", [2, 4], [0, 2, 1, 0, 2, 1, 0, 1])],
    nodes: [{ op: "Scatter", inputs: ["x", "idx", "u"], outputs: ["y"], attrs: { axis: attr.i(0) } }],
    outputs: ["y"],
  });
});

test("RoiAlign-10 keeps its output_half_pixel coordinates at 16", async () => {
  await assertConverts(
    {
      opset: 10,
      inputs: { x: [1, 2, 8, 8] },
      initializers: [float32Tensor("rois", [2, 4], [0.5, 1, 5.5, 6, 2, 2.5, 7, 7.5]), int64Tensor("batch", [2], [0, 0])],
      nodes: [{ op: "RoiAlign", inputs: ["x", "rois", "batch"], outputs: ["y"], attrs: { output_height: attr.i(3), output_width: attr.i(3), sampling_ratio: attr.i(2) } }],
      outputs: ["y"],
    },
    { tol: { atol: 1e-6 } },
  );
});

test("GridSample-16 bilinear and bicubic are linear and cubic at 20", async () => {
  for (const mode of ["bilinear", "bicubic"]) {
    await assertConverts(
      {
        opset: 16,
        inputs: { x: [1, 2, 5, 5], grid: [1, 3, 4, 2] },
        nodes: [{ op: "GridSample", inputs: ["x", "grid"], outputs: ["y"], attrs: { mode: attr.s(mode), align_corners: attr.i(0) } }],
        outputs: ["y"],
      },
      { tol: { atol: 1e-6 } },
    );
  }
});

test("GroupNormalization-18: one scale and bias per group become one per channel", async () => {
  const channels = 6;
  const groups = 3;
  await assertConverts(
    {
      opset: 18,
      inputs: { x: [2, channels, 4, 4] },
      initializers: [float32Tensor("scale", [groups], [0.5, -1, 2]), float32Tensor("bias", [groups], [0.1, 0.2, -0.3])],
      nodes: [{ op: "GroupNormalization", inputs: ["x", "scale", "bias"], outputs: ["y"], attrs: { num_groups: attr.i(groups), epsilon: attr.f(1e-5) } }],
      outputs: ["y"],
    },
    { tol: { atol: 1e-5 } },
  );
});

test("DFT-17: its axis attribute (default 1) becomes the axis input of DFT-20", async () => {
  for (const axis of [undefined, 2]) {
    await assertConverts(
      {
        opset: 17,
        inputs: { x: [2, 6, 4, 1] },
        nodes: [{ op: "DFT", inputs: ["x"], outputs: ["y"], attrs: axis === undefined ? {} : { axis: attr.i(axis) } }],
        outputs: ["y"],
      },
      { tol: { atol: 1e-5 } },
    );
  }
});

test("ImageScaler (experimental, opset 8) becomes Mul and Add", async () => {
  await assertConverts(
    {
      opset: 8,
      inputs: { x: [1, 3, 4, 4] },
      nodes: [{ op: "ImageScaler", inputs: ["x"], outputs: ["y"], attrs: { scale: attr.f(1 / 255), bias: attr.fs([-0.5, 0.25, 1]) } }],
      outputs: ["y"],
    },
    { tol: { atol: 1e-6 } },
  );
});

test("Scan-8 and removed experimental operators are refused with what to do", () => {
  const body = graph({ inputs: { s: [2], x: [2] }, nodes: [{ op: "Add", inputs: ["s", "x"], outputs: ["s2"] }, { op: "Identity", inputs: ["s2"], outputs: ["y"] }], outputs: ["s2", "y"] });
  assertRefused(
    { opset: 8, inputs: { init: [1, 2], seq: [1, 3, 2] }, nodes: [{ op: "Scan", inputs: ["", "init", "seq"], outputs: ["final", "ys"], attrs: { body: attr.g(body), num_scan_inputs: attr.i(1) } }], outputs: ["final", "ys"] },
    /Scan "final" is written for operator set 8.*Re-export the model with operator set 9 or later/,
  );
  assertRefused(
    { opset: 7, inputs: { x: [1, 3, 8, 8] }, nodes: [{ op: "Crop", inputs: ["x"], outputs: ["y"], attrs: { border: attr.is([1, 1, 1, 1]) } }], outputs: ["y"] },
    /Crop "y" is an experimental operator that ONNX removed/,
  );
});

// ---- subgraphs ---------------------------------------------------------------------------------

test("If and Loop bodies (opset 9) are converted too", async () => {
  const thenBranch = graph({ inputs: {}, nodes: [{ op: "Slice", inputs: ["x"], outputs: ["t"], attrs: { axes: attr.is([1]), starts: attr.is([1]), ends: attr.is([3]) } }], outputs: ["t"] }, "then");
  const elseBranch = graph({
    inputs: {},
    nodes: [
      { op: "Unsqueeze", inputs: ["x"], outputs: ["u"], attrs: { axes: attr.is([0]) } },
      { op: "Slice", inputs: ["u"], outputs: ["s"], attrs: { axes: attr.is([2]), starts: attr.is([0]), ends: attr.is([2]) } },
      { op: "Squeeze", inputs: ["s"], outputs: ["e"], attrs: { axes: attr.is([0]) } },
    ],
    outputs: ["e"],
  }, "else");
  const body = graph({
    inputs: { i: { dims: [], type: DT.INT64 }, cond: { dims: [], type: DT.BOOL }, acc: [2, 2] },
    nodes: [
      { op: "Identity", inputs: ["cond"], outputs: ["cond_out"] },
      { op: "Clip", inputs: ["acc"], outputs: ["clipped"], attrs: { min: attr.f(-0.2), max: attr.f(0.3) } },
      { op: "Add", inputs: ["clipped", "acc"], outputs: ["acc_out"] },
    ],
    outputs: [{ name: "cond_out", type: DT.BOOL }, "acc_out"],
  }, "body");
  const { result } = await assertConverts(
    {
      opset: 9,
      inputs: { x: [2, 4] },
      initializers: [int64Tensor("trips", [], [3]), create0("zero")],
      nodes: [
        { op: "ReduceSum", inputs: ["x"], outputs: ["total"], attrs: { keepdims: attr.i(0) } },
        { op: "Greater", inputs: ["total", "zero"], outputs: ["positive"] },
        { op: "If", inputs: ["positive"], outputs: ["picked"], attrs: { then_branch: attr.g(thenBranch), else_branch: attr.g(elseBranch) } },
        { op: "Loop", inputs: ["trips", "", "picked"], outputs: ["looped"], attrs: { body: attr.g(body) } },
      ],
      outputs: ["looped"],
    },
    { seeds: [1, 2, 3, 4, 5, 6], tol: { atol: 1e-6 } },
  );
  assert.equal(result.rewritten.get("Slice"), 2);
  assert.equal(result.rewritten.get("Clip"), 1);
});

function create0(name: string) {
  return float32Tensor(name, [], [0]);
}

test("a model already at opset 21 is left exactly as it is", () => {
  const spec: ModelSpec = { opset: 21, inputs: { x: [2, 3] }, nodes: [{ op: "Softmax", inputs: ["x"], outputs: ["y"], attrs: { axis: attr.i(1) } }], outputs: ["y"] };
  const model = opModel(spec);
  const result = convertToTargetOpset(model);
  assert.deepEqual(model, opModel(spec));
  assert.equal(result.rewritten.size, 0);
});
