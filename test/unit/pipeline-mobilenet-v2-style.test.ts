// What a MobileNetV2-style network needs at 8 bits (issue 8's held-out depthwise/ReLU6 network lost 16
// points): linear bottlenecks (a projection with no activation, signed), residual adds, ReLU6 everywhere.
// We have no such ImageNet model, so we derive one from the real MobileNet v1 0.75: after four ReLU6
// outputs an inverted residual block is inserted (1x1 expansion + ReLU6, depthwise 3x3 + ReLU6, linear
// 1x1 projection, Add back onto the block input), seeded weights, scaled so the network still classifies.
// Fidelity is measured against the derived network's own FP32 outputs on real images calibration never saw.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, ModelProtoSchema, NodeProtoSchema, type ModelProto, type NodeProto } from "onnx-buf";
import { mkdtemp, readdir, rm, symlink, mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { withOutputs } from "../../src-main/engine/onnx/graph.ts";
import { encodeModel, loadModel } from "../../src-main/engine/onnx/model-io.ts";
import { float32Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { evaluate, type EvalBatch } from "../../src-main/engine/pipeline/evaluate.ts";
import { calibrate, imageBatches, quantizeCalibrated, type Calibrated } from "../../src-main/engine/pipeline/quantize.ts";
import { imageFeeds } from "../../src-main/engine/pipeline/runtime.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { PreprocessConfig, QuantConfig } from "../../shared/types.ts";
import { mulberry32 } from "../helpers/model-builder.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const PRE: PreprocessConfig = { preset: "inception", resize: 224, crop: 224 };
const tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-mbv2-"));
after(() => rm(tmp, { recursive: true, force: true }));

/** Inserts x + project(relu6(dw(relu6(expand(x))))) after the ReLU6 outputs `at` (Clip nodes, in graph order). */
function deriveInvertedResiduals(model: ModelProto, at: number[], seed: number): void {
  const g = model.graph!;
  const r = mulberry32(seed);
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * r() - 1) * bound);
  const clips = g.node.filter((n) => n.opType === "Clip");
  const ints = (name: string, v: number[]) => create(AttributeProtoSchema, { name, type: AT.INTS, ints: v.map(BigInt) });
  const int = (name: string, v: number) => create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(v) });
  let k = 0;
  for (const i of at) {
    const clip = clips[i];
    const x = clip.output[0];
    // the ReLU6 reads a BatchNormalization (or a Conv): its per-channel parameter's length is the width
    const producer = g.node.find((n) => n.output[0] === clip.input[0])!;
    const c = Number(g.initializer.find((t) => t.name === producer.input[1])!.dims[0]);
    const e = 2 * c;
    const name = (s: string) => `mbv2_${k}_${s}`;
    const init = (s: string, dims: number[], data: Float32Array) => {
      g.initializer.push(float32Tensor(name(s), dims, data));
      return name(s);
    };
    const nodes: NodeProto[] = [
      create(NodeProtoSchema, { opType: "Conv", name: name("expand"), input: [x, init("we", [e, c, 1, 1], uniform(e * c, Math.sqrt(6 / c))), init("be", [e], uniform(e, 0.5))], output: [name("e")], attribute: [ints("kernel_shape", [1, 1])] }),
      create(NodeProtoSchema, { opType: "Clip", name: name("relu6a"), input: [name("e"), clip.input[1], clip.input[2]], output: [name("ea")] }),
      create(NodeProtoSchema, { opType: "Conv", name: name("dw"), input: [name("ea"), init("wd", [e, 1, 3, 3], uniform(e * 9, Math.sqrt(6 / 9))), init("bd", [e], uniform(e, 0.5))], output: [name("d")], attribute: [ints("kernel_shape", [3, 3]), ints("pads", [1, 1, 1, 1]), int("group", e)] }),
      create(NodeProtoSchema, { opType: "Clip", name: name("relu6b"), input: [name("d"), clip.input[1], clip.input[2]], output: [name("da")] }),
      // the linear bottleneck: signed, no activation, added back onto the block input
      create(NodeProtoSchema, { opType: "Conv", name: name("project"), input: [name("da"), init("wp", [c, e, 1, 1], uniform(c * e, 0.05 * Math.sqrt(6 / e))), init("bp", [c], uniform(c, 0.05))], output: [name("p")], attribute: [ints("kernel_shape", [1, 1])] }),
      create(NodeProtoSchema, { opType: "Add", name: name("add"), input: [x, name("p")], output: [name("sum")] }),
    ];
    for (const n of g.node) if (n !== clip) n.input = n.input.map((t) => (t === x ? name("sum") : t));
    g.node.splice(g.node.indexOf(clip) + 1, 0, ...nodes);
    k++;
  }
}

describe("a MobileNetV2-style network derived from MobileNet v1 0.75, W8A8 (issue 8)", () => {
  let c: Calibrated;
  let cached: EvalBatch[];
  let logits: string;
  let file: string;
  before(async () => {
    const loaded = await loadModel(path.join(fixtures, "models/mobilenet_v1_0.75_224-imagenet.onnx"));
    deriveInvertedResiduals(loaded.model, [3, 7, 11, 15], 11);
    file = path.join(tmp, "mbv2-style.onnx");
    await writeFile(file, encodeModel(loaded.model));
    // disjoint calibration and evaluation images from the fixture folder
    const names = (await readdir(path.join(fixtures, "imagenet-val-1300"))).filter((f) => f.endsWith(".JPEG")).sort();
    for (const [dir, list] of [["calib", names.slice(0, 48)], ["eval", names.slice(600, 760)]] as const) {
      await mkdir(path.join(tmp, dir));
      for (const f of list) await symlink(path.join(fixtures, "imagenet-val-1300", f), path.join(tmp, dir, f));
    }
    c = await calibrate({ model: file, calib: { dir: path.join(tmp, "calib") }, preprocess: PRE, config: defaultQuantConfig(), histograms: false });
    logits = c.prepared.layers.at(-1)!.output;
    const set = await scanImages(path.join(tmp, "eval"));
    cached = [];
    for await (const b of imageBatches(set, c.geometry!, PRE)) cached.push({ feeds: imageFeeds(c.geometry!, b.data, b.count), count: b.count, labels: b.labels });
  });

  async function fidelity(config: Partial<QuantConfig>): Promise<{ agreement: number; sqnr: number }> {
    const { bytes } = await quantizeCalibrated(c, defaultQuantConfig({ wBits: 8, aBits: 8, ...config }), {});
    const r = await evaluate({
      fp32: encodeModel(withOutputs(c.prepared.model, [logits])), quantized: encodeModel(withOutputs(fromBinary(ModelProtoSchema, bytes), [logits])), output: c.prepared.output,
      images: cached.reduce((a, b) => a + b.count, 0), taps: [logits], batches: async function* () { yield* cached; },
    });
    return { agreement: r.agreement!.agreement, sqnr: r.sqnr.get(logits)! };
  }

  it("the derived network has the structure: 4 residual Adds after linear projections, ReLU6 elsewhere", () => {
    const adds = c.prepared.model.graph!.node.filter((n) => n.opType === "Add");
    assert.equal(adds.length, 4);
    const proj = c.prepared.layers.filter((l) => l.info.name.endsWith("_project"));
    assert.deepEqual(proj.map((l) => [l.info.activation, l.info.halfRange]), new Array(4).fill(["none", false]));
  });

  // measured at this commit: none 92.5% / 17.1 dB, all 94.4% / 21.7 dB, averaged extremes 78.1% / 8.7 dB
  it("the true range keeps it at 8 bits (top-1 agreement ≥ 90%, logits SQNR ≥ 15 dB; bias correction ≥ 19 dB); the averaged extremes do not", async () => {
    const none = await fidelity({ methods: [] });
    const all = await fidelity({});
    const reference = await fidelity({ methods: [], calibration: "reference" });
    assert.ok(none.agreement >= 90 && none.sqnr >= 15, `none: ${JSON.stringify(none)}`);
    assert.ok(all.agreement >= 92 && all.sqnr >= 19, `all: ${JSON.stringify(all)}`);
    assert.ok(reference.sqnr < none.sqnr - 5, `reference ${reference.sqnr} dB vs global ${none.sqnr} dB`);
  });
});
