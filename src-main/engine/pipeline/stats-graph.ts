// Calibration statistics computed by onnxruntime itself: each quantized layer's output is reduced inside
// the graph to per-image, per-channel min, max, mean, Σ|x − mean| and Σ(x − mean)², so only a few
// numbers per channel cross into JavaScript instead of every activation of every image.
import { clone, create } from "@bufbuild/protobuf";
import { AttributeProtoSchema, AttributeProto_AttributeType, ModelProtoSchema, NodeProtoSchema, type ModelProto, type NodeProto } from "onnx-buf";
import { nameGenerator, tensorOutput } from "../onnx/graph.ts";
import { int64Tensor } from "../onnx/tensor.ts";
import { upgradeOpset } from "../onnx/opset/index.ts";

export const MOMENTS = ["min", "max", "mean", "l1", "ss"] as const;
export type Moment = (typeof MOMENTS)[number];

export interface TapOutputs {
  tensor: string;
  /** [N, C, 1] per image and channel; null for taps reduced per tensor only */
  channel: Record<Moment, string> | null;
  /** [N, 1] per image over the whole tensor; null where the channel moments give it (see calibrate.ts) */
  tensor_: Record<Moment, string> | null;
  /** the tap's shape, so the reader knows C and the elements per channel */
  shape: string;
}

export interface StatsTap {
  tensor: string;
  perChannel: boolean;
  /** reduce over the whole tensor too: needed for its mean |x − mean| unless per-channel moments suffice */
  wholeTensor: boolean;
}

export interface StatsModel {
  model: ModelProto;
  taps: TapOutputs[];
}

/**
 * A copy of `source` (upgraded to opset 21 so every Reduce takes its axes as an input) whose extra outputs are
 * the moments of each tap. `perChannel` taps are [N, C, ...spatial] tensors reduced over their spatial axes.
 */
export function buildStatsModel(source: ModelProto, taps: StatsTap[], raw: boolean): StatsModel {
  const model = clone(ModelProtoSchema, source);
  const graph = model.graph!;
  const unique = nameGenerator(graph);
  upgradeOpset(model, unique);
  const nodes: NodeProto[] = [];
  const axis2 = unique("nibble_axis2");
  const axis1 = unique("nibble_axis1");
  const flatShape = unique("nibble_per_channel_shape");
  graph.initializer.push(int64Tensor(axis2, [1], [2]), int64Tensor(axis1, [1], [1]), int64Tensor(flatShape, [3], [0, 0, -1]));
  const op = (type: string, inputs: string[], base: string, keepdims?: boolean): string => {
    const out = unique(base);
    // Flatten's default axis is 1, which keeps the batch axis
    const attribute = keepdims === undefined ? [] : [create(AttributeProtoSchema, { name: "keepdims", type: AttributeProto_AttributeType.INT, i: keepdims ? 1n : 0n })];
    nodes.push(create(NodeProtoSchema, { opType: type, input: inputs, output: [out], name: out, attribute }));
    return out;
  };
  const moments = (x: string, axes: string, base: string): Record<Moment, string> => {
    const mean = op("ReduceMean", [x, axes], `${base}_mean`, true);
    const d = op("Sub", [x, mean], `${base}_centred`);
    return {
      min: op("ReduceMin", [x, axes], `${base}_min`, true),
      max: op("ReduceMax", [x, axes], `${base}_max`, true),
      mean,
      // Σ|x − mean|; the reader divides by the count (one node fewer than Abs then ReduceMean)
      l1: op("ReduceL1", [d, axes], `${base}_l1`, true),
      ss: op("ReduceSumSquare", [d, axes], `${base}_ss`, true),
    };
  };
  const result: TapOutputs[] = [];
  for (const tap of taps) {
    const base = `nibble_stats_${tap.tensor}`;
    const entry: TapOutputs = {
      tensor: tap.tensor,
      channel: tap.perChannel ? moments(op("Reshape", [tap.tensor, flatShape], `${base}_channels`), axis2, `${base}_channel`) : null,
      tensor_: tap.wholeTensor || !tap.perChannel ? moments(op("Flatten", [tap.tensor], `${base}_flat`), axis1, `${base}_tensor`) : null,
      shape: op("Shape", [tap.tensor], `${base}_shape`),
    };
    result.push(entry);
    for (const name of [...Object.values(entry.channel ?? {}), ...Object.values(entry.tensor_ ?? {})]) graph.output.push(tensorOutput(name));
    graph.output.push(tensorOutput(entry.shape, 7));
    if (raw && !graph.output.some((o) => o.name === tap.tensor)) graph.output.push(tensorOutput(tap.tensor));
  }
  graph.node.push(...nodes);
  return { model, taps: result };
}
