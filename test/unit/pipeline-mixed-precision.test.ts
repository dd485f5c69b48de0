// Automatic mixed precision on the real ResNet-20 (W3A8, the best recipe: reconstruction with bias folding on
// the quantized network's inputs). A candidate with layers at 8 bits must be the file a fresh run with those
// layers kept at 8 bits gives (rounding and folded biases fitted for its own bits, not reused from the low-bit
// network), the model returned must be the one measured, and moving every layer to 8 bits must not lose
// agreement with FP32 against its low-bit parent.
import assert from "node:assert/strict";
import path from "node:path";
import { before, describe, it } from "node:test";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { withBestRecipe } from "../../shared/recipes.ts";
import type { QuantConfig } from "../../shared/types.ts";
import { scanImages, type ImageSet } from "../../src-main/engine/data/scan.ts";
import { dropOf, searchMixedPrecision } from "../../src-main/engine/pipeline/mixed-precision.ts";
import { calibrate, evaluateQuantized, quantizeCalibrated, type Calibrated, type Quantized } from "../../src-main/engine/pipeline/quantize.ts";
import { sha256 } from "../../src-main/engine/pipeline/report.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const model = path.join(fixtures, "models/resnet20-cifar10.onnx");
const config: QuantConfig = withBestRecipe(defaultQuantConfig({ wBits: 3, aBits: 8 }), { images: 64 });

describe("--max-drop (ResNet-20, W3A8 best)", () => {
  let c: Calibrated;
  let base: Quantized;
  let evalSet: ImageSet;
  before(async () => {
    c = await calibrate({ model, calib: { dir: path.join(fixtures, "cifar10-train-1000"), limit: 64, seed: 3 }, preprocess: { preset: "imagenet" }, config, histograms: false });
    base = await quantizeCalibrated(c, config, {});
    // without labels the drop is in FP32 agreement, which cannot go below 0
    const test = await scanImages(path.join(fixtures, "cifar10-test"), { limit: 300, seed: 1 });
    evalSet = { ...test, files: test.files.map((f) => ({ ...f, label: null })) };
  });

  it("measures each candidate as a fresh run at its bits and returns the one it measured", async () => {
    const { chosen, report } = await searchMixedPrecision({ c, config, base, evalSet, maxDrop: 0, metadata: {} });
    assert.equal(report.metric, "agreement");
    for (const x of report.candidates) {
      assert.ok(x.margin >= 0, `margin ${x.margin}`);
      assert.equal(x.meets, x.drop + x.margin <= 0, `candidate with ${x.layers8} at 8 bits: drop ${x.drop} ± ${x.margin}`);
    }
    const at = report.chosen ?? report.candidates.reduce((a, b, i) => (b.drop < report.candidates[a].drop ? i : a), 0);
    const kept = report.candidates[at].kept;
    const all8 = report.candidates.find((x) => x.layers8 === report.sensitivity.length);
    assert.ok(all8, "the all-8-bit candidate was measured");
    assert.ok(all8.drop <= report.candidates[0].drop, `all at 8 bits: drop ${all8.drop} against ${report.candidates[0].drop} for its ${config.wBits}-bit parent`);
    const fresh = kept.length ? await quantizeCalibrated(c, { ...config, keep: Object.fromEntries(kept.map((n) => [n, "8" as const])) }, {}) : base;
    assert.equal(sha256(chosen.bytes), sha256(fresh.bytes), `the returned candidate (${kept.length} layers at 8 bits) is the file a fresh run with them kept at 8 bits gives`);
    const again = dropOf(await evaluateQuantized(c, chosen.bytes, evalSet, { preprocess: c.preprocess, layerErrors: false }));
    assert.equal(again.drop, report.candidates[at].drop, "the returned file measures as its candidate did");
  });
});
