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
    // At 4-bit activations the activation grid is the loss (ResNet-20 W8A4 91.29, W4A8 91.66, FP32 91.73), so the
    // reconstruction sees more images and solves each layer's columns largest Hessian diagonal first, and the ranges
    // come from the MSE search rather than ACIQ's Laplace fit: on all 10,000 CIFAR test images ResNet-20 W4A4 91.32
    // (ACIQ 91.24), ResNet-56 93.03 (92.94). ACIQ wins at W3A3 (89.53 against 89.36), within two standard errors,
    // and both clear that target, so one recipe serves. docs/BENCHMARKS.md, "Best accuracy at 4-bit activations".
    return {
      methods: ["bitalloc-a", "weight-clip", "reconstruct", "bias-fold"],
      baseline: "mse",
      reconstruct: { inputs: "quantized", floatTarget: true, actOrder: true, images: 512 },
      why: "low-bit activations: MSE-searched activation ranges with the paper's activation bit allocation, weight clipping, then rounding reconstruction on 512 images of the quantized network's inputs and bias folding",
    };
  }
  return {
    methods: ["weight-clip", "reconstruct", "bias-fold"],
    baseline: "mse",
    reconstruct: { inputs: "quantized", floatTarget: true, actOrder: false },
    why: "8-bit activations: MSE-searched activation ranges, weight clipping, rounding reconstruction on the quantized network's inputs, bias folding",
  };
}

/**
 * `config` with the methods and settings of the recommended recipe for its bits. The recipe's reconstruction
 * settings replace the config's (a config that was on another bits' recipe keeps none of it); `overrides` are the
 * user's own (`--recon-images`).
 */
export function withBestRecipe(config: QuantConfig, overrides: QuantConfig["reconstruct"] = {}): QuantConfig {
  const r = bestRecipe(config.wBits, config.aBits, config.target ?? "exact");
  return { ...config, methods: [...r.methods], baseline: r.baseline, reconstruct: { ...r.reconstruct, ...overrides } };
}
