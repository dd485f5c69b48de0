// What an export target is: a declaration of what the file may hold (the planner adapts the methods to it)
// and an emitter. One module per target (exact.ts, ort.ts, int4-npu.ts); index.ts is the registry.
import type { ModelProto } from "onnx-buf";
import type { TargetId } from "../../../shared/targets.ts";
import type { ActivationPlan, LayerPlan } from "../pipeline/plan.ts";
import type { Placement } from "./placement.ts";
import type { QdqRule } from "./qdq-rules.ts";

export interface ExportedLayer {
  name: string;
  /** what in the file's form keeps the layer from integer kernels; whether a runtime fuses it is read from its graph */
  form: string[];
  weightContainer: string | null;
  activationContainer: string | null;
}

export interface ExportResult {
  model: ModelProto;
  layers: ExportedLayer[];
  notes: string[];
}

export interface ExportInput {
  /** the prepared float model (BatchNorm folded); not modified */
  model: ModelProto;
  plans: LayerPlan[];
  /** integer targets: every quantized tensor group's plan, keyed by the group's root */
  tensors: Map<string, ActivationPlan>;
  placement: Placement | null;
  weightShapes: Map<string, number[]>;
  /** rank of each quantized activation tensor, learned during calibration */
  activationRanks: Map<string, number>;
  metadata: Record<string, string>;
}

export interface Target {
  id: TargetId;
  /** activations at the layers' outputs, any granularity (exact); or per tensor at the quantized operators' inputs */
  placement: "layer-outputs" | "operator-inputs";
  /** the per-operator QDQ rules of the integer placement */
  rules: Readonly<Record<string, QdqRule>> | null;
  perChannelActivations: boolean;
  /** zero point 0, step max|w| / (2^(bits−1) − 1) */
  symmetricWeights: boolean;
  /** per-channel weight bits (bit allocation) can be stored */
  mixedWeightBits: boolean;
  /** bias corrections go into an INT32 bias instead of the weights' affine map */
  integerBias: boolean;
  /** a Gemm or MatMul whose result no quantized operator reads still gets a QuantizeLinear (a classifier's logits) */
  quantizeFloatOutputs: boolean;
  /** the container of a layer's weights whose widest channel has `bits` bits */
  weightContainer(bits: number): "INT4" | "INT8";
  emit(input: ExportInput): ExportResult;
}
