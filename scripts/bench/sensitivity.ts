// Does the cheap sensitivity proxy (each layer's relative output error from the reconstruct stage) rank
// layers as the measured sensitivity does (the drop in FP32 agreement when only that layer has low-bit
// weights and every other layer 8-bit)? Prints both per layer and Spearman's rank correlation.
//   node --import tsx scripts/bench/sensitivity.ts --model FILE --calib DIR --eval DIR --preset P --resize N --crop N \
//     [--w-bits 4] [--a-bits 8] [--calib-limit 300] [--eval-limit 300]
import { parseArgs } from "node:util";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { withBestRecipe } from "../../shared/recipes.ts";
import type { PresetName } from "../../shared/types.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { promote, restoreBiases, spearman } from "../../src-main/engine/pipeline/mixed-precision.ts";
import { calibrate, evaluateQuantized, exportPlans, quantizeCalibrated } from "../../src-main/engine/pipeline/quantize.ts";
import { fixed, table } from "./common.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    calib: { type: "string" },
    eval: { type: "string" },
    preset: { type: "string", default: "imagenet" },
    resize: { type: "string" },
    crop: { type: "string" },
    "w-bits": { type: "string", default: "4" },
    "a-bits": { type: "string", default: "8" },
    "calib-limit": { type: "string", default: "300" },
    "eval-limit": { type: "string", default: "300" },
  },
});
if (!values.model || !values.calib || !values.eval) {
  console.error("usage: sensitivity.ts --model FILE --calib DIR --eval DIR [--preset P --resize N --crop N]");
  process.exit(2);
}
const preprocess = { preset: values.preset as PresetName, resize: values.resize ? Number(values.resize) : undefined, crop: values.crop ? Number(values.crop) : undefined };
const config = withBestRecipe(defaultQuantConfig({ wBits: Number(values["w-bits"]), aBits: Number(values["a-bits"]) }));
const c = await calibrate({ model: values.model, calib: { dir: values.calib, limit: Number(values["calib-limit"]) }, preprocess, config, histograms: false });
const t = performance.now();
const base = await quantizeCalibrated(c, config, {});
console.log(`reconstructed W${config.wBits}A${config.aBits} (${config.methods.join(", ")}) in ${((performance.now() - t) / 1000).toFixed(0)} s`);
const evalSet = await scanImages(values.eval, { limit: Number(values["eval-limit"]) });
// FP32's predictions, with the all-low-bit model's
const fp32 = await evaluateQuantized(c, base.bytes, evalSet, { preprocess, layerErrors: false });
const low = base.plans.filter((p) => p.precision === "low" && p.weight).map((p) => p.layer.name);
const all8 = promote(c, base.plans, new Set(low), config);
const proxy = new Map(base.reconstruction!.layers.map((l) => [l.name, l.relativeError]));
const rows: string[][] = [];
const drops: number[] = [];
const proxies: number[] = [];
for (const name of low) {
  // only `name` keeps its reconstructed low-bit codes and folded bias
  const plans = all8.map((p, i) => (p.layer.name === name ? base.plans[i] : p));
  const model = base.reconstruction!.model;
  const others = new Set(low.filter((n) => n !== name));
  const restored = restoreBiases(c, model, others);
  const { bytes } = exportPlans(c, plans, restored, {});
  const e = await evaluateQuantized(c, bytes, evalSet, { preprocess, layerErrors: false }, fp32.predictions.fp32);
  const drop = 100 - e.agreement!.agreement;
  drops.push(drop);
  proxies.push(proxy.get(name)!);
  rows.push([name, fixed(proxy.get(name)! * 100, 3), fixed(drop, 1)]);
  console.log(`  ${name}: proxy ${(proxy.get(name)! * 100).toFixed(3)} %, agreement drop ${drop.toFixed(1)}`);
}
console.log(table(["layer", "proxy: relative output error %", "measured: agreement drop (only this layer low-bit)"], rows));
console.log(`Spearman rank correlation over ${low.length} layers: ${fixed(spearman(proxies, drops), 3)}`);
