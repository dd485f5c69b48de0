// The registry of export targets, and what the pipeline asks of them before planning: where the integer
// targets put their quantizers and which tensors calibration must measure for that.
import type { ModelProto } from "onnx-buf";
import type { TargetId } from "../../../shared/targets.ts";
import type { StatsTap } from "../pipeline/stats-graph.ts";
import { EXACT } from "./exact.ts";
import { INT4_NPU } from "./int4-npu.ts";
import { ORT } from "./ort.ts";
import { placeActivations, type Placement } from "./placement.ts";
import type { Target } from "./target.ts";

export const TARGET_MODULES: Readonly<Record<TargetId, Target>> = { exact: EXACT, ort: ORT, "int4-npu": INT4_NPU };

export function targetFor(id: TargetId): Target {
  const t = TARGET_MODULES[id];
  if (!t) throw new Error(`internal: no export target "${id}"`);
  return t;
}

/** The integer placement of `layers` (node names) in `model`; null for the exact target, which quantizes layer outputs. */
export function placementFor(model: ModelProto, target: Target, layers: readonly string[]): Placement | null {
  if (target.placement !== "operator-inputs" || !target.rules) return null;
  return placeActivations({ graph: model.graph!, rules: target.rules, layers: new Map(layers.map((l) => [l, l])), quantizeFloatOutputs: target.quantizeFloatOutputs });
}

/**
 * What calibration measures for an integer placement: every group's root per tensor (its range, and the mean
 * absolute deviation ACIQ reads), the pre-activation tensors of absorbed activations (ACIQ's statistics, §2.3),
 * and the layers' inputs per channel (the bias correction's expected effect).
 */
export function placementTaps(placement: Placement, layerInputs: readonly string[]): StatsTap[] {
  return [
    ...placement.groups.map((g) => ({ tensor: g.root, perChannel: false, wholeTensor: true })),
    ...placement.groups.flatMap((g) => (g.preActivation ? [{ tensor: g.preActivation, perChannel: false, wholeTensor: true }] : [])),
    ...layerInputs.map((t) => ({ tensor: t, perChannel: true, wholeTensor: false })),
  ];
}

/** One tap per tensor, with the union of what each asked for. */
export function mergeTaps(taps: readonly StatsTap[]): StatsTap[] {
  const byTensor = new Map<string, StatsTap>();
  for (const t of taps) {
    const seen = byTensor.get(t.tensor);
    byTensor.set(t.tensor, seen ? { tensor: t.tensor, perChannel: seen.perChannel || t.perChannel, wholeTensor: seen.wholeTensor || t.wholeTensor } : { ...t });
  }
  return [...byTensor.values()];
}
