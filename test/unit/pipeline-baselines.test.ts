// The baseline calibrators and the evaluation without labels, through the whole pipeline on real data.
import assert from "node:assert/strict";
import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { quantize } from "../../src-main/engine/pipeline/quantize.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { QuantConfig } from "../../shared/types.ts";

const demo = path.resolve(import.meta.dirname, "../../resources/demo");
const model = path.join(demo, "resnet20-cifar10.onnx");
const base: QuantConfig = defaultQuantConfig({ methods: [] });

describe("baselines and unlabelled evaluation", () => {
  let unlabelled: string;
  before(async () => {
    unlabelled = await mkdtemp(path.join(os.tmpdir(), "nibble-unlabelled-"));
    // a flat folder of images: no class sub-folders, no labels file
    for (const cls of (await readdir(path.join(demo, "eval"))).slice(0, 4)) {
      for (const f of (await readdir(path.join(demo, "eval", cls))).slice(0, 25)) await cp(path.join(demo, "eval", cls, f), path.join(unlabelled, `${cls}-${f}`));
    }
  });
  after(() => rm(unlabelled, { recursive: true, force: true }));

  const clipped = new Map<string, number>();
  for (const baseline of ["minmax", "percentile", "mse"] as const) {
    it(`${baseline}: quantizes, evaluates, and reports how much range it kept`, async () => {
      const { report } = await quantize({
        model, calib: { dir: path.join(demo, "calib") }, eval: { dir: path.join(demo, "eval"), limit: 200, seed: 1 },
        preprocess: { preset: "imagenet" }, config: { ...base, baseline }, layerErrors: false,
      });
      assert.ok(report.quantized!.top1! > 70, `${baseline} top-1 ${report.quantized!.top1}`);
      const low = report.layers.filter((l) => l.precision === "low");
      assert.ok(low.every((l) => l.fractionClipped !== null && l.rangeKept !== null), "clipped fraction and kept range measured");
      clipped.set(baseline, low.reduce((a, l) => a + l.fractionClipped!, 0) / low.length);
      // the percentile keeps 99.99% of each tail; the MSE search, at 4 bits, trades far more clipping for resolution
      if (baseline === "percentile") assert.ok(clipped.get("percentile")! < 0.002, `percentile clipped ${clipped.get("percentile")}`);
      if (baseline === "mse") assert.ok(clipped.get("mse")! > 2 * clipped.get("percentile")!, `mse ${clipped.get("mse")} vs percentile ${clipped.get("percentile")}`);
    });
  }

  it("without labels: no accuracy, but agreement with FP32 and flipped predictions", async () => {
    const { report } = await quantize({
      model, calib: { dir: path.join(demo, "calib") }, eval: { dir: unlabelled },
      preprocess: { preset: "imagenet" }, config: { ...base, methods: ["aciq", "biascorr"] }, layerErrors: false,
    });
    assert.equal(report.fp32!.images, 100);
    assert.equal(report.fp32!.top1, null);
    assert.equal(report.quantized!.top1, null);
    assert.ok(report.agreement!.agreement > 80 && report.agreement!.agreement <= 100);
    assert.equal(report.agreement!.lost, null);
    assert.equal(report.agreement!.flipped, Math.round(100 - report.agreement!.agreement));
  });
});
