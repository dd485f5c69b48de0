// Where the statistics stage's time goes: CPU seconds of onnxruntime runs over pre-decoded images, for the
// plain model and for the statistics model with some or all of its reductions. Run:
//   node --import tsx scripts/bench/stats-cost.ts [images]
import { clone, create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, ModelProtoSchema, NodeProtoSchema } from "onnx-buf";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { nameGenerator, tensorOutput } from "../../src-main/engine/onnx/graph.ts";
import { encodeModel } from "../../src-main/engine/onnx/model-io.ts";
import { int64Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { calibrate, imageBatches } from "../../src-main/engine/pipeline/quantize.ts";
import { openSession, runBatch } from "../../src-main/engine/pipeline/runtime.ts";
import { upgradeOpset } from "../../src-main/engine/onnx/opset/index.ts";
import { fixturesDir } from "./common.ts";

const FIXTURES = fixturesDir();
const model = `${FIXTURES}/models/resnet56-cifar10.onnx`;
const dir = `${FIXTURES}/cifar10-test`;
const images = Number(process.argv[2] ?? 640);
const c = await calibrate({ model, calib: { dir, limit: 64 }, preprocess: { preset: "imagenet" }, config: defaultQuantConfig(), histograms: false });
const batches = [];
for await (const b of imageBatches(await scanImages(dir, { limit: images, seed: 0 }), c.geometry!, { preset: "imagenet" })) batches.push(b);
const taps = c.prepared.layers.filter((l) => l.info.op === "Conv").map((l) => l.output);

/** The prepared model with, per conv output, the reductions named in `parts`. */
function variant(parts: string[]): { bytes: Uint8Array; outputs: string[] } {
  const m = clone(ModelProtoSchema, c.prepared.model);
  const g = m.graph!;
  const unique = nameGenerator(g);
  upgradeOpset(m, unique);
  const axes = unique("axes");
  g.initializer.push(int64Tensor(axes, [2], [2, 3]));
  const outputs: string[] = [];
  const op = (type: string, inputs: string[]) => {
    const o = unique(type);
    const attribute = type.startsWith("Reduce") ? [create(AttributeProtoSchema, { name: "keepdims", type: AT.INT, i: 1n })] : [];
    g.node.push(create(NodeProtoSchema, { opType: type, input: inputs, output: [o], name: o, attribute }));
    return o;
  };
  for (const x of parts.length ? taps : []) {
    const mean = op("ReduceMean", [x, axes]);
    outputs.push(mean);
    if (parts.includes("minmax")) outputs.push(op("ReduceMin", [x, axes]), op("ReduceMax", [x, axes]));
    if (parts.includes("deviations")) {
      const d = op("Sub", [x, mean]);
      outputs.push(op("ReduceL1", [d, axes]), op("ReduceSumSquare", [d, axes]));
    }
  }
  for (const o of outputs) g.output.push(tensorOutput(o));
  return { bytes: encodeModel(m), outputs: outputs.length ? outputs : [c.prepared.output] };
}

const variants: [string, string[]][] = [["plain", []], ["mean", ["mean"]], ["mean, min, max", ["mean", "minmax"]], ["all five moments", ["mean", "minmax", "deviations"]]];
const rows: [string, number][] = [];
for (const [name, parts] of variants) {
  const v = variant(parts);
  const session = await openSession(v.bytes);
  const seconds: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const before = process.cpuUsage();
    for (const b of batches) await runBatch(session, c.geometry!, b.data, b.count, v.outputs);
    const used = process.cpuUsage(before);
    seconds.push((used.user + used.system) / 1e6);
  }
  rows.push([name, Math.min(...seconds)]);
}
console.log(`| reductions per conv output (ResNet-56, ${batches.reduce((a, b) => a + b.count, 0)} images) | CPU s (best of 3) | × plain |`);
console.log("|:---|---:|---:|");
for (const [name, s] of rows) console.log(`| ${name} | ${s.toFixed(2)} | ${(s / rows[0][1]).toFixed(2)} |`);
