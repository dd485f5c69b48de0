// `--methods best`: the recipe Nibble recommends for the chosen bits, measured on the fixtures
// (docs/BENCHMARKS.md, "Issue 9 ablation"). Plain data, shared by the CLI, the engine and the app.
import type { Method, QuantConfig } from "./types.ts";

export interface Recipe {
  methods: Method[];
  baseline: QuantConfig["baseline"];
  reconstruct: NonNullable<QuantConfig["reconstruct"]>;
  /** one line per choice, for --help and the README */
  why: string;
}

export function bestRecipe(wBits: number, aBits: number): Recipe {
  void wBits;
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
  const r = bestRecipe(config.wBits, config.aBits);
  return { ...config, methods: [...r.methods], baseline: r.baseline, reconstruct: { ...r.reconstruct, ...config.reconstruct } };
}
