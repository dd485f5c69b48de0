// The whole journey of PRODUCT.md through the loopback host in Debian's Chromium, twice: on the real ResNet-20
// with CIFAR-10 images in class folders, and on the real MobileNet v1 with ImageNet validation images and a
// labels.txt of numeric class indices (the model users bring, and the one 4 bits break). Open the model, pick
// the folders, let Nibble find the preprocessing, check FP32, run, read the verdict and its next steps on the
// Compare screen, retry from a run, export, and check the exported file's accuracy independently. Also: bad
// inputs (a text file and a damaged file as models, an empty folder, a folder with one image), cancelling, the
// ablation. Then a small model the test builds, which takes any image size and has no class output: the input size
// suggested from the images, and each output compared with FP32 in place of top-1. Every screen is captured at
// 1440 x 960, at 1024 x 700 and in the dark theme, in test-results/screens/.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright";
import { toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import sharp from "sharp";
import { ModelBuilder, mulberry32 } from "../helpers/model-builder.ts";
import { top1 } from "./ort-accuracy.ts";
import {
  chromiumMissing,
  copySubset,
  FIXTURES,
  launchChromium,
  linkImagenet,
  MOBILENET,
  MODEL,
  percentOf,
  pickFile,
  pickFolder,
  pickSave,
  readProgress,
  recordProgress,
  screenshots,
  startWebHost,
  watchPage,
  type WebHost,
} from "./web-helpers.ts";

const skip = chromiumMissing();
const RUN_TIMEOUT = 600_000;

let tmp: string;
let host: WebHost;
let browser: Browser;

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-e2e-"));
  host = await startWebHost(tmp);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await host?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test("the host prints exactly one line, the address with its token", { skip }, async () => {
  assert.equal(host.lines.length, 1);
  assert.match(host.lines[0], /^Nibble is running at http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{43}$/);
});

async function newPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 960 }, colorScheme: "light" });
  const problems = watchPage(page);
  await page.goto(host.url);
  return { page, problems };
}

/** The text a user sees in an element (closed <details> excluded). */
const seen = (page: Page, testid: string) => page.getByTestId(testid).innerText();

async function chooseFolder(page: Page, which: "calib" | "eval", dir: string): Promise<void> {
  await page.getByTestId(`${which}-path-choose`).click();
  await pickFolder(page, dir);
}

async function waitIdle(page: Page): Promise<void> {
  await page.locator(".job-chip").waitFor({ state: "detached", timeout: RUN_TIMEOUT });
}

/** Starts a run with the Run screen's button and waits for it, recording every percentage shown on the way. */
async function runAndWatch(page: Page, start: () => Promise<void>): Promise<{ percents: number[]; stages: string[]; feet: string[] }> {
  await recordProgress(page);
  await start();
  await page.getByTestId("run-finished").waitFor({ timeout: RUN_TIMEOUT });
  assert.equal(await page.locator('[data-testid="screen-run"] [data-testid="notice-error"]').count(), 0);
  const p = await readProgress(page);
  for (let i = 1; i < p.percents.length; i++) assert.ok(p.percents[i] >= p.percents[i - 1], `overall progress went back: ${p.percents.join(", ")}`);
  assert.ok(p.percents.length >= 2, `progress was shown: ${p.percents.join(", ")}`);
  return p;
}

describe("ResNet-20 on CIFAR-10 (class folders)", { skip }, () => {
  let page: Page;
  let problems: string[];
  const dirs = { calib: "", eval: "", model: "", empty: "", noImages: "", notModel: "", damaged: "", one: "", out: "" };
  /** numbers read off the screen, checked against an independent measurement at the end */
  const shown = { fp32Top1: NaN, quantTop1: NaN, exported: "" };
  const S = (name: string) => `resnet20/${name}`;

  before(async () => {
    const root = path.join(tmp, "resnet");
    Object.assign(dirs, {
      calib: path.join(root, "calib"),
      eval: path.join(root, "eval"),
      model: path.join(root, "models", "resnet20-cifar10.onnx"),
      empty: path.join(root, "empty"),
      noImages: path.join(root, "no-images"),
      notModel: path.join(root, "models", "notes.onnx"),
      damaged: path.join(root, "models", "damaged.onnx"),
      one: path.join(root, "one-image"),
      out: path.join(root, "exports"),
    });
    assert.equal(await copySubset(path.join(FIXTURES, "cifar10-train-1000"), dirs.calib, 26), 260);
    assert.equal(await copySubset(path.join(FIXTURES, "cifar10-test"), dirs.eval, 60), 600);
    await mkdir(path.dirname(dirs.model), { recursive: true });
    await copyFile(MODEL, dirs.model);
    await writeFile(dirs.notModel, "This is a text file with an .onnx name, not a model.\n");
    // a model cut short: binary, but not decodable
    await writeFile(dirs.damaged, (await readFile(MODEL)).subarray(0, 5000));
    await mkdir(dirs.empty);
    await mkdir(dirs.noImages);
    await writeFile(path.join(dirs.noImages, "readme.txt"), "no pictures here");
    await writeFile(path.join(dirs.noImages, "broken.png"), "not a png at all");
    await mkdir(dirs.one);
    await copyFile(path.join(dirs.calib, "cat", (await readdir(path.join(dirs.calib, "cat")))[0]), path.join(dirs.one, "cat.png"));
    await mkdir(dirs.out);
    ({ page, problems } = await newPage());
  });

  test("a text file named .onnx is called a text file, and a damaged file's decoder details stay folded", async () => {
    await page.getByTestId("open-model").click();
    await pickFile(page, dirs.notModel);
    const err = page.getByTestId("notice-error");
    await err.waitFor({ timeout: 60_000 });
    const text = await err.innerText();
    assert.match(text, /could not be opened/);
    assert.match(text, /notes\.onnx" is a text file, not an ONNX model/);
    assert.doesNotMatch(text, /[Ee]xport the model again|download it again/, "a text file was never a model: no 'export it again'");
    await screenshots(page, S("00-bad-model"));

    await page.getByTestId("open-model").click();
    await pickFile(page, dirs.damaged);
    await page.locator('[data-testid="notice-error"]', { hasText: "damaged.onnx" }).waitFor({ timeout: 60_000 });
    const damaged = await page.getByTestId("notice-error").innerText();
    assert.match(damaged, /is not a readable ONNX model/);
    assert.doesNotMatch(damaged, /wire type|illegal tag|premature|invalid/i, `protobuf internals shown: ${damaged}`);
    const details = page.getByTestId("message-details");
    assert.equal(await details.count(), 1, "the decoder's words are kept under Details");
    await details.locator("summary").click();
    assert.ok((await details.innerText()).length > "Details".length + 3);
  });

  test("Model: the real ResNet-20 opens and its summary is shown", async () => {
    await page.getByTestId("open-model").click();
    await pickFile(page, dirs.model);
    await page.getByTestId("stat-layers").waitFor({ timeout: 60_000 });
    assert.match(await seen(page, "stat-layers"), /\b20\b/);
    assert.match(await seen(page, "stat-file-size"), /1,087,981 bytes/);
    assert.equal(await page.getByTestId("notice-error").count(), 0);
    assert.equal(await page.locator('[data-testid="model-layers"] tbody tr').count(), 20);
    await screenshots(page, S("01-model"));
  });

  test("Data: an empty folder and a folder without readable images are refused, naming the folder's role", async () => {
    await page.getByTestId("to-data").click();
    for (const dir of [dirs.empty, dirs.noImages]) {
      await chooseFolder(page, "calib", dir);
      const err = page.locator('[data-testid="folder-calib"] [data-testid="notice-error"]');
      await err.waitFor({ timeout: 60_000 });
      assert.match(await err.innerText(), /This calibration folder cannot be used[\s\S]*image/i);
      assert.ok(await page.getByTestId("to-methods").isDisabled());
    }
    await screenshots(page, S("02-data-bad-folder"));
  });

  test("too few images: one calibration image is warned about, and a run without evaluation images is 'not measured'", async () => {
    await chooseFolder(page, "calib", dirs.one);
    await page.getByTestId("calib-facts").waitFor({ timeout: 60_000 });
    const warn = page.locator('[data-testid="folder-calib"] [data-testid="notice-warn"]');
    assert.match(await warn.innerText(), /Only 1 calibration image: too few for the chosen settings \([A-Z][^)]* needs at least 64[^)]*\)/);
    await page.getByTestId("to-methods").click();
    await page.getByTestId("to-run").click();
    assert.match(await seen(page, "summary-eval"), /None: accuracy will not be measured/);
    await runAndWatch(page, () => page.getByTestId("start-run").click());
    await page.getByTestId("to-compare").click();
    await page.getByTestId("verdict").waitFor();
    assert.equal(await page.getByTestId("verdict").getAttribute("data-verdict"), "unmeasured");
    assert.match(await seen(page, "verdict-title"), /Accuracy not measured/);
    const compare = await seen(page, "screen-compare");
    assert.match(compare, /Not measured: this run had no evaluation images/);
    assert.doesNotMatch(compare, /\b0 (evaluation )?images\b/);
    assert.match(compare, /Too few calibration images/);
    assert.doesNotMatch(compare, /calibration samples? could be used/, "the calibration size is warned about once");
    await screenshots(page, S("05-compare-not-measured"));
    // Export asks before writing a model nobody measured
    await page.getByTestId("to-export").click();
    assert.match(await seen(page, "export-top1"), /Not measured/);
    await page.getByTestId("export-model-go").click();
    assert.match(await seen(page, "export-confirm"), /accuracy was never measured/);
    await page.getByRole("button", { name: "Cancel", exact: true }).click();
    assert.equal(await page.getByTestId("export-confirm").count(), 0);
    assert.deepEqual((await readdir(path.dirname(dirs.model))).sort(), ["damaged.onnx", "notes.onnx", "resnet20-cifar10.onnx"]);
    // this run has served its purpose
    await page.getByTestId("nav-compare").click();
    await page.getByRole("button", { name: /^Remove run/ }).click();
    await page.getByTestId("nav-data").click();
  });

  test("Data: class folders are read as labels, preprocessing is found, every choice applies at once, FP32 is checked", async () => {
    await chooseFolder(page, "calib", dirs.calib);
    await page.locator('[data-testid="calib-facts"]', { hasText: "260" }).waitFor({ timeout: 60_000 });
    await chooseFolder(page, "eval", dirs.eval);
    await page.getByTestId("eval-facts").waitFor({ timeout: 60_000 });
    assert.match(await seen(page, "eval-facts"), /600\s+images[\s\S]*10\s+classes/);
    const labels = await seen(page, "eval-labels");
    assert.match(labels, /Labels read from one sub-folder per class, in sorted order: 600 of 600 images labelled, 10 classes; the model has 10 outputs/);
    assert.doesNotMatch(labels, /No labels found/);
    assert.match(await seen(page, "label-examples"), /airplane\/\s+class 0 \(airplane\)/);
    assert.equal(await page.locator('[data-testid="preview"] img').count(), 8);
    assert.equal(await page.locator('[data-testid="preview-stats"] tbody tr').count(), 3);

    // a labelled evaluation folder starts the preprocessing trials by itself
    await page.getByTestId("recommendation").waitFor({ timeout: RUN_TIMEOUT });
    const rec = await seen(page, "recommendation");
    assert.match(rec, /Recommended: /);
    assert.equal(await page.locator('[data-testid="trials"] tbody tr').count(), 10, "five presets, straight and resize-then-crop");
    assert.match(rec, /ImageNet mean\/std · resized straight to the input size[^\n]*Recommended/, "the checkpoints' own preprocessing wins");
    await waitIdle(page);

    // Resize policies apply when chosen: no "Apply" button, the preview follows
    assert.equal(await page.getByRole("button", { name: /Apply/ }).count(), 0);
    const before = await page.locator('[data-testid="preview"] img').first().getAttribute("src");
    await page.getByTestId("resize-crop").check();
    await page.waitForFunction((src) => document.querySelector('[data-testid="preview"] img')?.getAttribute("src") !== src, before, { timeout: 60_000 });
    await page.getByTestId("resize-direct").check();
    await page.waitForFunction((src) => document.querySelector('[data-testid="preview"] img')?.getAttribute("src") === src, before, { timeout: 60_000 });

    await page.getByTestId("check-fp32").click();
    await page.getByTestId("fp32-top1").waitFor({ timeout: RUN_TIMEOUT });
    shown.fp32Top1 = percentOf(await seen(page, "fp32-top1"));
    assert.ok(shown.fp32Top1 > 85 && shown.fp32Top1 < 97, `FP32 top-1 ${shown.fp32Top1}`);
    const ok = await page.locator('[data-testid="fp32-check"] [data-testid="notice-ok"]').last().innerText();
    assert.match(ok, /best of the 10 Nibble tried/);
    await screenshots(page, S("02-data"));
  });

  test("Methods: Best accuracy by default; W4A4 with the paper's four methods, first and last layers at 8 bits, worded honestly", async () => {
    await page.getByTestId("to-methods").click();
    await page.getByTestId("bit-presets").getByRole("button", { name: "W4A4" }).click();
    const presets = page.getByTestId("method-presets");
    assert.equal(await presets.getByRole("button", { name: "Best accuracy" }).getAttribute("aria-pressed"), "true");
    for (const m of ["weight-clip", "reconstruct", "bias-fold"]) assert.ok(await page.getByTestId(`method-${m}`).isChecked(), m);
    assert.match(await seen(page, "screen-methods"), /Picks each weight's rounding up or down/);
    // the paper's methods: the quick run this journey measures
    await presets.getByRole("button", { name: "The paper's methods" }).click();
    for (const m of ["aciq", "bitalloc-w", "bitalloc-a", "biascorr"]) assert.ok(await page.getByTestId(`method-${m}`).isChecked(), m);
    for (const m of ["weight-clip", "equalize", "reconstruct", "bias-fold"]) assert.ok(!(await page.getByTestId(`method-${m}`).isChecked()), m);
    assert.ok(await page.getByTestId("keep-first-last").isChecked());
    const screen = await seen(page, "screen-methods");
    assert.doesNotMatch(screen, /needs all three methods|little accuracy/);
    assert.match(screen, /Accept losing at most/);
    await screenshots(page, S("03-methods"));
  });

  test("Run: cancelling stops the run and leaves the app ready for the next one", async () => {
    await page.getByTestId("to-run").click();
    assert.match(await seen(page, "summary-preprocess"), /ImageNet mean\/std · resized straight to the input size/);
    await page.getByTestId("start-run").click();
    await page.getByTestId("run-progress").waitFor();
    await page.getByTestId("cancel").click({ timeout: 30_000 });
    const t0 = Date.now();
    await page.getByTestId("start-run").waitFor({ timeout: 10_000 });
    assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms to be ready again`);
    await page.locator('[data-testid="notice-info"]', { hasText: "cancelled" }).waitFor();
    assert.equal(await page.getByTestId("nav-compare").isDisabled(), true, "a cancelled run leaves no result");
    const leftovers = (await readdir(path.dirname(dirs.model))).sort();
    assert.deepEqual(leftovers, ["damaged.onnx", "notes.onnx", "resnet20-cifar10.onnx"]);
  });

  test("Run: W4A4 all methods, stages named for the run, progress that never goes back", async () => {
    const p = await runAndWatch(page, async () => {
      await page.getByTestId("start-run").click();
      await page.locator('[data-testid="progress-stages"] li.active').first().waitFor({ timeout: 60_000 });
      await screenshots(page, S("04-run"));
    });
    assert.ok(p.stages.includes("Measuring FP32 and W4A4 on 600 images"), p.stages.join(" | "));
    assert.ok(p.stages.includes("Comparing every layer with FP32 on 256 images"), p.stages.join(" | "));
    await screenshots(page, S("04-run-finished"));
  });

  test("Compare: real numbers side by side, the verdict, charts and the per-layer table in plain words", async () => {
    await page.getByTestId("to-compare").click();
    await page.getByTestId("side-by-side").waitFor();
    const fp32 = percentOf(await seen(page, "cmp-fp32-top1"));
    shown.quantTop1 = percentOf(await seen(page, "cmp-q-top1"));
    assert.equal(fp32, shown.fp32Top1, "FP32 on Compare equals the Data screen's check");
    assert.ok(shown.quantTop1 > 80 && shown.quantTop1 <= fp32 + 2, `W4A4 top-1 ${shown.quantTop1} against FP32 ${fp32}`);
    // the verdict follows the numbers on the screen and the goal the user set
    const verdict = await page.getByTestId("verdict").getAttribute("data-verdict");
    assert.equal(verdict, fp32 - shown.quantTop1 > 2 ? "useless" : "ok", `verdict ${verdict} for a loss of ${fp32 - shown.quantTop1}`);
    await page.getByTestId("goal-drop").fill("0");
    await page.getByTestId("goal-drop").press("Tab");
    if (shown.quantTop1 < fp32) {
      await page.locator('[data-testid="verdict"][data-verdict="useless"]').waitFor();
      assert.ok((await page.locator('[data-testid="next-steps"] li').count()) > 0);
    }
    await page.getByTestId("goal-drop").fill("2");
    await page.getByTestId("goal-drop").press("Tab");
    assert.match(await seen(page, "cmp-preprocess"), /ImageNet mean\/std/);
    const agreement = percentOf(await seen(page, "cmp-agreement"));
    assert.ok(agreement > 80 && agreement <= 100);
    const ratio = Number((await seen(page, "cmp-ratio")).replace(/[^\d.]/g, ""));
    assert.ok(ratio > 3, `compression ratio ${ratio}`);
    for (const id of ["chart-sqnr", "chart-hist"]) assert.ok(await page.locator(`[data-testid="${id}"] canvas`).isVisible(), id);
    const screen = await seen(page, "screen-compare");
    assert.match(screen, /How closely each layer matches FP32/);
    assert.doesNotMatch(screen, /Error per layer/);
    assert.match(screen, /Runs as/, "the column Export refers to exists");
    // the technical terms are in tooltips, not headings
    assert.match((await page.locator("th", { hasText: "Match with FP32" }).getAttribute("title")) ?? "", /SQNR/);
    assert.match((await page.locator("th", { hasText: "Range used" }).getAttribute("title")) ?? "", /Range kept/);
    assert.match((await page.locator("th", { hasText: "Mean correction" }).getAttribute("title")) ?? "", /Bias shift/);

    const rows = page.locator('[data-testid="layer-table"] tbody tr');
    assert.equal(await rows.count(), 20);
    await page.getByRole("button", { name: "Match with FP32" }).click();
    const sqnr = await page.locator('[data-testid="layer-table"] tbody tr td:nth-child(6)').allInnerTexts();
    const values = sqnr.filter((s) => s !== "–").map((s) => Number.parseFloat(s));
    assert.ok(values.length > 10);
    assert.deepEqual(
      values,
      [...values].sort((a, b) => a - b),
      "sorted by match with FP32, worst first",
    );
    await page.getByTestId("layer-filter").fill("layer3");
    assert.match(await seen(page, "layer-count"), /^\d+ of 20 layers$/);
    for (const name of await page.locator('[data-testid="layer-table"] tbody tr').evaluateAll((trs) => trs.map((t) => t.getAttribute("data-layer") ?? ""))) {
      assert.match(name, /layer3/);
    }
    await page.getByTestId("layer-filter").fill("");
    await screenshots(page, S("05-compare"));
  });

  test("Export: the model goes where the user says, the reports beside it, names whole, the run's numbers on screen", async () => {
    await page.getByTestId("to-export").click();
    assert.equal(percentOf(await seen(page, "export-top1")), shown.quantTop1);
    assert.match(await seen(page, "export-size"), /KB|MB/);
    // the default is beside the input model; the user picks another folder for the model
    assert.match(await seen(page, "export-model-target"), /resnet20-cifar10-w4a4\.onnx/);
    await page.locator('[data-testid="export-model"] button', { hasText: "Change…" }).click();
    shown.exported = path.join(dirs.out, "resnet20-cifar10-w4a4-all-four-methods-for-the-release.onnx");
    await pickSave(page, shown.exported);
    assert.match(await seen(page, "export-html-target"), /resnet20-cifar10-w4a4-all-four-methods-for-the-release-report\.html/);
    assert.match(await seen(page, "export-html-target"), new RegExp(dirs.out.replace(/[/.]/g, "\\$&")));
    await page.getByTestId("export-all").click();
    // a run that misses the goal (2 points) is written only once the user says so
    if (shown.fp32Top1 - shown.quantTop1 > 2) {
      assert.match(await seen(page, "export-confirm"), /Write it anyway\?/);
      await page.getByTestId("export-anyway").click();
    } else assert.equal(await page.getByTestId("export-confirm").count(), 0);
    for (const kind of ["model", "html", "json"]) await page.getByTestId(`export-${kind}-done`).waitFor({ timeout: 120_000 });
    const written = await stat(shown.exported);
    assert.ok(written.size > 1000 && written.size < (await stat(dirs.model)).size / 3, `exported ${written.size} bytes`);
    const stem = shown.exported.replace(/\.onnx$/, "");
    const report = JSON.parse(await readFile(`${stem}-report.json`, "utf8"));
    assert.equal(report.config.wBits, 4);
    assert.equal(report.quantized.top1.toFixed(2), shown.quantTop1.toFixed(2));
    assert.match(await readFile(`${stem}-report.html`, "utf8"), /<html/i);
    // nothing was written into the input model's folder
    assert.deepEqual((await readdir(path.dirname(dirs.model))).sort(), ["damaged.onnx", "notes.onnx", "resnet20-cifar10.onnx"]);
    // the whole name is on screen, not cut
    const box = page.locator('[data-testid="export-model-done"] .path');
    assert.equal(await box.innerText(), shown.exported);
    assert.ok(await box.evaluate((el) => el.scrollWidth <= el.clientWidth + 1), "the path fits its box");
    const link = page.locator('[data-testid="export-model-done"] a', { hasText: "Download" });
    const href = await link.getAttribute("href");
    assert.ok(href);
    const res = await page.request.get(new URL(href, page.url()).href);
    assert.equal(res.status(), 200);
    assert.equal((await res.body()).length, written.size);
    await screenshots(page, S("06-export"));
    assert.ok(!existsSync(path.join(dirs.calib, "resnet20-cifar10-w4a4.onnx")));
  });

  test("the exported file runs in onnxruntime-node with the accuracy the screen showed", async () => {
    const fp32 = await top1(MODEL, dirs.eval);
    const quant = await top1(shown.exported, dirs.eval);
    assert.equal(fp32.images, 600);
    // Same images, same preprocessing: the screen's numbers must be these. FP32 agrees to display
    // precision. The 4-bit file may differ by one borderline image: this independent preprocessing rounds
    // the normalisation differently (float64 then float32, not float32 per step), and at 4 bits a one-ulp
    // input difference can move an activation across a rounding boundary.
    const oneImage = 100 / fp32.images;
    assert.ok(Math.abs(fp32.top1 - shown.fp32Top1) < 0.01, `FP32: measured ${fp32.top1}, shown ${shown.fp32Top1}`);
    assert.ok(Math.abs(quant.top1 - shown.quantTop1) <= oneImage + 0.01, `W4A4: measured ${quant.top1}, shown ${shown.quantTop1}`);
  });

  test("Ablation: every combination measured, with a time left and plain names, a table beside the chart, and 'Use this one'", async () => {
    await page.getByTestId("nav-run").click();
    await page.getByTestId("mode-ablation").click();
    const t0 = Date.now();
    const p = await runAndWatch(page, () => page.getByTestId("start-run").click());
    console.log(`ablation of 16 combinations took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const feet = p.feet.filter((f) => / of 16: /.test(f));
    assert.ok(feet.length > 0, p.feet.join(" | "));
    assert.ok(feet.every((f) => !/aciq|bitalloc|biascorr/.test(f)), `internal names: ${feet.join(" | ")}`);
    assert.ok(feet.some((f) => /\d+ s left in this step|min \d+ s left in this step/.test(f)), `a time left, not 'estimating' throughout: ${feet.join(" | ")}`);
    await page.getByTestId("to-compare").click();
    await page.locator('[data-testid="chart-ablation"] canvas').waitFor();
    const table = page.locator('[data-testid="ablation-table"] tbody tr');
    assert.equal(await table.count(), 16);
    await page.locator('[data-testid="ablation-table"] th button', { hasText: "Top-1" }).click();
    const tops = (await page.locator('[data-testid="ablation-table"] tbody tr td:nth-child(2)').allInnerTexts()).map((t) => percentOf(t));
    assert.deepEqual(
      tops,
      [...tops].sort((a, b) => b - a),
      "best first",
    );
    await screenshots(page, S("07-compare-ablation"));
    // the best combination becomes a run of its own
    const best = table.first();
    const name = await best.locator("td").first().innerText();
    await best.getByRole("button", { name: "Use this one" }).click();
    await page.getByTestId("run-finished").waitFor({ timeout: RUN_TIMEOUT });
    await page.getByTestId("to-compare").click();
    assert.match(await seen(page, "run-chips"), new RegExp(`W4A4 · ${name.replace(/[+.]/g, "\\$&")}`));
  });

  test("Accuracy target: the smallest model that meets it, each layer's sensitivity and the size-accuracy curve, the returned point named", async () => {
    const t0 = Date.now();
    await page.getByTestId("nav-methods").click();
    // a target this W4A4 run is not likely to meet with every weight at 4 bits: the search has to measure candidates
    await page.getByTestId("goal-drop").fill("0.5");
    await page.getByTestId("goal-drop").press("Tab");
    await page.getByTestId("max-drop").check();
    await page.getByTestId("to-run").click();
    await runAndWatch(page, () => page.getByTestId("start-run").click());
    console.log(`the --max-drop 0.5 run took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    await page.getByTestId("to-compare").click();
    await page.getByTestId("mixed-precision").waitFor();
    for (const id of ["chart-sensitivity", "chart-size-accuracy"]) assert.ok(await page.locator(`[data-testid="${id}"] canvas`).isVisible(), id);
    assert.match((await page.getByTestId("chart-size-accuracy").getAttribute("aria-label")) ?? "", /File size against accuracy of the \d+ candidates measured/);

    const words = await seen(page, "mp-chosen");
    // chosen: drop plus one standard error meets the target; within noise: only the drop does; else the closest
    const m = /^(Chosen|None of the (\d+) candidates met the 0\.5-point target(?: with its standard error added\. Returned, meeting it on these images only|\. Closest, and returned)): (\d+) of 18 layers at 8 bits, ([\d.]+ [KM]B), ([+−]?[\d.]+) points(?: \(± ([\d.]+)\))?\.$/.exec(words);
    assert.ok(m, words);
    const [, how, none, kept, size, change, margin] = m;
    const verdict = how === "Chosen" ? "Chosen" : how.endsWith("images only") ? "Within noise" : "Closest";
    const signed = (t: string) => Number(t.split(" ± ")[0].replace("−", "-"));
    // the point named in words is the row marked in the candidates' table, and the run Compare shows
    const rows = page.locator('[data-testid="mp-candidates"] tbody tr');
    const count = await rows.count();
    const marked = page.locator('[data-testid="mp-candidates"] tbody tr.returned td');
    const cells = await marked.allInnerTexts();
    assert.equal(cells[0], `${kept} of 18`);
    assert.equal(cells[2].split(" (")[0], size);
    assert.equal(cells[3], margin ? `${change} ± ${margin}` : change);
    assert.equal(cells[4], verdict);
    const changes = (await page.locator('[data-testid="mp-candidates"] tbody tr td:nth-child(4)').allInnerTexts()).map(signed);
    const shareOf = (t: string) => Number(/\(([\d.]+)%\)/.exec(t)?.[1]);
    const shares = (await page.locator('[data-testid="mp-candidates"] tbody tr td:nth-child(3)').allInnerTexts()).map(shareOf);
    const meets = (await page.locator('[data-testid="mp-candidates"] tbody tr td:nth-child(5)').allInnerTexts()).map((t) => t === "Chosen" || t === "meets it");
    assert.ok(count >= 1);
    assert.deepEqual(shares, [...shares].sort((a, b) => a - b), "smallest file first");
    if (none) {
      assert.equal(Number(none), count);
      assert.ok(count >= 2, "the search measured everything at 8 bits too");
      assert.ok(!meets.some(Boolean), "no candidate is said to meet the target with its margin");
    }
    if (verdict === "Closest") assert.equal(signed(change), Math.max(...changes), "the closest is returned");
    else {
      const bound = verdict === "Chosen" ? signed(change) - Number(margin ?? 0) : signed(change);
      assert.ok(bound >= -0.5, `the returned candidate meets the target: ${change} ± ${margin}`);
      // the smallest that meets it, as the issue defines smallest: no candidate with fewer layers at 8 bits met the
      // target (a file's bytes need not grow with them: a layer split by weight bit allocation over INT4 and INT8
      // containers can take more bytes than the same layer held at INT8)
      const layers8 = (await page.locator('[data-testid="mp-candidates"] tbody tr td:nth-child(1)').allInnerTexts()).map((t) => Number(t.split(" of ")[0]));
      layers8.forEach((k, i) => assert.ok(!meets[i] || k >= Number(kept), `a candidate with ${k} layers at 8 bits met the target`));
      if (verdict === "Within noise") layers8.forEach((k, i) => assert.ok(changes[i] < -0.5 || k >= Number(kept), `a candidate with ${k} layers at 8 bits met it by its drop alone`));
    }
    const fp32 = percentOf(await seen(page, "cmp-fp32-top1"));
    const q = percentOf(await seen(page, "cmp-q-top1"));
    // each shown to two decimals: the difference of the rounded values is within 0.015 of the rounded change
    assert.ok(Math.abs(q - fp32 - signed(change)) < 0.0151, `Compare shows ${q} against ${fp32}, the curve ${change}`);
    assert.equal(await seen(page, "cmp-q-bytes"), size);
    // the sensitivity bars: the 18 low-bit layers, the returned model's 8-bit ones named in its table
    await page.locator('[data-testid="mixed-precision"] details summary').click();
    const held = await page.locator('[data-testid="mp-sensitivity-table"] tbody tr td:nth-child(5)').allInnerTexts();
    assert.equal(held.length, 18);
    assert.equal(held.filter((h) => h === "8").length, Number(kept));
    assert.ok(held.every((h) => h === "8" || h === "4"), held.join(" "));
    assert.deepEqual(held, [...held].sort((a, b) => Number(b) - Number(a)), "the most sensitive layers are the ones held at 8 bits");
    await screenshots(page, S("05-compare-max-drop"));
    // the rest of the journey runs without a target
    await page.getByTestId("nav-methods").click();
    await page.getByTestId("max-drop").uncheck();
    await page.getByTestId("goal-drop").fill("2");
    await page.getByTestId("goal-drop").press("Tab");
  });

  test("Where will this model run: onnxruntime and the 4-bit NPU picked before the run; Export shows the integer count, the self-check and this machine's time", async () => {
    const t0 = Date.now();
    await page.getByTestId("nav-methods").click();
    assert.ok(await page.getByTestId("target-exact").isChecked(), "the exact simulation is the default");
    assert.match(await seen(page, "target-card"), /Where will this model run\?[\s\S]*This computer or a server, with onnxruntime[\s\S]*A phone or board whose NPU takes 4-bit weights[\s\S]*Anywhere: the smallest file/);
    await page.getByTestId("target-ort").check();
    // the W4A4 settings cannot run as onnxruntime's integer kernels: the app says what it changed
    assert.match(await seen(page, "target-changes"), /Activations are now 8 bits \(were 4\)/);
    assert.ok(await page.getByTestId("bit-presets").getByRole("button", { name: "W4A4" }).isDisabled());
    assert.equal(await page.getByTestId("bit-presets").getByRole("button", { name: "W4A8" }).getAttribute("aria-pressed"), "true");
    await page.getByTestId("method-presets").getByRole("button", { name: "Best accuracy" }).click();
    assert.match(await seen(page, "methods-why"), /For this target: weight clipping/);
    assert.ok(await page.getByTestId("method-reconstruct").isEnabled(), "rounding reconstruction runs on the integer layouts too");
    await screenshots(page, S("03-methods-target-ort"));

    const runTarget = async (chip: RegExp) => {
      await page.getByTestId("to-run").click();
      assert.match(await seen(page, "summary-target"), /activations 8 bits per tensor/);
      await runAndWatch(page, () => page.getByTestId("start-run").click());
      await page.getByTestId("to-compare").click();
      assert.match(await seen(page, "run-chips"), chip);
      await page.getByTestId("to-export").click();
    };
    await runTarget(/W4A8 · Best accuracy · for onnxruntime/);
    assert.match(await seen(page, "export-deploy-target"), /This computer or a server, with onnxruntime/);
    assert.equal(await seen(page, "export-deploy-integers"), "19 of 19 convolutions and 1 of 1 fully connected layer run as integers in onnxruntime.");
    assert.equal(await page.getByTestId("export-deploy-selfcheck").getAttribute("data-check"), "ok");
    assert.match(await seen(page, "export-deploy-selfcheck"), /Self-check passed[\s\S]*optimizations off and on, within rounding \(\d+\.\d% of 600 samples keep their top-1 class\)/);
    assert.match(await seen(page, "export-deploy-latency"), /Measured speed on this machine[\s\S]*One image at a time[\s\S]*Batches of 32[\s\S]*measured on this machine \(/);
    assert.match(await seen(page, "export-model-target"), /resnet20-cifar10-w4a8-[\w-]*ort\.onnx/);
    await screenshots(page, S("06-export-ort"));

    await page.getByTestId("nav-methods").click();
    await page.getByTestId("target-int4-npu").check();
    assert.match(await seen(page, "methods-why"), /For this target: weight clipping, rounding reconstruction fitted on the network as this target's file computes it \(8-bit activations per tensor\), and bias folding/);
    await runTarget(/W4A8 · Best accuracy · for a 4-bit NPU/);
    assert.match(await seen(page, "export-deploy-target"), /NPU takes 4-bit weights/);
    assert.match(await seen(page, "export-deploy-integers"), /^\d+ of 19 convolutions and \d+ of 1 fully connected layer run as integers in onnxruntime\.$/);
    assert.equal(await page.getByTestId("export-deploy-selfcheck").getAttribute("data-check"), "ok");
    assert.match(await seen(page, "export-deploy-latency"), /says nothing about the device/);
    await screenshots(page, S("06-export-int4-npu"));

    // an exact run of this journey, for comparison: a simulation that onnxruntime computes in float
    const exact = (await page.locator("#export-run option").allInnerTexts()).find((o) => /^W4A4 · All four methods/.test(o));
    assert.ok(exact);
    await page.locator("#export-run").selectOption({ label: exact });
    assert.match(await seen(page, "export-deploy-target"), /Anywhere: the smallest file/);
    assert.equal(await seen(page, "export-deploy-integers"), "0 of 19 convolutions and 0 of 1 fully connected layer run as integers in onnxruntime.");
    assert.match(await seen(page, "export-deploy-latency"), /not made to be faster/);
    await screenshots(page, S("06-export-exact"));
    console.log(`the two target runs and their checks took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });

  test("the page raised no script error and no CSP violation along the way", () => {
    assert.deepEqual(problems, []);
  });
});

describe("MobileNet v1 on ImageNet (a labels.txt of numeric class indices)", { skip }, () => {
  let page: Page;
  let problems: string[];
  const dirs = { calib: "", eval: "", model: "" };
  const S = (name: string) => `mobilenet/${name}`;
  const shown = { fp32Top1: NaN };

  before(async () => {
    const root = path.join(tmp, "mobilenet");
    dirs.calib = path.join(root, "calib");
    dirs.eval = path.join(root, "eval");
    dirs.model = path.join(root, "models", "mobilenet_v1_0.75_224-imagenet.onnx");
    // disjoint: calibration never sees an evaluation image
    assert.equal(await linkImagenet(dirs.calib, 0, 100, false), 100);
    assert.equal(await linkImagenet(dirs.eval, 1000, 150, true), 150);
    await mkdir(path.dirname(dirs.model), { recursive: true });
    // a copy: the host serves only what lies inside its root, and a link's target does not
    await copyFile(MOBILENET, dirs.model);
    ({ page, problems } = await newPage());
  });

  test("Model: 28 layers, 13 of them depthwise, and the depthwise warning appears once", async () => {
    await page.getByTestId("open-model").click();
    await pickFile(page, dirs.model);
    await page.getByTestId("stat-layers").waitFor({ timeout: 60_000 });
    assert.match(await seen(page, "stat-layers"), /\b28\b/);
    assert.equal(await page.locator('[data-testid="notice-warn"]', { hasText: /depthwise/i }).count(), 1);
    assert.match(await seen(page, "model-layers"), /ReLU6/);
    await screenshots(page, S("01-model"));
  });

  test("Data: numeric labels are recognised and checked against the 1,000 outputs; the right preset is recommended with numbers", async () => {
    await page.getByTestId("to-data").click();
    await chooseFolder(page, "calib", dirs.calib);
    await page.getByTestId("calib-facts").waitFor({ timeout: 60_000 });
    await chooseFolder(page, "eval", dirs.eval);
    await page.getByTestId("eval-facts").waitFor({ timeout: 60_000 });
    const labels = await seen(page, "eval-labels");
    assert.match(labels, /Labels read from labels\.txt \(class numbers\): 150 of 150 images labelled, \d+ different class numbers, up to \d+; the model has 1,000 outputs/);
    assert.doesNotMatch(labels, /No labels found|No class sub-folders/);
    assert.equal(await page.locator('[data-testid="eval-labels"] [data-testid="notice-ok"]').count(), 1);
    assert.match(await seen(page, "label-examples"), /ILSVRC2012_val_\d+\.JPEG (\d+)\s+class \1\b/);

    // the default preset is wrong for this model: the trials find the right one and say by how much
    await page.getByTestId("recommendation").waitFor({ timeout: RUN_TIMEOUT });
    const rec = await seen(page, "recommendation");
    const m = /Recommended: (Inception, −1 to 1 · [^\n]+)\n\s*It scores ([\d.]+)% top-1 on 150 labelled images; your current setting, ImageNet mean\/std · resized straight to the input size, scores ([\d.]+)%/.exec(rec);
    assert.ok(m, rec);
    // more than one image better (the threshold for recommending a change); the full set saw 9 points
    assert.ok(Number(m[2]) > Number(m[3]) + 100 / 150, `recommended ${m[2]}% against the current ${m[3]}%`);
    assert.ok(Number(m[2]) > 60, `the recommended setting scores ${m[2]}%`);
    await screenshots(page, S("02-data-recommendation"));
    await waitIdle(page);
    await page.getByTestId("use-recommended").click();
    await page.locator('[data-testid="recommendation"] [data-testid="notice-ok"]').waitFor();
    assert.equal(await page.getByTestId("preset").inputValue(), "inception");

    await page.getByTestId("check-fp32").click();
    await page.getByTestId("fp32-top1").waitFor({ timeout: RUN_TIMEOUT });
    shown.fp32Top1 = percentOf(await seen(page, "fp32-top1"));
    assert.ok(shown.fp32Top1 > 65, `FP32 top-1 ${shown.fp32Top1}`);
    assert.equal(shown.fp32Top1, Number(m[2]), "the check measures the recommended setting on the same images");
    await screenshots(page, S("02-data"));
  });

  test("Methods: W4A8 is not promised to lose little; the depthwise advice comes with its one-click action", async () => {
    await page.getByTestId("to-methods").click();
    await page.getByTestId("bit-presets").getByRole("button", { name: "W4A8" }).click();
    assert.doesNotMatch(await seen(page, "bits-why"), /little accuracy/);
    const screen = await seen(page, "screen-methods");
    assert.match(screen, /13 depthwise layers\. Depthwise networks \(MobileNets\) are hard below 8 bits/);
    await page.getByTestId("keep-depthwise").click();
    assert.match(await seen(page, "override-count"), /13 layers overridden/);
    await page.getByTestId("reset-config").click();
    assert.match(await seen(page, "override-count"), /No per-layer overrides/, "reset resets the overrides too");
    assert.equal(await page.getByTestId("bit-presets").getByRole("button", { name: "W4A4" }).getAttribute("aria-pressed"), "true");
    assert.equal(await page.getByTestId("method-presets").getByRole("button", { name: "Best accuracy" }).getAttribute("aria-pressed"), "true", "reset goes back to Best accuracy");
    // this journey measures the paper's methods, which are quick and break at W4A4 on a MobileNet
    await page.getByTestId("method-presets").getByRole("button", { name: "The paper's methods" }).click();
    await screenshots(page, S("03-methods"));
  });

  test("Run: W4A4, stages named for it, progress never goes back, time left covers the per-layer pass", async () => {
    await page.getByTestId("to-run").click();
    assert.match(await seen(page, "summary-preprocess"), /Inception, −1 to 1/);
    assert.match(await seen(page, "summary-eval"), /150 images, all labelled/);
    const p = await runAndWatch(page, async () => {
      await page.getByTestId("start-run").click();
      await page.locator('[data-testid="progress-stages"] li[data-stage="evaluate"].active').waitFor({ timeout: RUN_TIMEOUT });
      await screenshots(page, S("04-run"));
    });
    assert.ok(p.stages.includes("Measuring FP32 and W4A4 on 150 images"), p.stages.join(" | "));
    assert.ok(p.stages.includes("Comparing every layer with FP32 on 150 images"), p.stages.join(" | "));
  });

  test("Compare: the useless W4A4 run is called useless, with next steps one click each", async () => {
    await page.getByTestId("to-compare").click();
    await page.getByTestId("verdict").waitFor();
    assert.equal(await page.getByTestId("verdict").getAttribute("data-verdict"), "useless");
    assert.match(await seen(page, "verdict-title"), /Useless as it stands/);
    assert.match(await seen(page, "verdict-text"), /This model loses [\d.]+ points of top-1 accuracy \([\d.]+% → [\d.]+%\), more than the 2\.0 points you accept/);
    const steps = await seen(page, "next-steps");
    assert.match(steps, /Keep the 3 most sensitive layers at 8 bits/);
    assert.match(steps, /Keep the 7 most sensitive layers at 8 bits/);
    assert.match(steps, /Keep every depthwise layer at 8 bits \(13\)/);
    assert.match(steps, /More bits: W4A8/);
    assert.match(steps, /More bits: W8A8/);
    assert.match(steps, /Best accuracy/);
    assert.equal(await page.locator('[data-testid="next-steps"] li button', { hasText: "Run it" }).count(), await page.locator('[data-testid="next-steps"] li').count());
    assert.match(await seen(page, "screen-compare"), /4-bit weights before computing/);
    await screenshots(page, S("05-compare-useless"));
  });

  test("a next step is one click: W8A8 runs, is named for what differs, and reads as 8-bit throughout", async () => {
    const p = await runAndWatch(page, () => page.locator('[data-testid="next-steps"] li[data-step="bits:w8a8"] button').click());
    assert.ok(p.stages.includes("Measuring FP32 and W8A8 on 150 images"), p.stages.join(" | "));
    assert.ok(!p.stages.some((s) => /4-bit|W4A4/.test(s)), p.stages.join(" | "));
    await page.getByTestId("to-compare").click();
    const chips = await page.locator('[data-testid="run-chips"] .pick').allInnerTexts();
    assert.equal(chips.length, 2);
    assert.match(chips[0], /^W4A4 · All four methods/);
    assert.match(chips[1], /^W8A8 · All four methods/);
    const table = await seen(page, "layer-table");
    assert.doesNotMatch(table, /Low-bit|4-bit|Keep 8-bit/);
    assert.match(table, /8-bit/);
    const screen = await seen(page, "screen-compare");
    assert.doesNotMatch(screen, /4-bit weights/, "no footnote about 4-bit weights on a W8A8 run");
    // the verdict follows the measured numbers
    const fp32 = percentOf(await seen(page, "cmp-fp32-top1"));
    const q = percentOf(await seen(page, "cmp-q-top1"));
    assert.equal(await page.getByTestId("verdict").getAttribute("data-verdict"), fp32 - q > 2 ? "useless" : "ok");
    await screenshots(page, S("05-compare-w8a8"));
  });

  test("retry from a run: Keep 8-bit on the W4A4 run makes the next run W4A4 with that override, not the current W8A8", async () => {
    await page.locator('[data-testid="run-chips"] .pick', { hasText: "W4A4" }).click();
    // the W4A4 run's next steps now show what W8A8 measured instead of offering to run it again
    const w8 = page.locator('[data-testid="next-steps"] li', { hasText: "W8A8" }).first();
    assert.match(await w8.innerText(), /Already measured|Measured:/);
    await page.getByRole("button", { name: "Match with FP32" }).click();
    const weakest = page.locator('[data-testid="layer-table"] tbody tr').filter({ has: page.getByRole("button", { name: "Keep 8-bit" }) }).first();
    const layer = (await weakest.getAttribute("data-layer")) ?? "";
    await weakest.getByRole("button", { name: "Keep 8-bit" }).click();
    assert.match(await seen(page, "next-run"), new RegExp(`Next run: W4A4 · All four methods · ${layer} at 8 bits, from this run's settings`));
    await page.getByRole("button", { name: "Go to Run" }).click();
    assert.match(await seen(page, "run-summary"), /4-bit weights, 4-bit activations/);
    assert.match(await seen(page, "summary-overrides"), new RegExp(`${layer} at 8 bits · from the W4A4 · All four methods run`));
    await runAndWatch(page, () => page.getByTestId("start-run").click());
    await page.getByTestId("to-compare").click();
    const chips = await page.locator('[data-testid="run-chips"] .pick').allInnerTexts();
    assert.equal(chips.length, 3);
    assert.equal(new Set(chips.map((c) => c.replace(/\s+[\d.]+%.*$/, ""))).size, 3, `runs told apart: ${chips.join(" | ")}`);
    assert.match(chips[2], new RegExp(`W4A4 · All four methods · ${layer} at 8 bits`));
    await screenshots(page, S("05-compare-retry"));
  });

  test("Export asks before writing a useless model, shows its accuracy and size, and writes the reports beside it", async () => {
    await page.getByTestId("to-export").click();
    const options = await page.locator("#export-run option").allInnerTexts();
    assert.equal(new Set(options).size, 3, `export entries told apart: ${options.join(" | ")}`);
    assert.ok(percentOf(await seen(page, "export-top1")) < shown.fp32Top1 - 2);
    assert.match(await seen(page, "export-size"), /MB/);
    await page.getByTestId("export-all").click();
    assert.match(await seen(page, "export-confirm"), /This model is useless as it stands[\s\S]*Write it anyway\?/);
    await screenshots(page, S("06-export-confirm"));
    assert.equal(await page.getByTestId("export-model-done").count(), 0, "nothing written before the answer");
    await page.getByTestId("export-anyway").click();
    for (const kind of ["model", "html", "json"]) await page.getByTestId(`export-${kind}-done`).waitFor({ timeout: 120_000 });
    const files = (await readdir(path.dirname(dirs.model))).sort();
    const model = files.find((f) => /-w4a4-keep1\.onnx$/.test(f));
    assert.ok(model, files.join(", "));
    assert.ok(files.includes(model.replace(/\.onnx$/, "-report.html")) && files.includes(model.replace(/\.onnx$/, "-report.json")), files.join(", "));
    await screenshots(page, S("06-export"));
  });

  test("the page raised no script error and no CSP violation along the way", () => {
    assert.deepEqual(problems, []);
  });
});

describe("a model that takes any image size and has no class output (built by the test)", { skip }, () => {
  let page: Page;
  let problems: string[];
  const dirs = { calib: "", eval: "", model: "" };
  const S = (name: string) => `dynamic/${name}`;

  before(async () => {
    const root = path.join(tmp, "dynamic");
    dirs.model = path.join(root, "models", "features.onnx");
    await mkdir(path.dirname(dirs.model), { recursive: true });
    // two stride-2 convolutions: any height and width, a feature map out (no classes to rank)
    const built = new ModelBuilder({ seed: 6 }).input("x", ["N", 3, "H", "W"]).conv({ out: 4, stride: 2 }).relu().conv({ out: 4, stride: 2 }).output().build();
    // the builder declares unknown spatial sizes as 1 (which reads as a class vector): declare them as they are
    const out = built.graph!.output[0].type!.value;
    if (out.case === "tensorType") for (const [i, d] of out.value.shape!.dim.slice(2).entries()) d.value = { case: "dimParam", value: i === 0 ? "h" : "w" };
    await writeFile(dirs.model, toBinary(ModelProtoSchema, built));
    const rnd = mulberry32(11);
    for (const [name, n] of [["calib", 12], ["eval", 10]] as const) {
      const dir = path.join(root, name);
      await mkdir(dir, { recursive: true });
      for (let i = 0; i < n; i++) {
        const raw = Buffer.from(Array.from({ length: 30 * 50 * 3 }, () => Math.floor(rnd() * 256)));
        await writeFile(path.join(dir, `${i}.png`), await sharp(raw, { raw: { width: 50, height: 30, channels: 3 } }).png().toBuffer());
      }
      dirs[name] = dir;
    }
    ({ page, problems } = await newPage());
  });

  test("Model: the input size is asked for, and the images' size is suggested and applied", async () => {
    await page.getByTestId("open-model").click();
    await pickFile(page, dirs.model);
    await page.getByTestId("input-size").waitFor({ timeout: 60_000 });
    assert.match(await seen(page, "input-size"), /any height and width[\s\S]*a multiple of 4/);
    assert.match(await seen(page, "input-size-suggestion"), /suggests a size from them/);
    await page.getByTestId("to-data").click();
    await chooseFolder(page, "calib", dirs.calib);
    await page.getByTestId("calib-facts").waitFor({ timeout: 60_000 });
    await chooseFolder(page, "eval", dirs.eval);
    await page.getByTestId("eval-facts").waitFor({ timeout: 60_000 });
    await page.getByTestId("nav-model").click();
    // 30 x 50 images, stride 4: the nearest multiples
    await page.getByTestId("input-size-source").waitFor();
    assert.equal(await page.getByTestId("input-height").inputValue(), "32");
    assert.equal(await page.getByTestId("input-width").inputValue(), "52");
    await screenshots(page, S("01-model-input-size"));
    // a size the model cannot divide evenly is pointed out with the nearest that it can
    await page.getByTestId("input-width").fill("50");
    await page.getByTestId("input-width").press("Tab");
    await page.locator('[data-testid="input-size"] [data-testid="notice-warn"]', { hasText: "32 × 52 is the nearest" }).waitFor();
    await page.locator('[data-testid="input-size-suggestion"] button').click();
    assert.equal(await page.getByTestId("input-width").inputValue(), "52");
  });

  test("Compare: each output's difference from FP32 in plain words, the terms in tooltips, instead of top-1", async () => {
    await page.getByTestId("nav-methods").click();
    await page.getByTestId("bit-presets").getByRole("button", { name: "W8A8" }).click();
    await page.getByTestId("method-presets").getByRole("button", { name: "The paper's methods" }).click();
    await page.getByTestId("to-run").click();
    assert.match(await seen(page, "summary-preprocess"), /fed at 32 × 52/);
    await runAndWatch(page, () => page.getByTestId("start-run").click());
    await page.getByTestId("to-compare").click();
    await page.getByTestId("verdict").waitFor();
    assert.equal(await page.getByTestId("verdict").getAttribute("data-verdict"), "compared");
    assert.match(await seen(page, "verdict-text"), /no class output, so Nibble compared its outputs with the FP32 model's on 10 samples: its output differs from FP32's by about [\d.]+% of the values' size/);
    assert.equal(await page.locator('[data-metric="top1"]').count(), 0, "no top-1 without a class output");
    const row = page.locator('[data-testid="output-fidelity"] tbody tr');
    assert.equal(await row.count(), 1);
    const cells = await row.locator("td").allInnerTexts();
    assert.match(cells[2], /^[\d.]+% of the values' size \([\d.]+ dB\)$/);
    assert.match(cells[3], /^[01]\.\d{4} on average, [01]\.\d{4} at worst$/);
    assert.match(cells[4], /, where FP32's values reach /);
    assert.match((await page.locator('[data-testid="output-fidelity"] th', { hasText: "Typical difference" }).getAttribute("title")) ?? "", /^SQNR/);
    assert.match((await page.locator('[data-testid="output-fidelity"] th', { hasText: "Same direction" }).getAttribute("title")) ?? "", /Cosine similarity/);
    await screenshots(page, S("05-compare-outputs"));
    await page.getByTestId("to-export").click();
    assert.match(await seen(page, "export-top1"), /Difference from FP32[\s\S]*differs/);
    await page.getByTestId("export-all").click();
    assert.equal(await page.getByTestId("export-confirm").count(), 0, "a measured model without a goal to miss is not called useless");
    for (const kind of ["model", "html", "json"]) await page.getByTestId(`export-${kind}-done`).waitFor({ timeout: 120_000 });
    await screenshots(page, S("06-export"));
  });

  test("the page raised no script error and no CSP violation along the way", () => {
    assert.deepEqual(problems, []);
  });
});
