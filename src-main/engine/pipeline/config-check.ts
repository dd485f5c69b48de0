// The engine's own check of a QuantConfig. The CLI and the hosts validate what they receive, but the
// engine API is also called directly (scripts, tests, future hosts): a setting outside what the
// quantizer supports must stop the job with a message naming the setting, never reach the arithmetic.
import { CALIBRATIONS, KNOWN_METHODS, type QuantConfig } from "../../../shared/types.ts";
import { DataError } from "../data/errors.ts";
import { TARGET_IDS } from "../../../shared/targets.ts";

const CHOICES: [keyof QuantConfig, string, readonly unknown[]][] = [
  ["prior", "prior", ["laplace", "gaussian"]],
  ["aciqConstants", "ACIQ constants", ["reference", "exact"]],
  ["bitAllocMode", "bit allocation mode", ["reference", "strict"]],
  ["baseline", "baseline calibrator", ["minmax", "percentile", "mse"]],
  ["activations", "activation granularity", ["per-channel", "per-tensor"]],
  ["calibration", "calibration statistic", CALIBRATIONS],
  ["target", "export target", TARGET_IDS],
];

export function checkQuantConfig(config: QuantConfig): void {
  for (const [key, label] of [["wBits", "Weight bits"], ["aBits", "Activation bits"]] as const) {
    const v = config[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 2 || v > 8) {
      throw new DataError(`${label} must be a whole number from 2 to 8, not ${JSON.stringify(v)}. Choose 4 for the usual 4-bit model.`);
    }
  }
  if (!Array.isArray(config.methods)) throw new DataError(`The methods must be a list of ${KNOWN_METHODS.join(", ")} (or empty for the plain baseline).`);
  const unknown = config.methods.filter((m) => !(KNOWN_METHODS as readonly string[]).includes(m));
  if (unknown.length > 0) {
    throw new DataError(`Unknown method${unknown.length > 1 ? "s" : ""} ${unknown.map((m) => JSON.stringify(m)).join(", ")}. Choose from ${KNOWN_METHODS.join(", ")}.`);
  }
  for (const [key, label, allowed] of CHOICES) {
    if (!allowed.includes(config[key])) throw new DataError(`Unknown ${label} ${JSON.stringify(config[key])}. Choose ${allowed.join(" or ")}.`);
  }
  if (config.target !== "exact" && config.aBits !== 8) {
    throw new DataError(
      `The ${config.target} target runs activations as 8-bit integers, so it takes --a-bits 8, not ${config.aBits}. ` +
        `Choose --a-bits 8, or the exact target to simulate ${config.aBits}-bit activations.`,
    );
  }
  for (const [name, mode] of Object.entries(config.keep ?? {})) {
    if (mode !== "8" && mode !== "float") throw new DataError(`Layer "${name}" can be kept at "8" bits or in "float", not ${JSON.stringify(mode)}.`);
  }
}
