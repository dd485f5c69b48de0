// What the activation after a layer does to the range a quantizer must cover, one rule per operator.
// Two intervals matter: the pre-activation values outside which the output stops changing (a quantizer
// on the layer's own output need not cover more: the exact target's placement), and the values the
// activation can output (known before calibration; the integer targets quantize that tensor).
import type { ActivationKind, Bounds } from "../../../shared/types.ts";
import { attrFloat, consumersOf, constantOf, isDefaultDomain, type GraphIndex } from "./graph.ts";
import type { NodeProto } from "onnx-buf";
import { tensorElementCount, tensorToFloat32 } from "./tensor.ts";

export interface Activation {
  kind: ActivationKind;
  /** pre-activation interval outside which the output is constant (null end: unbounded) */
  clamp: Bounds;
  /** what the activation can output (null end: unbounded) */
  range: Bounds;
  /** the tensor the activation writes; null when there is none */
  output: string | null;
  /** the nodes that make up the activation (HardSwish written as x · HardSigmoid(x) has two) */
  nodes: NodeProto[];
}

export const NO_ACTIVATION: Activation = { kind: "none", clamp: [null, null], range: [null, null], output: null, nodes: [] };

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/**
 * Clip's bounds, optional constant inputs (every model is at opset 21 once loaded, so never attributes); NaN
 * when an input is not constant.
 */
export function clipBounds(node: NodeProto, index: GraphIndex): [number, number] {
  const bound = (k: number, fallback: number): number => {
    if (!node.input[k]) return fallback;
    const t = constantOf(index, node.input[k]);
    return t && tensorElementCount(t) === 1 ? tensorToFloat32(t)[0] : NaN;
  };
  return [bound(1, -Infinity), bound(2, Infinity)];
}

function clip(lo: number, hi: number): Pick<Activation, "kind" | "clamp" | "range"> | null {
  if (Number.isNaN(lo) || Number.isNaN(hi) || lo > hi) return null;
  const b: Bounds = [finite(lo), finite(hi)];
  const kind: ActivationKind = lo === 0 && hi === 6 ? "relu6" : lo === 0 && hi === Infinity ? "relu" : "clip";
  return { kind, clamp: b, range: b };
}

/** HardSigmoid is max(0, min(1, αx + β)); it saturates outside [−β/α, (1 − β)/α] (reversed for α < 0). */
function hardSigmoid(alpha: number, beta: number): Pick<Activation, "kind" | "clamp" | "range"> {
  if (alpha === 0) return { kind: "hardsigmoid", clamp: [null, null], range: [0, 1] };
  const ends = [-beta / alpha, (1 - beta) / alpha].sort((a, b) => a - b);
  return { kind: "hardsigmoid", clamp: [ends[0], ends[1]], range: [0, 1] };
}

// x · relu6(x + 3) / 6 is 0 for every x ≤ −3 and its minimum is −3/8 at x = −3/2
const HARD_SWISH = { kind: "hardswish", clamp: [-3, null], range: [-0.375, null] } satisfies Pick<Activation, "kind" | "clamp" | "range">;

type Rule = (node: NodeProto, index: GraphIndex) => Pick<Activation, "kind" | "clamp" | "range"> | null;

/** Element-wise activations by operator type; each returns null when the node is not the activation it looks like. */
const RULES: Record<string, Rule> = {
  Relu: () => ({ kind: "relu", clamp: [0, null], range: [0, null] }),
  Clip: (n, index) => clip(...clipBounds(n, index)),
  HardSigmoid: (n) => hardSigmoid(attrFloat(n, "alpha", 0.2), attrFloat(n, "beta", 0.5)),
  HardSwish: () => HARD_SWISH,
  Sigmoid: () => ({ kind: "sigmoid", clamp: [null, null], range: [0, 1] }),
  Tanh: () => ({ kind: "tanh", clamp: [null, null], range: [-1, 1] }),
  LeakyRelu: () => ({ kind: "leakyrelu", clamp: [null, null], range: [null, null] }),
  PRelu: () => ({ kind: "prelu", clamp: [null, null], range: [null, null] }),
};

/**
 * The activation applied to `tensor` when it is the tensor's only use: one element-wise node, or
 * HardSwish written out as Mul(x, HardSigmoid(x; α = 1/6, β = 1/2)) by converters before opset 14.
 */
export function activationAfter(tensor: string, index: GraphIndex): Activation {
  if (index.outputs.has(tensor)) return NO_ACTIVATION;
  const readers = consumersOf(index, tensor).filter(isDefaultDomain);
  if (readers.length !== consumersOf(index, tensor).length) return NO_ACTIVATION;
  if (readers.length === 1 && readers[0].input[0] === tensor) {
    const node = readers[0];
    const rule = RULES[node.opType]?.(node, index);
    return rule ? { ...rule, output: node.output[0], nodes: [node] } : NO_ACTIVATION;
  }
  if (readers.length === 2) {
    const hs = readers.find((n) => n.opType === "HardSigmoid" && n.input[0] === tensor);
    const mul = readers.find((n) => n.opType === "Mul" && n.input.length === 2 && n.input.includes(tensor) && hs && n.input.includes(hs.output[0]));
    if (hs && mul && consumersOf(index, hs.output[0]).length === 1 && Math.abs(attrFloat(hs, "alpha", 0.2) - 1 / 6) < 1e-6 && Math.abs(attrFloat(hs, "beta", 0.5) - 0.5) < 1e-6) {
      return { ...HARD_SWISH, output: mul.output[0], nodes: [hs, mul] };
    }
  }
  return NO_ACTIVATION;
}

/** The quantizer of the pre-activation tensor can start its grid at 0 and fold the lower clamp in (§5.3). */
export function isHalfRange(a: Pick<Activation, "clamp">): boolean {
  return a.clamp[0] === 0;
}

/** Plain words for inspect and the Model screen, e.g. "0 to 6", "from -3", "signed". */
export function describeBounds(b: Bounds): string {
  const [lo, hi] = b;
  if (lo === null && hi === null) return "signed";
  if (hi === null) return lo === 0 ? "half" : `from ${lo}`;
  if (lo === null) return `up to ${hi}`;
  return `${lo} to ${hi}`;
}
