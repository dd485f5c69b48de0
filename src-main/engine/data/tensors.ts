// A folder of NumPy arrays as model feeds: each .npy file is one input's sample or batch (single-input models),
// each .npz file holds one array per model input under that input's name (any model), plus optionally "label".
// Every file's headers are checked against the model's inputs before any work starts, so a wrong shape or dtype
// is reported with the file and the expected shape instead of onnxruntime's words halfway through a run.
import { open, readFile } from "node:fs/promises";
import path from "node:path";
import type { ModelInput } from "../onnx/prepare.ts";
import { halfToFloat } from "../onnx/tensor.ts";
import type { ElementType, Feeds, TensorData, TypedArray } from "../pipeline/runtime.ts";
import { DataError } from "./errors.ts";
import type { FeedBatch } from "./feeds.ts";
import { MAX_FILE_BYTES } from "./limits.ts";
import { parseNpy, parseNpyHeader, type NpyArray, type NpyHeader } from "./npy.ts";
import { readMember, readMemberHeader, withNpz } from "./npz.ts";
import { folderName, type ImageFile, type ImageSet } from "./scan.ts";

/** Keys of a .npz that carry class labels (one integer per sample) rather than a model input. */
const LABEL_KEYS = ["label", "labels"];

export interface TensorFile {
  file: ImageFile;
  /** samples the file holds */
  samples: number;
  /** per input: the shape of one sample (without the batch axis) */
  sampleShapes: Record<string, number[]>;
}

export interface TensorPlan {
  inputs: ModelInput[];
  files: TensorFile[];
  samples: number;
}

const shapeText = (dims: (number | string)[]) => `[${dims.map((d) => (typeof d === "number" && d >= 0 ? d : typeof d === "string" && d !== "" ? d : "?")).join(", ")}]`;
const tuple = (dims: number[]) => `(${dims.join(", ")}${dims.length === 1 ? "," : ""})`;

function isFloat(t: ElementType): boolean {
  return t === "float32" || t === "float64" || t === "float16";
}

function isInteger(t: ElementType): boolean {
  return !isFloat(t) && t !== "bool";
}

/** Whether `from` values can feed a `to` input without changing what they mean. */
export function feedsAs(from: ElementType, to: ElementType): boolean {
  if (from === to) return true;
  if (to === "float32" || to === "float64") return isFloat(from);
  if (isInteger(to)) return isInteger(from);
  return false;
}

function dtypeHint(to: ElementType): string {
  return to === "bool" ? "bool" : `numpy.${to}`;
}

/**
 * How many samples an array holds for `input`, checking its shape: one sample (the input's shape without the batch
 * axis) or a batch (the input's shape with any batch size). Fixed axes must match; symbolic ones take any size.
 */
function samplesIn(shape: number[], input: ModelInput, where: string): number {
  const want = input.shape;
  const fits = (dims: number[], axes: (number | string)[]) =>
    dims.length === axes.length && dims.every((d, i) => typeof axes[i] !== "number" || (axes[i] as number) <= 0 || axes[i] === d);
  if (want.length === 0) {
    if (shape.length === 0) return 1;
  } else {
    if (fits(shape, want.slice(1))) return 1;
    if (shape.length === want.length && fits(shape.slice(1), want.slice(1))) return shape[0];
  }
  const one = want.slice(1);
  throw new DataError(
    `${where} has shape ${tuple(shape)}, but input "${input.name}" takes ${shapeText(want)}: ` +
      `save one sample of shape ${shapeText(one)} or a batch of shape ${shapeText(["k", ...one])}.`,
  );
}

function checkType(h: { type: ElementType }, input: ModelInput, where: string): void {
  const to = input.elemType as ElementType;
  if (!feedsAs(h.type, to)) {
    throw new DataError(`${where} holds ${h.type} values, but input "${input.name}" takes ${to} ${shapeText(input.shape)}. Save it as ${to} (arr.astype(${dtypeHint(to)})).`);
  }
}

async function readNpyHead(file: string): Promise<{ header: NpyHeader; size: number }> {
  const fh = await open(file, "r").catch((e: NodeJS.ErrnoException) => {
    throw new DataError(`${file} cannot be opened (${e.code ?? e.message}).`);
  });
  try {
    const { size } = await fh.stat();
    let length = 4096;
    for (;;) {
      const buf = Buffer.alloc(Math.min(length, size));
      await fh.read(buf, 0, buf.length, 0);
      try {
        return { header: parseNpyHeader(buf, file, size), size };
      } catch (e) {
        if (!(e instanceof RangeError) || length >= size) throw e;
        length *= 16;
      }
    }
  } finally {
    await fh.close();
  }
}

/** Checks every file of a tensor folder against the model's inputs; the plan says how many samples each holds. */
export async function planTensorSet(set: ImageSet, inputs: ModelInput[]): Promise<TensorPlan> {
  const files: TensorFile[] = [];
  const names = inputs.map((i) => `"${i.name}"`).join(", ");
  for (const f of set.files) {
    const ext = path.extname(f.rel).toLowerCase();
    if (ext === ".npy") {
      if (inputs.length > 1) {
        throw new DataError(
          `${f.path} is a single array, but the model has ${inputs.length} inputs (${names}). Save each sample as a .npz file with one array per input: numpy.savez(file, ${inputs.map((i) => `${/^[A-Za-z_]\w*$/.test(i.name) ? i.name : `**{"${i.name}": ...}`}=...`).join(", ")}).`,
        );
      }
      const { header, size } = await readNpyHead(f.path);
      if (header.dataOffset + header.dataBytes > size) {
        throw new DataError(`${f.path} is cut short: shape ${tuple(header.shape)} of ${header.type} needs ${header.dataBytes} bytes of data but the file has ${Math.max(0, size - header.dataOffset)}. Save it again with numpy.save.`);
      }
      checkType(header, inputs[0], f.path);
      const samples = samplesIn(header.shape, inputs[0], f.path);
      files.push({ file: f, samples, sampleShapes: { [inputs[0].name]: sampleShape(header.shape, inputs[0]) } });
      continue;
    }
    files.push(
      await withNpz(f.path, async (members, zip) => {
        const byKey = new Map(members.map((m) => [m.key, m]));
        const missing = inputs.filter((i) => !byKey.has(i.name) && !(inputs.length === 1 && byKey.has("arr_0")));
        if (missing.length > 0) {
          const keys = members.map((m) => `"${m.key}"`).join(", ") || "none";
          throw new DataError(
            `${f.path} has no array named ${missing.map((i) => `"${i.name}"`).join(", ")} (its arrays: ${keys}). Each .npz file needs one array per model input, named after it: ${inputs.map((i) => `"${i.name}" ${shapeText(i.shape)}`).join(", ")}.`,
          );
        }
        let samples = -1;
        const sampleShapes: Record<string, number[]> = {};
        for (const input of inputs) {
          const m = byKey.get(input.name) ?? byKey.get("arr_0")!;
          const where = `${f.path} (array "${m.key}")`;
          const h = await readMemberHeader(zip, m, f.path);
          checkType(h, input, where);
          const k = samplesIn(h.shape, input, where);
          if (samples >= 0 && k !== samples) {
            throw new DataError(`${f.path} holds ${samples} samples for one input but ${k} in array "${m.key}". Every array of a file must hold the same number of samples.`);
          }
          samples = k;
          sampleShapes[input.name] = sampleShape(h.shape, input);
        }
        const label = LABEL_KEYS.map((k) => byKey.get(k)).find((m) => m && !inputs.some((i) => i.name === m.key));
        if (label) {
          const h = await readMemberHeader(zip, label, f.path);
          const n = h.shape.reduce((a, b) => a * b, 1);
          if (!isInteger(h.type) || n !== samples) {
            throw new DataError(`${f.path}: array "${label.key}" must hold one whole-number class index per sample (${samples}), but it holds ${n} ${h.type} value(s). Fix it or leave it out.`);
          }
        }
        return { file: f, samples, sampleShapes };
      }),
    );
  }
  return { inputs, files, samples: files.reduce((a, f) => a + f.samples, 0) };
}

function sampleShape(shape: number[], input: ModelInput): number[] {
  return shape.length === input.shape.length ? shape.slice(1) : shape;
}

interface Block {
  rel: string;
  count: number;
  arrays: Record<string, { type: ElementType; data: TypedArray; sample: number[] }>;
  labels: Int32Array;
}

async function readBlock(tf: TensorFile, inputs: ModelInput[]): Promise<Block> {
  const f = tf.file;
  const arrays: Block["arrays"] = {};
  const labels = new Int32Array(tf.samples).fill(f.label ?? -1);
  const put = (input: ModelInput, a: NpyArray) => {
    arrays[input.name] = { type: input.elemType as ElementType, data: convert(a, input.elemType as ElementType, f.path, input.name), sample: tf.sampleShapes[input.name] };
  };
  if (path.extname(f.rel).toLowerCase() === ".npy") {
    const buf = await readFile(f.path);
    if (buf.length > MAX_FILE_BYTES) throw new DataError(`${f.path} is above the ${MAX_FILE_BYTES / 2 ** 20} MiB limit per file. Split it over several files.`);
    put(inputs[0], parseNpy(buf, f.path));
  } else {
    await withNpz(f.path, async (members, zip) => {
      const byKey = new Map(members.map((m) => [m.key, m]));
      for (const input of inputs) put(input, await readMember(zip, byKey.get(input.name) ?? byKey.get("arr_0")!, f.path));
      const label = LABEL_KEYS.map((k) => byKey.get(k)).find((m) => m && !inputs.some((i) => i.name === m.key));
      if (label) {
        const values = (await readMember(zip, label, f.path)).data;
        for (let i = 0; i < tf.samples; i++) labels[i] = Number(values[i]);
      }
    });
  }
  return { rel: f.rel, count: tf.samples, arrays, labels };
}

/** The array's values as the input's element type (feedsAs has said they fit). */
function convert(a: NpyArray, to: ElementType, file: string, input: string): TypedArray {
  if (a.type === to) return a.data;
  if (to === "float32") return a.type === "float16" ? Float32Array.from(a.data as Uint16Array, halfToFloat) : Float32Array.from(a.data as Float64Array);
  if (to === "float64") return a.type === "float16" ? Float64Array.from(a.data as Uint16Array, halfToFloat) : Float64Array.from(a.data as Float32Array);
  const [lo, hi, make] = INTEGER_RANGES[to as keyof typeof INTEGER_RANGES];
  const out = make(a.data.length);
  for (let i = 0; i < a.data.length; i++) {
    const v = a.data[i];
    if (v < lo || v > hi) throw new DataError(`${file}: value ${v} at position ${i} does not fit input "${input}", which takes ${to}. Save the array as ${to}.`);
    out[i] = (to === "int64" || to === "uint64" ? BigInt(v) : Number(v)) as never;
  }
  return out;
}

const INTEGER_RANGES = {
  int8: [-128, 127, (n: number) => new Int8Array(n)],
  uint8: [0, 255, (n: number) => new Uint8Array(n)],
  int16: [-32768, 32767, (n: number) => new Int16Array(n)],
  uint16: [0, 65535, (n: number) => new Uint16Array(n)],
  int32: [-(2 ** 31), 2 ** 31 - 1, (n: number) => new Int32Array(n)],
  uint32: [0, 2 ** 32 - 1, (n: number) => new Uint32Array(n)],
  int64: [-(2n ** 63n), 2n ** 63n - 1n, (n: number) => new BigInt64Array(n)],
  uint64: [0, 2n ** 64n - 1n, (n: number) => new BigUint64Array(n)],
} as const satisfies Record<string, readonly [number | bigint, number | bigint, (n: number) => TypedArray]>;

const sameShapes = (a: Block, b: Block) => Object.keys(a.arrays).every((k) => a.arrays[k].sample.join() === b.arrays[k].sample.join());

/**
 * Batches of up to `batchSize` samples across files, in file order; a batch never mixes per-sample shapes (a model
 * with dynamic axes may be fed differently sized samples). One file is read ahead while the consumer works.
 */
export async function* tensorBatches(set: ImageSet, plan: TensorPlan, batchSize: number, signal?: AbortSignal): AsyncGenerator<FeedBatch> {
  let processed = 0;
  let next = plan.files.length > 0 ? readBlock(plan.files[0], plan.inputs) : null;
  let k = 0;
  let pending: { block: Block; from: number }[] = [];
  let pendingCount = 0;
  const flush = (): FeedBatch => {
    const feeds: Feeds = {};
    const first = pending[0].block;
    for (const input of plan.inputs) {
      const a = first.arrays[input.name];
      const per = a.sample.reduce((x, y) => x * y, 1);
      const data = makeLike(a.data, pendingCount * per);
      let at = 0;
      for (const { block, from } of pending) {
        const take = Math.min(block.count - from, pendingCount - at);
        data.set(block.arrays[input.name].data.subarray(from * per, (from + take) * per) as never, at * per);
        at += take;
      }
      feeds[input.name] = { type: a.type, data, dims: [pendingCount, ...a.sample] } satisfies TensorData;
    }
    const labels = new Int32Array(pendingCount);
    const files: string[] = [];
    let at = 0;
    for (const { block, from } of pending) {
      const take = Math.min(block.count - from, pendingCount - at);
      labels.set(block.labels.subarray(from, from + take), at);
      for (let i = 0; i < take; i++) files.push(block.rel);
      at += take;
    }
    const batch = { feeds, count: pendingCount, labels, files, processed };
    pending = [];
    pendingCount = 0;
    return batch;
  };
  while (next) {
    const block = await next;
    signal?.throwIfAborted();
    k++;
    next = k < plan.files.length ? readBlock(plan.files[k], plan.inputs) : null;
    next?.catch(() => undefined);
    let from = 0;
    while (from < block.count) {
      if (pending.length > 0 && !sameShapes(pending[0].block, block)) yield flush();
      const take = Math.min(batchSize - pendingCount, block.count - from);
      pending.push({ block, from });
      pendingCount += take;
      from += take;
      if (from >= block.count) processed = k;
      if (pendingCount === batchSize) yield flush();
    }
  }
  if (pendingCount > 0) yield flush();
  if (plan.samples === 0) throw new DataError(`${folderName(set.root, set.role)} holds no samples (every array has a batch of 0). Save at least one sample.`);
}

function makeLike(a: TypedArray, n: number): TypedArray {
  return new (a.constructor as new (n: number) => TypedArray)(n);
}
