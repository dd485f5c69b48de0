// Builds small, valid ONNX CNNs in code for tests: a fluent chain over a "current" tensor, with
// shapes tracked so weights get the right dimensions, and seeded random weights so runs repeat.
import { create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType as AT,
  ModelProtoSchema,
  NodeProtoSchema,
  ValueInfoProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType as DT,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "onnx-buf";
import * as ort from "onnxruntime-node";
import { float32Tensor, int64Tensor } from "../../src-main/engine/onnx/tensor.ts";
import { mulberry32 } from "../../src-main/engine/random.ts";

export { mulberry32 };

/** How a layer's weight reaches it: directly, or through nodes exporters sometimes emit. */
export type WeightSource = "initializer" | "constant" | "identity" | "transpose" | "reshape";

export interface BuilderOptions {
  opset?: number;
  irVersion?: number;
  seed?: number;
}

/** The IR version the ONNX release introducing each opset wrote. */
const IR_FOR_OPSET: Record<number, number> = { 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };


function attr(name: string, value: number | number[], float = false): AttributeProto {
  if (Array.isArray(value)) return create(AttributeProtoSchema, { name, type: AT.INTS, ints: value.map(BigInt) });
  return float
    ? create(AttributeProtoSchema, { name, type: AT.FLOAT, f: value })
    : create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(value) });
}

function valueInfo(name: string, dims: (number | string)[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: "tensorType",
        value: {
          elemType: DT.FLOAT,
          shape: {
            dim: dims.map((d) => ({ value: typeof d === "number" ? { case: "dimValue" as const, value: BigInt(d) } : { case: "dimParam" as const, value: d } })),
          },
        },
      },
    },
  });
}

export class ModelBuilder {
  readonly opset: number;
  readonly irVersion: number;
  private readonly random: () => number;
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly shapes = new Map<string, number[]>();
  private batchParam: string | null = null;
  private counter = 0;
  private cur = "";

  constructor(options: BuilderOptions = {}) {
    this.opset = options.opset ?? 13;
    if (this.opset < 11 || this.opset > 21) throw new RangeError(`ModelBuilder supports opsets 11..21, not ${this.opset}`);
    this.irVersion = options.irVersion ?? IR_FOR_OPSET[this.opset];
    this.random = mulberry32(options.seed ?? 1);
  }

  /** The tensor the next operation reads. */
  get current(): string {
    return this.cur;
  }

  shapeOf(tensor: string): number[] {
    return this.shapes.get(tensor)!;
  }

  /** A float input; a string batch dim makes it symbolic (tracked as 1 for shape arithmetic). */
  input(name: string, dims: (number | string)[]): this {
    if (typeof dims[0] === "string") this.batchParam = dims[0];
    this.inputs.push(valueInfo(name, dims));
    this.shapes.set(name, dims.map((d) => (typeof d === "number" ? d : 1)));
    this.cur = name;
    return this;
  }

  /** Continue from another tensor (for branches and residual adds). */
  from(tensor: string): this {
    if (!this.shapes.has(tensor)) throw new Error(`unknown tensor ${tensor}`);
    this.cur = tensor;
    return this;
  }

  conv(o: { out: number; kernel?: number; stride?: number; pad?: number; groups?: number; bias?: boolean; name?: string; weights?: WeightSource }): this {
    const [n, c, h, w] = this.shapeOf(this.cur);
    const k = o.kernel ?? 3;
    const stride = o.stride ?? 1;
    const pad = o.pad ?? Math.floor(k / 2);
    const groups = o.groups ?? 1;
    if (c % groups !== 0 || o.out % groups !== 0) throw new Error(`conv: ${c} -> ${o.out} channels not divisible by ${groups} groups`);
    const wDims = [o.out, c / groups, k, k];
    const inputs = [this.cur, this.weight("conv_w", wDims, o.weights ?? "initializer", (c / groups) * k * k)];
    if (o.bias ?? true) inputs.push(this.param("conv_b", [o.out], () => this.uniform(0.1)));
    const attrs = [attr("group", groups), attr("kernel_shape", [k, k]), attr("pads", [pad, pad, pad, pad]), attr("strides", [stride, stride])];
    const size = (x: number) => Math.floor((x + 2 * pad - k) / stride) + 1;
    return this.op("Conv", inputs, [n, o.out, size(h), size(w)], attrs, o.name);
  }

  batchNorm(o: { eps?: number; name?: string } = {}): this {
    const shape = this.shapeOf(this.cur);
    const c = shape[1];
    const inputs = [
      this.cur,
      this.param("bn_scale", [c], () => 0.5 + this.random()),
      this.param("bn_bias", [c], () => this.uniform(0.5)),
      this.param("bn_mean", [c], () => this.uniform(0.5)),
      this.param("bn_var", [c], () => 0.5 + 1.5 * this.random()),
    ];
    return this.op("BatchNormalization", inputs, shape, [attr("epsilon", o.eps ?? 1e-5, true)], o.name);
  }

  relu(name?: string): this {
    return this.op("Relu", [this.cur], this.shapeOf(this.cur), [], name);
  }

  clip(min: number, max: number, name?: string): this {
    if (this.opset < 11) return this.op("Clip", [this.cur], this.shapeOf(this.cur), [attr("min", min, true), attr("max", max, true)], name);
    const lo = this.param("clip_min", [], () => min);
    const hi = this.param("clip_max", [], () => max);
    return this.op("Clip", [this.cur, lo, hi], this.shapeOf(this.cur), [], name);
  }

  leakyRelu(alpha = 0.01, name?: string): this {
    return this.op("LeakyRelu", [this.cur], this.shapeOf(this.cur), [attr("alpha", alpha, true)], name);
  }

  /** Any shape-preserving operator on the current tensor, e.g. act("HardSigmoid", { alpha: 0.2 }). */
  act(opType: string, floats: Record<string, number> = {}, extraInputs: string[] = [], name?: string): this {
    const attrs = Object.entries(floats).map(([k, v]) => attr(k, v, true));
    return this.op(opType, [this.cur, ...extraInputs], this.shapeOf(this.cur), attrs, name);
  }

  mul(other: string, name?: string): this {
    return this.op("Mul", [this.cur, other], this.shapeOf(this.cur), [], name);
  }

  add(other: string, name?: string): this {
    return this.op("Add", [this.cur, other], this.shapeOf(this.cur), [], name);
  }

  maxPool(o: { kernel?: number; stride?: number; name?: string } = {}): this {
    const [n, c, h, w] = this.shapeOf(this.cur);
    const k = o.kernel ?? 2;
    const s = o.stride ?? k;
    const size = (x: number) => Math.floor((x - k) / s) + 1;
    return this.op("MaxPool", [this.cur], [n, c, size(h), size(w)], [attr("kernel_shape", [k, k]), attr("strides", [s, s])], o.name);
  }

  globalAveragePool(name?: string): this {
    const [n, c] = this.shapeOf(this.cur);
    return this.op("GlobalAveragePool", [this.cur], [n, c, 1, 1], [], name);
  }

  flatten(name?: string): this {
    const [n, ...rest] = this.shapeOf(this.cur);
    return this.op("Flatten", [this.cur], [n, rest.reduce((a, b) => a * b, 1)], [attr("axis", 1)], name);
  }

  transpose(perm: number[], name?: string): this {
    const shape = this.shapeOf(this.cur);
    return this.op("Transpose", [this.cur], perm.map((p) => shape[p]), [attr("perm", perm)], name);
  }

  gemm(o: { out: number; transB?: boolean; bias?: boolean; name?: string; weights?: WeightSource }): this {
    const [n, k] = this.shapeOf(this.cur);
    const transB = o.transB ?? true;
    const inputs = [this.cur, this.weight("fc_w", transB ? [o.out, k] : [k, o.out], o.weights ?? "initializer", k)];
    if (o.bias ?? true) inputs.push(this.param("fc_b", [o.out], () => this.uniform(0.1)));
    return this.op("Gemm", inputs, [n, o.out], [attr("transB", transB ? 1 : 0)], o.name);
  }

  matmul(o: { out: number; name?: string; weights?: WeightSource }): this {
    const [n, k] = this.shapeOf(this.cur);
    return this.op("MatMul", [this.cur, this.weight("mm_w", [k, o.out], o.weights ?? "initializer", k)], [n, o.out], [], o.name);
  }

  /** Any operator reading the current tensor and then `extra`, for ops without a method here; `shape` is its output's. */
  node(opType: string, extra: string[], shape: number[], attrs: Record<string, number | number[]> = {}, name?: string): this {
    const attribute = Object.entries(attrs).map(([k, v]) => attr(k, v, typeof v === "number" && !Number.isInteger(v)));
    return this.op(opType, [this.cur, ...extra], shape, attribute, name);
  }

  /** A constant initializer (int64 for shapes and axes, else float32) to pass to node(). */
  constant(base: string, dims: number[], values: number[], int64 = false): string {
    const name = this.fresh(base);
    this.initializers.push(int64 ? int64Tensor(name, dims, values) : float32Tensor(name, dims, values));
    return name;
  }

  /** Marks the current tensor as a graph output. */
  output(): this {
    const shape: (number | string)[] = [...this.shapeOf(this.cur)];
    if (this.batchParam) shape[0] = this.batchParam;
    this.outputs.push(valueInfo(this.cur, shape));
    return this;
  }

  build(): ModelProto {
    return create(ModelProtoSchema, {
      irVersion: BigInt(this.irVersion),
      opsetImport: [{ domain: "", version: BigInt(this.opset) }],
      producerName: "nibble-test-builder",
      graph: {
        name: "built",
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }

  bytes(): Uint8Array {
    return toBinary(ModelProtoSchema, this.build());
  }

  private fresh(base: string): string {
    return `${base}_${this.counter++}`;
  }

  private uniform(scale: number): number {
    return (2 * this.random() - 1) * scale;
  }

  private op(opType: string, inputs: string[], shape: number[], attribute: AttributeProto[], name?: string): this {
    const out = this.fresh(opType.toLowerCase());
    this.nodes.push(create(NodeProtoSchema, { name: name ?? out, opType, input: inputs, output: [out], attribute }));
    this.shapes.set(out, shape);
    this.cur = out;
    return this;
  }

  private param(base: string, dims: number[], value: () => number): string {
    const name = this.fresh(base);
    const count = dims.reduce((a, b) => a * b, 1);
    this.initializers.push(float32Tensor(name, dims, Array.from({ length: count }, value)));
    return name;
  }

  /** A weight of `dims` (He-uniform for `fanIn`), delivered through `source`. */
  private weight(base: string, dims: number[], source: WeightSource, fanIn: number): string {
    const count = dims.reduce((a, b) => a * b, 1);
    const bound = Math.sqrt(6 / fanIn);
    const values = Array.from({ length: count }, () => this.uniform(bound));
    const name = this.fresh(base);
    const node = (opType: string, input: string[], attribute: AttributeProto[] = []) => {
      this.nodes.push(create(NodeProtoSchema, { name: this.fresh(opType.toLowerCase()), opType, input, output: [name], attribute }));
    };
    switch (source) {
      case "initializer":
        this.initializers.push(float32Tensor(name, dims, values));
        break;
      case "constant":
        this.nodes.push(
          create(NodeProtoSchema, {
            name: this.fresh("constant"), opType: "Constant", output: [name],
            attribute: [create(AttributeProtoSchema, { name: "value", type: AT.TENSOR, t: float32Tensor("", dims, values) })],
          }),
        );
        break;
      case "identity": {
        const src = this.fresh(`${base}_src`);
        this.initializers.push(float32Tensor(src, dims, values));
        node("Identity", [src]);
        break;
      }
      case "transpose": {
        // Stored with axes reversed; Transpose with the reversing perm restores `dims`.
        const src = this.fresh(`${base}_t`);
        const rev = [...dims].reverse();
        const stored = new Array<number>(count);
        const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
        const revStrides = rev.map((_, i) => rev.slice(i + 1).reduce((a, b) => a * b, 1));
        for (let i = 0; i < count; i++) {
          let off = 0;
          for (let a = 0; a < dims.length; a++) off += (Math.floor(i / strides[a]) % dims[a]) * revStrides[dims.length - 1 - a];
          stored[off] = values[i];
        }
        this.initializers.push(float32Tensor(src, rev, stored));
        node("Transpose", [src], [attr("perm", rev.map((_, i) => dims.length - 1 - i))]);
        break;
      }
      case "reshape": {
        const src = this.fresh(`${base}_flat`);
        const shape = this.fresh(`${base}_shape`);
        this.initializers.push(float32Tensor(src, [count], values));
        this.initializers.push(int64Tensor(shape, [dims.length], dims));
        node("Reshape", [src, shape]);
        break;
      }
    }
    return name;
  }
}

/** Runs a model once in onnxruntime-node on float32 inputs and returns every output as float32. */
export async function runOnnx(model: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(model);
  try {
    const input = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor("float32", v.data, v.dims)]));
    const out = await session.run(input);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** Seeded uniform values in [-1, 1). */
export function randomInput(count: number, seed = 7): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: count }, () => 2 * r() - 1);
}

/** Moves every initializer's bytes into `binName` next to the model, 64-byte aligned. */
export function externalize(model: ModelProto, binName: string): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer) {
    const pad = (64 - (offset % 64)) % 64;
    chunks.push(new Uint8Array(pad), t.rawData);
    offset += pad;
    t.externalData = [
      { $typeName: "onnx.StringStringEntryProto", key: "location", value: binName },
      { $typeName: "onnx.StringStringEntryProto", key: "offset", value: String(offset) },
      { $typeName: "onnx.StringStringEntryProto", key: "length", value: String(t.rawData.length) },
    ];
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    offset += t.rawData.length;
    t.rawData = new Uint8Array(0);
  }
  return Buffer.concat(chunks);
}
