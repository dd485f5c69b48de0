// The main job from the command line, as a user runs it: quantize the bundled demo, then check that the
// file it wrote loads in onnxruntime and scores what the report says.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { loadModel } from "../../src-main/engine/onnx/model-io.ts";
import { prepareModel, requireImageInput } from "../../src-main/engine/onnx/prepare.ts";
import { evaluate } from "../../src-main/engine/pipeline/evaluate.ts";
import { imageFeeder } from "../../src-main/engine/data/feeds.ts";
import type { QuantReport } from "../../shared/types.ts";

const root = path.resolve(import.meta.dirname, "../..");
const demo = path.join(root, "resources/demo");

function nibble(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, "bin/nibble.js"), ...args], { cwd: root });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("nibble quantize on the bundled demo", () => {
  let dir: string;
  let report: QuantReport;
  let run: { code: number | null; stdout: string; stderr: string };
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nibble-cli-"));
    run = await nibble([
      "quantize", path.join(demo, "resnet20-cifar10.onnx"), "--calib", path.join(demo, "calib"), "--eval", path.join(demo, "eval"),
      "--out", path.join(dir, "w4a4.onnx"), "--report", path.join(dir, "report.json"),
    ]);
    report = JSON.parse(await readFile(path.join(dir, "report.json"), "utf8")) as QuantReport;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("exits 0, prints the comparison and shows progress on stderr", () => {
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /top-1 %/);
    assert.match(run.stdout, /Wrote .*w4a4\.onnx/);
    assert.match(run.stderr, /statistics: 200\/200/);
  });

  it("reports real numbers: FP32 near the checkpoint's accuracy, W4A4 close behind", () => {
    assert.equal(report.fp32!.labelled, 500);
    assert.ok(report.fp32!.top1! > 88 && report.fp32!.top1! < 97, `FP32 ${report.fp32!.top1}`);
    assert.ok(report.quantized!.top1! > report.fp32!.top1! - 4, `W4A4 ${report.quantized!.top1} vs FP32 ${report.fp32!.top1}`);
    assert.equal(report.layers.length, 20);
    assert.ok(report.size.quantBytes < report.size.fp32Bytes / 4, `size ${report.size.quantBytes} vs ${report.size.fp32Bytes}`);
    assert.match(report.model.sha256, /^[0-9a-f]{64}$/);
    assert.match(report.calibration.sha256, /^[0-9a-f]{64}$/);
    assert.equal(report.output!.path, path.join(dir, "w4a4.onnx"));
  });

  it("the written file scores exactly what the report says, run on its own in onnxruntime", async () => {
    const file = path.join(dir, "w4a4.onnx");
    assert.equal((await stat(file)).size, report.size.quantBytes);
    const prepared = prepareModel(await loadModel(path.join(demo, "resnet20-cifar10.onnx")));
    const geometry = requireImageInput(prepared);
    const set = await scanImages(path.join(demo, "eval"));
    const r = await evaluate({
      fp32: file, quantized: null, output: prepared.output, images: set.files.length,
      batches: () => imageFeeder(set, geometry, { preset: "imagenet" }).batches(64),
    });
    assert.equal(r.fp32.top1, report.quantized!.top1);
    assert.equal(r.fp32.top5, report.quantized!.top5);
  });
});
