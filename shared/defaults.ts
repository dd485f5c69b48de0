// The settings a new run starts from: the paper's W4A4 with all methods, first and last layers at 8 bits.
import { ALL_METHODS, type QuantConfig } from "./types.ts";

export function defaultQuantConfig(overrides: Partial<QuantConfig> = {}): QuantConfig {
  return {
    wBits: 4,
    aBits: 4,
    methods: [...ALL_METHODS],
    prior: "laplace",
    aciqConstants: "reference",
    bitAllocMode: "reference",
    varianceCorrection: false,
    baseline: "minmax",
    activations: "per-channel",
    keepFirstLast8: true,
    keep: {},
    calibration: "global",
    target: "exact",
    ...overrides,
  };
}

/** Labelled images each preprocessing setting is tried on: enough to tell a wrong preset (tens of points) from a right one. */
export const RECOMMEND_SAMPLE = 200;
