// `--methods best`: the recipe Nibble recommends for the chosen bits, measured on the fixtures
// (docs/BENCHMARKS.md, "Issue 9", and its ablation). Plain data, shared by the CLI, the engine and the app.
import type { TargetId } from "./targets.ts";
import type { Method, QuantConfig } from "./types.ts";

export interface Recipe {
  methods: Method[];
  baseline: QuantConfig["baseline"];
  reconstruct: NonNullable<QuantConfig["reconstruct"]>;
  /** one line per choice, for --help and the README */
  why: string;
}

export function bestRecipe(wBits: number, aBits: number, target: TargetId = "exact"): Recipe {
  void wBits;
  if (target !== "exact") {
    // The integer layouts hold neither the reconstruct stage's rounding nor its folded biases yet, and quantize
    // activations at 8 bits per tensor from their true range (no baseline calibrator applies). ort keeps any
    // grid of up to 8 bits in its INT8 containers, so bit allocation across weight channels costs it nothing;
    // int4-npu has one container per layer. Measured: docs/BENCHMARKS.md, "Best accuracy on the integer targets".
    const methods: Method[] = target === "ort" ? ["weight-clip", "bitalloc-w", "biascorr"] : ["weight-clip", "biascorr"];
    return {
      methods,
      baseline: "minmax",
      reconstruct: { inputs: "quantized", floatTarget: true, actOrder: false },
      why: `--target ${target}: weight clipping${target === "ort" ? ", weight bit allocation" : ""} and the paper's bias correction (stored in the INT32 bias); reconstruct and bias-fold work with the exact target only so far`,
    };
  }
  if (aBits <= 4) {
    return {
      methods: ["aciq", "bitalloc-a", "weight-clip", "reconstruct", "bias-fold"],
      baseline: "minmax",
      reconstruct: { inputs: "quantized", floatTarget: true, actOrder: false },
      why: "low-bit activations: the paper's ACIQ and activation bit allocation, weight clipping, then rounding reconstruction on the quantized network's inputs and bias folding",
    };
  }
  return {
    methods: ["weight-clip", "reconstruct", "bias-fold"],
    baseline: "mse",
    reconstruct: { inputs: "quantized", floatTarget: true, actOrder: false },
    why: "8-bit activations: MSE-searched activation ranges, weight clipping, rounding reconstruction on the quantized network's inputs, bias folding",
  };
}

/** `config` with the methods and settings of the recommended recipe for its bits. */
export function withBestRecipe(config: QuantConfig): QuantConfig {
  const r = bestRecipe(config.wBits, config.aBits, config.target ?? "exact");
  return { ...config, methods: [...r.methods], baseline: r.baseline, reconstruct: { ...r.reconstruct, ...config.reconstruct } };
}
