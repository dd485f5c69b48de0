// The ablation beyond the paper's four switches: which combinations it measures, and that a combination with
// equalization is measured on the equalized model (its own calibration), exactly as a run of its own would be.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { quantize } from "../../src-main/engine/pipeline/quantize.ts";
import { runEngineJob } from "../../src-main/service/jobs.ts";
import { methodCombinations } from "../../shared/ablation.ts";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import { bestRecipe } from "../../shared/recipes.ts";
import { ALL_METHODS } from "../../shared/types.ts";

const demo = path.resolve(import.meta.dirname, "../../resources/demo");
const model = path.join(demo, "resnet20-cifar10.onnx");

test("the paper's four give the paper's table: every subset, smallest first", () => {
  const rows = methodCombinations(ALL_METHODS);
  assert.equal(rows.length, 16);
  assert.equal(new Set(rows.map((r) => r.join("+"))).size, 16);
  assert.deepEqual(rows[0], []);
  assert.deepEqual(rows.slice(1, 5), [["aciq"], ["bitalloc-w"], ["bitalloc-a"], ["biascorr"]]);
  assert.deepEqual(rows[15], [...ALL_METHODS]);
  assert.ok(rows.every((r, i) => i === 0 || r.length >= rows[i - 1].length));
});

test("the recipes' new methods are in the ablation: every subset of up to four, each alone and all but each of more", () => {
  const w4a8 = methodCombinations(bestRecipe(4, 8).methods);
  assert.deepEqual(w4a8, [[], ["weight-clip"], ["bias-fold"], ["reconstruct"], ["weight-clip", "bias-fold"], ["weight-clip", "reconstruct"], ["bias-fold", "reconstruct"], ["weight-clip", "bias-fold", "reconstruct"]]);
  const w4a4 = bestRecipe(4, 4).methods;
  assert.equal(methodCombinations(w4a4).length, 2 ** w4a4.length, "the 4-bit-activation recipe's every subset");
  // a user's own five: 2n + 2 rows, each method's contribution both ways
  const five = ["aciq", "bitalloc-a", "weight-clip", "reconstruct", "bias-fold"] as const;
  const rows = methodCombinations(five);
  assert.equal(rows.length, 2 * five.length + 2);
  assert.deepEqual(rows[0], []);
  assert.deepEqual(rows.slice(1, 6).map((r) => r[0]).sort(), [...five].sort());
  assert.ok(rows.slice(6, 11).every((r) => r.length === 4));
  assert.deepEqual([...rows[11]].sort(), [...five].sort(), "the whole choice is a row");
});

test("an ablation with equalization measures each combination as a run of its own would", async () => {
  const config = defaultQuantConfig({ wBits: 4, aBits: 8, methods: ["weight-clip", "equalize"] });
  const preprocess = { preset: "imagenet" as const };
  const out = await runEngineJob(
    { kind: "ablation", model, calibDir: path.join(demo, "calib"), calibLimit: 64, evalDir: path.join(demo, "eval"), preprocess, config },
    { signal: new AbortController().signal, onProgress: () => undefined },
  );
  assert.equal(out.result.kind, "ablation");
  if (out.result.kind !== "ablation") return;
  assert.deepEqual(
    out.result.rows.map((r) => r.methods),
    [[], ["weight-clip"], ["equalize"], ["weight-clip", "equalize"]],
  );
  for (const row of out.result.rows.filter((r) => r.methods.includes("equalize") || r.methods.length === 0)) {
    const own = await quantize({ model, calib: { dir: path.join(demo, "calib"), limit: 64 }, eval: { dir: path.join(demo, "eval") }, preprocess, config: { ...config, methods: row.methods as typeof config.methods }, layerErrors: false });
    // the same predictions (the bytes differ by the run's metadata, which an ablation's files do not carry)
    const name = row.methods.join("+") || "none";
    assert.equal(row.top1, own.report.quantized!.top1, name);
    assert.equal(row.top5, own.report.quantized!.top5, name);
    assert.equal(row.agreement, own.report.agreement!.agreement, name);
  }
});

test("a combination's reconstruction shows its layers in the ablation's line and stops when cancelled", async () => {
  const controller = new AbortController();
  const lines: string[] = [];
  let abortedAt = -1;
  const job = runEngineJob(
    { kind: "ablation", model, calibDir: path.join(demo, "calib"), calibLimit: 64, evalDir: path.join(demo, "eval"), preprocess: { preset: "imagenet" }, config: defaultQuantConfig({ wBits: 4, aBits: 8, methods: ["reconstruct"] }) },
    {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.stage !== "ablation" || !p.message) return;
        lines.push(p.message);
        if (abortedAt < 0 && /choosing the rounding, layer 3 of 20/.test(p.message)) {
          abortedAt = lines.length;
          controller.abort();
        }
      },
    },
  );
  await assert.rejects(job, (e: Error) => e.name === "CancelledError");
  assert.ok(abortedAt > 0, `no reconstruction shown: ${lines.join(" | ")}`);
  assert.ok(lines.includes("2 of 2: Rounding (choosing the rounding, layer 1 of 20)"), lines.join(" | "));
  // counted in layers, not milliseconds, so a loaded machine cannot fail it: the layer being solved may finish, no other starts
  const after = lines.slice(abortedAt);
  assert.ok(after.length <= 1, `went on after the cancel: ${after.join(" | ")}`);
});
