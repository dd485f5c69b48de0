import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultExportPath } from "../../src-renderer/lib/export-paths.ts";
import { fp32Verdict, summariseChannels } from "../../src-renderer/lib/data-stats.ts";
import { basename, bytes, dirname, duration, interval, percent, points, ratio, shape, sizeChange } from "../../src-renderer/lib/format.ts";

test("formatting reads the same everywhere", () => {
  assert.equal(bytes(512), "512 B");
  assert.equal(bytes(1_087_981), "1.04 MB");
  assert.equal(bytes(150 * 1024), "150 KB");
  assert.equal(percent(91.734), "91.73%");
  assert.equal(percent(null), "–");
  assert.equal(interval([90.5, 92.81]), "90.5–92.8%");
  assert.equal(points(-1.3), "−1.30");
  assert.equal(points(0.42), "+0.42");
  assert.equal(duration(null), "estimating…");
  assert.equal(duration(75), "1 min 15 s");
  assert.equal(duration(3725), "1 h 2 min");
  assert.equal(shape(["N", 3, 32, 32]), "N × 3 × 32 × 32");
  assert.equal(ratio(7.3), "7.30×");
  assert.equal(sizeChange(1000, 250), "4.00× smaller");
  // a tiny model grows: its quantization parameters outweigh the weights saved
  assert.equal(sizeChange(1480, 2470), "1.67× larger");
  assert.equal(basename("/a/b/model.onnx"), "model.onnx");
  assert.equal(basename("C:\\m\\model.onnx"), "model.onnx");
  assert.equal(dirname("/a/b/model.onnx"), "/a/b");
  assert.equal(dirname("/model.onnx"), "/");
});

test("exports default to the model's folder, named after the model and the bit widths", () => {
  assert.equal(defaultExportPath("/data/resnet20.onnx", { wBits: 4, aBits: 4 }, "model"), "/data/resnet20-w4a4.onnx");
  assert.equal(defaultExportPath("/data/resnet20.ONNX", { wBits: 4, aBits: 8 }, "html"), "/data/resnet20-w4a8-report.html");
  assert.equal(defaultExportPath("C:\\m\\net.onnx", { wBits: 8, aBits: 4 }, "json"), "C:\\m\\net-w8a4-report.json");
});

test("preview statistics pool the samples per channel", () => {
  const s = summariseChannels([
    { file: "a", png: "", channels: [{ mean: 0, std: 1, min: -2, max: 2 }] },
    { file: "b", png: "", channels: [{ mean: 2, std: 1, min: 0, max: 5 }] },
  ]);
  assert.equal(s.length, 1);
  assert.equal(s[0].mean, 1);
  assert.ok(Math.abs(s[0].std - Math.sqrt(2)) < 1e-12);
  assert.equal(s[0].min, -2);
  assert.equal(s[0].max, 5);
  assert.deepEqual(summariseChannels([]), []);
});

test("an FP32 accuracy near chance is called out as a preprocessing problem", () => {
  const acc = (top1: number | null) => ({ images: 100, labelled: 100, top1, top5: null, top1Interval: null, top5Interval: null });
  assert.equal(fp32Verdict(acc(12), 10)?.kind, "bad");
  assert.equal(fp32Verdict(acc(40), 10)?.kind, "warn");
  assert.equal(fp32Verdict(acc(91.7), 10)?.kind, "ok");
  assert.equal(fp32Verdict(acc(null), 10), null);
});
