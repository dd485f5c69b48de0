// The equalize stage (before statistics): one float pass over the calibration images for each equalized
// pair's per-channel minimum and maximum (ReLU6 bounds, high-bias absorption), then onnx/equalize.ts.
import { clone, create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, ModelProtoSchema, NodeProtoSchema } from "onnx-buf";
import { equalizeModel, findEqualizePairs, type ChannelRange, type EqualizeOptions, type EqualizeResult } from "../onnx/equalize.ts";
import { nameGenerator, tensorOutput } from "../onnx/graph.ts";
import { encodeModel } from "../onnx/model-io.ts";
import type { PreparedModel } from "../onnx/prepare.ts";
import { int64Tensor } from "../onnx/tensor.ts";
import { prune } from "./hessian.ts";
import { StageProgress, throwIfAborted, type ProgressListener } from "./progress.ts";
import { upgradeOpset } from "../onnx/opset/index.ts";
import { relaxBatch } from "./batching.ts";
import { closeSession, openSession, runFeeds, tensorData, type Feeds } from "./runtime.ts";

export interface EqualizeStageInput {
  prepared: PreparedModel;
  /** the batches feed a batch-relaxed copy (pipeline/batching.ts) */
  relaxed: boolean;
  images: number;
  batches: AsyncIterable<{ feeds: Feeds; count: number }>;
  options?: EqualizeOptions;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** Global per-channel min and max of NCHW tensors over the images, reduced inside onnxruntime. */
export async function channelRanges(input: Omit<EqualizeStageInput, "options">, tensors: string[]): Promise<Map<string, ChannelRange>> {
  const model = input.relaxed ? relaxBatch(input.prepared.model) : clone(ModelProtoSchema, input.prepared.model);
  const graph = model.graph!;
  const unique = nameGenerator(graph);
  upgradeOpset(model, unique);
  const axes = unique("nibble_range_axes");
  graph.initializer.push(int64Tensor(axes, [3], [0, 2, 3]));
  const keep = create(AttributeProtoSchema, { name: "keepdims", type: AT.INT, i: 0n });
  const names = tensors.map((t) => {
    const lo = unique(`${t}_range_min`);
    const hi = unique(`${t}_range_max`);
    graph.node.push(create(NodeProtoSchema, { opType: "ReduceMin", input: [t, axes], output: [lo], name: lo, attribute: [keep] }));
    graph.node.push(create(NodeProtoSchema, { opType: "ReduceMax", input: [t, axes], output: [hi], name: hi, attribute: [keep] }));
    return { t, lo, hi };
  });
  graph.output = names.flatMap((n) => [tensorOutput(n.lo), tensorOutput(n.hi)]);
  prune(graph);
  const ranges = new Map<string, ChannelRange>();
  if (names.length === 0) return ranges;
  const session = await openSession(encodeModel(model));
  const progress = new StageProgress("equalize", input.images, input.onProgress, "channel ranges");
  let done = 0;
  try {
    for await (const b of input.batches) {
      throwIfAborted(input.signal);
      const out = await runFeeds(session, b.feeds, graph.output.map((o) => o.name));
      for (const n of names) {
        const lo = tensorData(out[n.lo]);
        const hi = tensorData(out[n.hi]);
        let r = ranges.get(n.t);
        if (!r) {
          r = { min: new Float64Array(lo.length).fill(Infinity), max: new Float64Array(hi.length).fill(-Infinity) };
          ranges.set(n.t, r);
        }
        for (let c = 0; c < lo.length; c++) {
          r.min[c] = Math.min(r.min[c], lo[c]);
          r.max[c] = Math.max(r.max[c], hi[c]);
        }
      }
      for (const t of Object.values(out)) t.dispose();
      done += b.count;
      progress.update(done);
    }
  } finally {
    await closeSession(session);
  }
  return ranges;
}

export async function equalizeStage(input: EqualizeStageInput): Promise<{ prepared: PreparedModel; result: EqualizeResult }> {
  const pairs = findEqualizePairs(input.prepared.model, input.prepared.layers);
  const ranges = await channelRanges(input, [...new Set(pairs.map((p) => p.tensor))]);
  throwIfAborted(input.signal);
  const result = equalizeModel(input.prepared.model, input.prepared.layers, pairs, ranges, input.options);
  return { prepared: { ...input.prepared, model: result.model }, result };
}
