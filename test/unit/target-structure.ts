// The int4-npu target's form, checked on a file's graph: every quantized layer a DQ → op → Q unit with
// symmetric INT4 weights (INT8 where kept at 8 bits), an INT32 bias and UINT8 per-tensor activations.
import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, TensorProto_DataType as DT, type ModelProto } from "onnx-buf";

export const producers = (model: ModelProto) => new Map(model.graph!.node.flatMap((n) => n.output.map((o) => [o, n] as const)));

export function assertNpuUnits(bytes: Uint8Array, layers: readonly { name: string; precision: string }[]): void {
  const model = fromBinary(ModelProtoSchema, bytes);
  assert.equal(model.opsetImport.find((o) => !o.domain)?.version, 21n);
  const made = producers(model);
  const inits = new Map(model.graph!.initializer.map((t) => [t.name, t]));
  const readers = (t: string) => model.graph!.node.filter((n) => n.input.includes(t));
  for (const layer of layers) {
    const n = model.graph!.node.find((x) => x.name === layer.name)!;
    assert.ok(n, layer.name);
    for (const [i, input] of n.input.entries()) {
      if (!input) continue;
      const dq = made.get(input);
      assert.equal(dq?.opType, "DequantizeLinear", `${layer.name} input ${i} is not dequantized`);
      const q = inits.get(dq!.input[0]);
      if (i === 1) {
        assert.equal(q?.dataType, layer.precision === "low" ? DT.INT4 : DT.INT8, `${layer.name} weight container`);
        const zp = inits.get(dq!.input[2])!;
        assert.ok(zp.rawData.every((b) => b === 0) && zp.int32Data.every((z) => z === 0), `${layer.name} weight zero point`);
      }
      if (i === 2) assert.equal(q?.dataType, DT.INT32, `${layer.name} bias`);
      if (i === 0) assert.equal(inits.get(made.get(dq!.input[0])?.input[2] ?? "")?.dataType, DT.UINT8, `${layer.name} activation`);
    }
    const out = readers(n.output[0]);
    assert.ok(out.length > 0 && out.every((r) => r.opType === "QuantizeLinear"), `${layer.name} output is not quantized`);
  }
}
