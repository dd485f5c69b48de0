// How many samples one run takes. Converters often fix the batch at 1 (all three ImageNet fixtures, UltraFace),
// which would make calibration and evaluation run image by image. Nibble's own runs may use an internal copy whose
// batch axis is symbolic, but only after checking once, on real samples, that a batch gives the same outputs as
// the samples one by one: a graph that bakes the batch into a Reshape or a Slice fails or differs, and then the
// model is fed one sample at a time. The user's file and the exported file keep their own input signature.
import { clone, create, fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorShapeProto_DimensionSchema, type ModelProto, type ValueInfoProto } from "onnx-buf";
import { attrInt, nameGenerator } from "../onnx/graph.ts";
import { encodeModel } from "../onnx/model-io.ts";
import { int64Tensor, tensorToIntegers } from "../onnx/tensor.ts";
import type { FeedBatch } from "../data/feeds.ts";
import { closeSession, openSession, runFeeds, tensorValues, type Feeds, type TensorData } from "./runtime.ts";

/** Samples per run when the model allows any batch. */
export const BATCH_SIZE = 64;
/** Input bytes per run at most: large inputs (OCR pages, 4K photos) get smaller batches. */
const BATCH_BYTES = 64 * 2 ** 20;
const BATCH_PARAM = "nibble_batch";

export interface Batching {
  batchSize: number;
  /** Nibble's runs use copies with a symbolic batch axis (relaxBatch) */
  relaxed: boolean;
  /** one plain sentence for the report, or null when nothing needs saying */
  note: string | null;
}

function fixedBatchOf(v: ValueInfoProto): number | null {
  const t = v.type?.value.case === "tensorType" ? v.type.value.value : null;
  const d = t?.shape?.dim[0]?.value;
  return d?.case === "dimValue" ? Number(d.value) : null;
}

function setBatchParam(v: ValueInfoProto): void {
  const t = v.type?.value.case === "tensorType" ? v.type.value.value : null;
  if (t?.shape && t.shape.dim.length > 0) t.shape.dim[0] = create(TensorShapeProto_DimensionSchema, { value: { case: "dimParam", value: BATCH_PARAM } });
}

/**
 * A copy whose inputs and outputs take any batch size. Intermediate shape annotations are dropped (they would pin
 * the batch to 1); onnxruntime infers them again. Exporters write the batch of 1 into Reshape targets ([1, -1],
 * [1, 1, 1, 768]): those leading 1s become 0 ("copy this axis"), which is right when axis 0 is the batch; the
 * caller checks the copy against the original on real samples (sameAsSingles), so a wrong guess is caught.
 */
export function relaxBatch(model: ModelProto): ModelProto {
  const copy = clone(ModelProtoSchema, model);
  const graph = copy.graph!;
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  for (const v of graph.input) if (!initializers.has(v.name)) setBatchParam(v);
  for (const v of graph.output) setBatchParam(v);
  graph.valueInfo = [];
  const fresh = nameGenerator(graph);
  for (const node of graph.node) {
    if (node.opType !== "Reshape" || (node.domain !== "" && node.domain !== "ai.onnx") || attrInt(node, "allowzero", 0) === 1) continue;
    const target = initializers.get(node.input[1]);
    if (!target || target.dims.length !== 1) continue;
    const shape = tensorToIntegers(target);
    if (shape[0] !== 1) continue;
    const name = fresh(`${target.name}_any_batch`);
    graph.initializer.push(int64Tensor(name, [shape.length], [0, ...shape.slice(1)]));
    node.input[1] = name;
  }
  return copy;
}

export function relaxBytes(bytes: Uint8Array): Uint8Array {
  return encodeModel(relaxBatch(fromBinary(ModelProtoSchema, bytes)));
}

function perSampleBytes(feeds: Feeds, count: number): number {
  return Object.values(feeds).reduce((a, t) => a + t.data.byteLength / count, 0);
}

function sizeFor(feeds: Feeds, count: number): number {
  return Math.max(1, Math.min(BATCH_SIZE, Math.floor(BATCH_BYTES / Math.max(1, perSampleBytes(feeds, count)))));
}

function slice(feeds: Feeds, i: number): Feeds {
  return Object.fromEntries(
    Object.entries(feeds).map(([name, t]): [string, TensorData] => {
      const per = t.data.length / t.dims[0];
      return [name, { type: t.type, data: t.data.slice(i * per, (i + 1) * per), dims: [1, ...t.dims.slice(1)] }];
    }),
  );
}

/** True when `batched` on the whole batch gives what `single` gives on each sample, within float tolerance. */
export async function sameAsSingles(single: Uint8Array | string, batched: Uint8Array, sample: FeedBatch): Promise<boolean> {
  const a = await openSession(single, { quiet: true });
  let b = null;
  try {
    b = await openSession(batched, { quiet: true });
    const outputs = a.outputNames;
    const together = await runFeeds(b, sample.feeds, outputs);
    for (let i = 0; i < sample.count; i++) {
      const alone = await runFeeds(a, slice(sample.feeds, i), outputs);
      for (const name of outputs) {
        const x = tensorValues(alone[name]);
        const all = tensorValues(together[name]);
        if (all.length !== x.length * sample.count) return false;
        let scale = 0;
        for (const v of x) scale = Math.max(scale, Math.abs(v));
        for (let k = 0; k < x.length; k++) if (!(Math.abs(x[k] - all[i * x.length + k]) <= 1e-4 * scale + 1e-5)) return false;
      }
    }
    return true;
  } catch {
    return false; // the graph cannot take a batch (a Reshape to [1, ...], a batch-1 Slice, ...)
  } finally {
    await Promise.all([closeSession(a), closeSession(b)]);
  }
}

/**
 * The batch size for this model and data. `sample` is a batch of 2 (or the data's only sample) from the data,
 * used once to check a relaxed copy of a batch-1 model.
 */
export async function chooseBatching(model: ModelProto, inputs: { name: string }[], sample: FeedBatch | null): Promise<Batching> {
  const graph = model.graph!;
  const real = graph.input.filter((v) => inputs.some((i) => i.name === v.name));
  const fixed = real.map(fixedBatchOf);
  const size = sample ? sizeFor(sample.feeds, sample.count) : BATCH_SIZE;
  if (fixed.every((b) => b === null)) return { batchSize: size, relaxed: false, note: null };
  const first = fixed.find((b) => b !== null)!;
  if (first !== 1) return { batchSize: first, relaxed: false, note: null };
  if (!sample || sample.count < 2) return { batchSize: 1, relaxed: false, note: null };
  const ok = await sameAsSingles(encodeModel(model), encodeModel(relaxBatch(model)), sample);
  return ok
    ? { batchSize: size, relaxed: true, note: null }
    : { batchSize: 1, relaxed: false, note: "The model's graph only runs one sample at a time (its batch size is fixed at 1 inside the graph), so calibration and evaluation ran sample by sample." };
}
