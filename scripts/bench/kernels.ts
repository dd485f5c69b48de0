// Where the reconstruction's heavy product runs: a layer's Σ x xᵀ over its im2col columns, per image, for
// the layer shapes of MobileNet v1 0.75 and Tiny Darknet. Compares onnxruntime (a Conv with one-hot kernels
// plus MatMul, pipeline/hessian.ts) with the typed-array loop (quant/im2col.ts + addGram), and, when
// --libs DIR points at a folder with ml-matrix and @tensorflow/tfjs-backend-wasm installed, with those.
//   node --import tsx scripts/bench/kernels.ts [--images 20] [--libs DIR]
import { createRequire } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, ModelProtoSchema, NodeProtoSchema } from "onnx-buf";
import { buildGramModel, type GramTap } from "../../src-main/engine/pipeline/hessian.ts";
import { closeSession, openSession, runBatch } from "../../src-main/engine/pipeline/runtime.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { float32Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { tensorOutput } from "../../src-main/engine/onnx/graph.ts";
import { im2col } from "../../src-main/engine/quant/im2col.ts";
import { addGram } from "../../src-main/engine/quant/linalg.ts";
import { mulberry32 } from "../../src-main/engine/random.ts";
import { table } from "./common.ts";

const { values } = parseArgs({ options: { images: { type: "string", default: "20" }, libs: { type: "string" } } });
const images = Number(values.images);

interface Shape {
  label: string;
  channels: number;
  size: number;
  kernel: number;
  stride: number;
}
const SHAPES: Shape[] = [
  { label: "MobileNet Conv_4 (1x1, 24 ch, 112²)", channels: 24, size: 112, kernel: 1, stride: 1 },
  { label: "MobileNet Conv_28 (1x1, 384 ch, 14²)", channels: 384, size: 14, kernel: 1, stride: 1 },
  { label: "MobileNet Conv_52 (1x1, 768 ch, 7²)", channels: 768, size: 7, kernel: 1, stride: 1 },
  { label: "Tiny Darknet Conv_3 (3x3, 16 ch, 112²)", channels: 16, size: 112, kernel: 3, stride: 1 },
  { label: "Tiny Darknet Conv_26 (3x3, 64 ch, 14²)", channels: 64, size: 14, kernel: 3, stride: 1 },
];

function inputModel(s: Shape) {
  const pad = Math.floor(s.kernel / 2);
  const ints = (name: string, v: number[]) => create(AttributeProtoSchema, { name, type: AT.INTS, ints: v.map(BigInt) });
  // a model whose tensor "x" is the layer input; the tap reads it
  return create(ModelProtoSchema, {
    irVersion: 10n,
    opsetImport: [{ domain: "", version: 21n }],
    graph: {
      name: "kernel-bench",
      input: [tensorOutput("x")],
      output: [tensorOutput("y")],
      initializer: [float32Tensor("w", [1, s.channels, s.kernel, s.kernel], new Float32Array(s.channels * s.kernel * s.kernel))],
      node: [create(NodeProtoSchema, { opType: "Conv", name: "layer", input: ["x", "w"], output: ["y"], attribute: [ints("pads", [pad, pad, pad, pad]), ints("strides", [s.stride, s.stride])] })],
    },
  });
}

function tapOf(s: Shape): GramTap {
  const pad = Math.floor(s.kernel / 2);
  const ints = (name: string, v: number[]) => create(AttributeProtoSchema, { name, type: AT.INTS, ints: v.map(BigInt) });
  return {
    layer: "layer",
    input: "x",
    groups: 1,
    k: s.channels * s.kernel * s.kernel,
    conv: { channels: s.channels, kernel: [s.kernel, s.kernel], attributes: [ints("pads", [pad, pad, pad, pad]), ints("strides", [s.stride, s.stride])] },
    transposed: false,
  };
}

function randomImage(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => Math.max(0, r() * 2 - 0.5));
}

const rows: string[][] = [];
const req = values.libs ? createRequire(path.join(path.resolve(values.libs), "package.json")) : null;
interface MlMatrix {
  set(r: number, c: number, v: number): void;
  transpose(): MlMatrix;
  mmul(other: MlMatrix): MlMatrix;
}
const mlMatrix = req ? (req("ml-matrix") as { Matrix: new (rows: number, cols: number) => MlMatrix }) : null;
let tf: { tensor2d: (d: Float32Array, s: [number, number]) => unknown; matMul: (a: unknown, b: unknown, ta: boolean, tb: boolean) => { dataSync(): Float32Array; dispose(): void }; dispose(x: unknown): void } | null = null;
if (req) {
  const core = req("@tensorflow/tfjs-core");
  const wasm = req("@tensorflow/tfjs-backend-wasm");
  wasm.setWasmPaths(path.join(path.dirname(req.resolve("@tensorflow/tfjs-backend-wasm")), "/"));
  await core.setBackend("wasm");
  tf = core;
}

for (const s of SHAPES) {
  const n = s.channels * s.size * s.size;
  const x = randomImage(n, 1);
  const k = s.channels * s.kernel * s.kernel;
  const geometry = { name: "x", layout: "NCHW" as const, channels: s.channels, height: s.size, width: s.size, fixedBatch: 1 };
  const built = buildGramModel(inputModel(s), [tapOf(s)]);
  const session = await openSession(encodeModel(built.model));
  const fetch = [built.outputs[0].gram];
  await runBatch(session, geometry, x, 1, fetch);
  let t = performance.now();
  for (let i = 0; i < images; i++) await runBatch(session, geometry, x, 1, fetch);
  const ortMs = (performance.now() - t) / images;
  await closeSession(session);

  const pad = Math.floor(s.kernel / 2);
  const win = { kernel: [s.kernel, s.kernel] as [number, number], strides: [s.stride, s.stride] as [number, number], pads: [pad, pad, pad, pad] as [number, number, number, number], dilations: [1, 1] as [number, number] };
  const h = new Float64Array(k * k);
  const loops = Math.max(1, Math.ceil(images / 10));
  t = performance.now();
  for (let i = 0; i < loops; i++) {
    const cols = im2col(x, s.channels, s.size, s.size, win);
    addGram(h, cols.data, cols.rows, cols.cols);
  }
  const jsMs = (performance.now() - t) / loops;

  let mlMs: number | null = null;
  let tfMs: number | null = null;
  const cols = im2col(x, s.channels, s.size, s.size, win);
  if (mlMatrix) {
    t = performance.now();
    for (let i = 0; i < loops; i++) {
      const m = new mlMatrix.Matrix(cols.rows, cols.cols);
      for (let r = 0; r < cols.rows; r++) for (let c = 0; c < cols.cols; c++) m.set(r, c, cols.data[r * cols.cols + c]);
      m.transpose().mmul(m);
    }
    mlMs = (performance.now() - t) / loops;
  }
  if (tf) {
    const a = tf.tensor2d(cols.data, [cols.rows, cols.cols]);
    tf.matMul(a, a, true, false).dispose();
    t = performance.now();
    for (let i = 0; i < images; i++) {
      const c = im2col(x, s.channels, s.size, s.size, win);
      const ta = tf.tensor2d(c.data, [c.rows, c.cols]);
      const p = tf.matMul(ta, ta, true, false);
      p.dataSync();
      p.dispose();
      tf.dispose(ta);
    }
    tfMs = (performance.now() - t) / images;
    tf.dispose(a);
  }
  const macs = (cols.rows * k * k) / 1e6;
  const cell = (ms: number | null) => (ms === null ? "-" : `${ms.toFixed(2)}`);
  rows.push([s.label, `${k}`, `${cols.rows}`, macs.toFixed(1), ortMs.toFixed(2), cell(jsMs), cell(mlMs), cell(tfMs), (jsMs / ortMs).toFixed(1)]);
}
console.log(table(["layer input", "K", "columns", "M MACs", "onnxruntime ms", "TS loop ms", "ml-matrix ms", "tfjs-wasm ms", "loop / ort"], rows));
