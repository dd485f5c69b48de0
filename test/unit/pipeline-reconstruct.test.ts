// The reconstruct stage on the real ResNet-20: lower layer output error than nearest rounding on every layer,
// a better exported model on unseen images, the same bytes for the same inputs, progress per layer, and a
// cancel that takes effect within a second.
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, it } from "node:test";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { bestRecipe, withBestRecipe } from "../../shared/recipes.ts";
import type { Progress, QuantConfig } from "../../shared/types.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { CancelledError } from "../../src-main/engine/pipeline/progress.ts";
import { calibrate, evaluateQuantized, quantizeCalibrated, type Calibrated } from "../../src-main/engine/pipeline/quantize.ts";
import { sha256 } from "../../src-main/engine/pipeline/report.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const model = path.join(fixtures, "models/resnet20-cifar10.onnx");
const w3a3 = (methods: QuantConfig["methods"]): QuantConfig => ({ ...defaultQuantConfig({ wBits: 3, aBits: 3, methods }), reconstruct: { images: 64 } });

describe("reconstruct stage (ResNet-20, W3A3)", () => {
  let c: Calibrated;
  before(async () => {
    c = await calibrate({ model, calib: { dir: path.join(fixtures, "cifar10-train-1000"), limit: 64, seed: 3 }, preprocess: { preset: "imagenet" }, config: w3a3(["aciq"]), histograms: false });
  });

  it("chooses codes with less output error than nearest rounding on every layer, and improves the exported model on unseen images", async () => {
    const events: Progress[] = [];
    const plain = await quantizeCalibrated(c, w3a3(["aciq", "bitalloc-a"]), {});
    const rec = await quantizeCalibrated(c, w3a3(["aciq", "bitalloc-a", "reconstruct", "bias-fold"]), {}, (p) => events.push(p));
    const layers = rec.reconstruction!.layers;
    assert.equal(layers.length, c.prepared.layers.length);
    for (const l of layers) assert.ok(l.errorChosen <= l.errorNearest * (1 + 1e-9), `${l.name}: ${l.errorChosen} > ${l.errorNearest}`);
    assert.ok(layers.filter((l) => l.errorChosen < 0.9 * l.errorNearest).length >= layers.length / 2, "most layers clearly better");
    const steps = events.filter((e) => e.stage === "reconstruct");
    assert.ok(steps.length >= layers.length, "progress per layer");
    assert.ok(steps.some((e) => e.etaSeconds !== null && e.etaSeconds > 0), "a time left while running");
    assert.equal(steps.at(-1)!.done, steps.at(-1)!.total);
    const test = await scanImages(path.join(fixtures, "cifar10-test"), { limit: 1000, seed: 1 });
    const a = await evaluateQuantized(c, plain.bytes, test, { preprocess: c.preprocess, layerErrors: false });
    const b = await evaluateQuantized(c, rec.bytes, test, { preprocess: c.preprocess, layerErrors: false }, a.predictions.fp32);
    assert.ok(b.quantized!.top1! > a.quantized!.top1! + 1, `reconstructed ${b.quantized!.top1} vs ${a.quantized!.top1}`);
  });

  it("gives the same file for the same inputs", async () => {
    const cfg = w3a3(["aciq", "reconstruct", "bias-fold"]);
    const one = await quantizeCalibrated(c, cfg, {});
    const two = await quantizeCalibrated(c, cfg, {});
    assert.equal(sha256(one.bytes), sha256(two.bytes));
  });

  it("stops within a second of a cancel", async () => {
    const abort = new AbortController();
    let abortedAt = 0;
    const run = quantizeCalibrated(c, w3a3(["reconstruct"]), {}, (p) => {
      if (p.stage === "reconstruct" && p.done >= 3 && !abortedAt) {
        abortedAt = performance.now();
        abort.abort();
      }
    }, abort.signal);
    await assert.rejects(run, CancelledError);
    assert.ok(abortedAt > 0, "was running when cancelled");
    // one calibration batch or one block of columns at most; 2 s leaves room for a loaded machine
    const latency = performance.now() - abortedAt;
    assert.ok(latency < 2000, `stopped ${latency.toFixed(0)} ms after the cancel`);
  });

  it("the best recipe names only known methods for every bit width", () => {
    for (const bits of [2, 3, 4, 8]) {
      const cfg = withBestRecipe(defaultQuantConfig({ wBits: bits, aBits: bits }));
      assert.ok(cfg.methods.includes("reconstruct"));
    }
  });

  it("a config moved from one bits' recipe to another takes the new recipe's reconstruction settings, not the old ones", () => {
    const w4a8 = withBestRecipe(defaultQuantConfig({ wBits: 4, aBits: 8 }));
    const w4a4 = withBestRecipe({ ...w4a8, aBits: 4 });
    assert.deepEqual(w4a4.reconstruct, bestRecipe(4, 4).reconstruct);
    assert.notDeepEqual(w4a4.reconstruct, w4a8.reconstruct, "the two recipes differ, so the test can fail");
    assert.deepEqual(withBestRecipe({ ...w4a4, aBits: 8 }).reconstruct, w4a8.reconstruct);
    // the user's own image count (--recon-images) stays
    assert.equal(withBestRecipe({ ...w4a8, aBits: 4 }, { images: 100 }).reconstruct?.images, 100);
  });
});
