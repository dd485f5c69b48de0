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
    // The integer layouts run the reconstruct stage on their own network (per-tensor 8-bit activations at the
    // operators' inputs, symmetric weight grids), so the exact recipe's rounding and bias folding carry over; their
    // activations are 8-bit per tensor from the true range (no baseline calibrator applies). Weight bit allocation
    // was no better on ort (MobileNet W4A8 72.2 with it, 73.5 without) and int4-npu cannot hold it. Measured:
    // docs/BENCHMARKS.md, "Best accuracy on the integer targets".
    return {
      methods: ["weight-clip", "reconstruct", "bias-fold"],
      baseline: "minmax",
      reconstruct: { inputs: "quantized", floatTarget: true, actOrder: false },
      why: `--target ${target}: weight clipping, rounding reconstruction on the quantized network's inputs as the ${target} file computes them, bias folding into the INT32 bias`,
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
