// Every item of the bad-input corpus (corpus.ts) through both ways into the engine: the engine service
// API itself (inspect, startJob quantize, previewData, exportModel) and the loopback host's HTTP API,
// started as `npm run web` starts it with the corpus as its root. For each: a refusal whose message names
// the file and says what to do, a good request right after that succeeds (the engine and the host stay
// usable), and nothing written or left half-written. Permission cases run as `nobody` (tests run as root).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmod, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { defaultQuantConfig } from "../../shared/defaults.ts";
import type { JobRequest } from "../../shared/engine-api.ts";
import { HTTP } from "../../shared/ipc.ts";
import { createEngineService, type EngineService } from "../../src-main/service/index.ts";
import { startWebHost, type WebHost } from "../e2e/web-helpers.ts";
import { jsonPost, openEvents, rawRequest, type EventStream } from "../helpers/http.ts";
import { buildCorpus, REPO, type ArrayId, type Corpus, type ImageId, type ModelId } from "./corpus.ts";
import type { ServiceCall, ServiceOutcome } from "./service-runner.ts";

type Outcome = { ok: true; value: unknown } | { ok: false; message: string; status?: number };

interface Route {
  name: "engine" | "host";
  inspect(model: string): Promise<Outcome>;
  preview(dir: string, model: string): Promise<Outcome>;
  /** starts a quantize job and waits for its end; value is the job result plus jobId */
  quantize(model: string, calibDir: string, config?: Record<string, unknown>, preprocess?: Record<string, unknown>): Promise<Outcome>;
  exportModel(jobId: string, file: string): Promise<Outcome>;
}

const quantizeRequest = (model: string, calibDir: string, config: Record<string, unknown> = {}, preprocess: Record<string, unknown> = {}): JobRequest => ({
  kind: "quantize",
  model,
  calibDir,
  evalDir: null,
  preprocess: { preset: "imagenet", ...preprocess } as JobRequest["preprocess"],
  config: { ...defaultQuantConfig(), ...config } as JobRequest extends { config: infer C } ? C : never,
});

function engineRoute(service: EngineService): Route {
  const settle = (p: Promise<unknown>): Promise<Outcome> => p.then((value) => ({ ok: true, value }), (e: Error) => ({ ok: false, message: e.message }));
  return {
    name: "engine",
    inspect: (model) => settle(service.inspect(model)),
    preview: (dir, model) => settle(service.previewData({ dir, model, preprocess: { preset: "imagenet" }, count: 4 })),
    quantize: (model, calibDir, config, preprocess) =>
      new Promise((resolve) => {
        let jobId: string | null = null;
        const early = new Map<string, Outcome>();
        const stop = service.onEvent((e) => {
          if (e.type === "progress") return;
          const o: Outcome = e.type === "done" ? { ok: true, value: { ...e.result, jobId: e.jobId } } : { ok: false, message: e.message };
          if (jobId === e.jobId) {
            stop();
            resolve(o);
          } else early.set(e.jobId, o);
        });
        service.startJob(quantizeRequest(model, calibDir, config, preprocess)).then(({ jobId: id }) => {
          jobId = id;
          const o = early.get(id);
          if (o) {
            stop();
            resolve(o);
          }
        });
      }),
    exportModel: (jobId, file) => settle(service.exportModel({ jobId, path: file })),
  };
}

function hostRoute(port: number, token: string, events: EventStream): Route {
  const call = async (method: string, body: unknown): Promise<Outcome> => {
    const r = await rawRequest(port, { path: `/api/call/${method}`, ...jsonPost(token, body) });
    const json = JSON.parse(r.body) as { error?: string };
    return r.status === 200 ? { ok: true, value: json } : { ok: false, message: json.error ?? r.body, status: r.status };
  };
  return {
    name: "host",
    inspect: (model) => call("inspect", model),
    preview: (dir, model) => call("previewData", { dir, model, preprocess: { preset: "imagenet" }, count: 4 }),
    async quantize(model, calibDir, config, preprocess) {
      const started = await call("startJob", quantizeRequest(model, calibDir, config, preprocess));
      if (!started.ok) return started;
      const { jobId } = started.value as { jobId: string };
      const e = await events.finished(jobId);
      return e.type === "done" ? { ok: true, value: { ...e.result, jobId } } : e.type === "error" ? { ok: false, message: e.message } : { ok: false, message: "?" };
    },
    exportModel: (jobId, file) => call("exportModel", { jobId, path: file }),
  };
}

/** A refusal that names `names`, matches every pattern, and reads as a message for people. */
function assertRefusal(o: Outcome, what: string, names: string, patterns: RegExp[]): string {
  assert.ok(!o.ok, `${what}: expected a refusal, got ${JSON.stringify(o).slice(0, 300)}`);
  assert.ok(o.message.includes(names), `${what}: the message should name ${JSON.stringify(names)}:\n${o.message}`);
  for (const p of patterns) assert.match(o.message, p, `${what}:\n${o.message}`);
  assert.doesNotMatch(o.message, /unexpected error|\n\s+at |\bundefined\b|\[object |TypeError|RangeError/, `${what}: not a user-facing message:\n${o.message}`);
  assert.ok(o.message.length < 1200, `${what}: message too long`);
  return o.message;
}

function okValue<T>(o: Outcome, what: string): T {
  assert.ok(o.ok, `${what}: expected success, got ${o.ok ? "" : o.message}`);
  return o.value as T;
}

/** The engine (or host) still answers a good request correctly. */
async function assertUsable(route: Route, corpus: Corpus, what: string): Promise<void> {
  const s = okValue<{ layers: unknown[] }>(await route.inspect(corpus.goodModel), `${what}: good inspect right after`);
  assert.equal(s.layers.length, 2);
}

/** Files and sizes under the corpus, outside out/: nothing may be written there by any case. */
async function tree(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (r === "out") continue;
    if (e.isDirectory() && !e.isSymbolicLink()) out.push(`${r}/`, ...(await tree(dir, r)));
    else out.push(`${r} ${e.isSymbolicLink() ? "link" : (await stat(path.join(dir, r))).size}`);
  }
  return out.sort();
}

// ---- expectations ----------------------------------------------------------------------------------

interface ModelExpect {
  /** inspect refuses (the message must match `refusal`), or succeeds with a warning matching this */
  inspectWarning?: RegExp;
  /** what is wrong, and what to do; all must match */
  refusal: RegExp[];
  /** also check previewData with this model (the other model cases share one code path with inspect) */
  preview?: "refused" | "works";
}

const NOT_ONNX = [/is not a readable ONNX model: the file is damaged or is not ONNX/, /Export the model again or download it again/];
const MODELS: Record<ModelId, ModelExpect> = {
  "zero-bytes": { refusal: [/is empty \(0 bytes\)/, /Export the model again or download it again/], preview: "refused" },
  "random-bytes": { refusal: NOT_ONNX },
  "truncated-10": { refusal: NOT_ONNX },
  "truncated-50": { refusal: NOT_ONNX },
  "truncated-99": { refusal: NOT_ONNX, preview: "refused" },
  "huge-tensor": { refusal: [/is damaged: tensor "huge" claims 1048576 x 1048576 = 1099511627776 elements, more than Nibble can hold/, /Export the model again/] },
  "external-missing": { refusal: [/Could not find the external data of .*\(tensor "conv_w_0"\)/, /Check that the file exists and the path is right/] },
  "external-truncated": { refusal: [/weights\.bin" of .* is too short: tensor "\w+" needs bytes \d+ to \d+ but the file has \d+/, /copy it again next to the model/] },
  "external-escape": { refusal: [/asks to read tensor "conv_w_0" from "\.\.\/\.\.\/etc\/passwd", outside the model's folder/, /move the data file into the model's folder/] },
  "opset-22": { refusal: [/uses ONNX operator set 22; Nibble reads operator sets 7 to 21/, /Convert it .* or re-export it/] },
  "custom-domain-op": {
    inspectWarning: /outside standard ONNX \(com\.example:FancyActivation\)/,
    refusal: [/operator from outside standard ONNX \(com\.example:FancyActivation\), which onnxruntime cannot run/, /Re-export it with standard ONNX operators/],
    preview: "refused",
  },
  "no-quantizable-layer": {
    inspectWarning: /no layer to quantize/,
    refusal: [/has no layer Nibble can quantize \(Conv, Gemm or MatMul with constant weights\)/, /"nibble inspect" shows what the model contains/],
    preview: "works",
  },
  "two-inputs": {
    inspectWarning: /The model has 2 inputs \("input", "bias_map"\); a folder of images cannot fill them all\. Calibrate and evaluate it with a folder of \.npz files/,
    refusal: [/has 2 inputs \("input", "bias_map"\); a folder of images fills only one and cannot fill "bias_map"/, /Use a folder of \.npz files, each holding one array per input named after it/],
    preview: "refused",
  },
  "dynamic-size": {
    inspectWarning: /takes any height and width: choose the size to feed \(--input-size HxW, or the input size on the Model screen\)/,
    refusal: [/takes images of any size \(input "input" \[N, 3, height, width\]\)/, /--input-size HxW on the command line, or the input size on the Model screen/],
    preview: "works",
  },
  "png-named-onnx": { refusal: [/is a PNG image, not an ONNX model, whatever its name says/, /Choose the \.onnx file itself/] },
  "zip-named-onnx": { refusal: [/is a ZIP archive, not an ONNX model/, /Choose the \.onnx file itself \(unpack the archive first\)/] },
  "non-finite-weights": {
    refusal: [/is damaged: Conv "conv_\d+" has 1 NaN and 1 infinite value among the 216 values of its weights "conv_w_\d+"/, /Export the model again from a checkpoint whose weights are all finite numbers/],
    preview: "refused",
  },
  "huge-input": {
    refusal: [/cannot be run: its input "input" has the fixed shape \[1, 3, 100000, 100000\]: 30,000,000,000 values/, /re-export the model with the input size it was trained for/],
    preview: "refused",
  },
  "no-channels": { refusal: [/is damaged: Conv "conv_\d+" has no output channels: its weights "conv_w_\d+" have shape 0 x 8 x 3 x 3/, /Export the model again/] },
};

/** Skip reasons of the images that cannot be used; the rest (valid: true in the corpus) must be used. */
const IMAGE_REASONS: Partial<Record<ImageId, RegExp>> = {
  "zero-bytes": /^file is empty \(0 bytes\)$/,
  "truncated-jpeg": /^cannot be decoded, the file is damaged or incomplete \(.*premature end of JPEG/,
  "truncated-png": /^cannot be decoded, the file is damaged or incomplete \(/,
  "bomb-png": /^image is larger than 100 megapixels; refused as a possible decompression bomb$/,
  "text-as-jpg": /^not an image in a supported format \(JPEG, PNG, WebP, BMP, TIFF, GIF\), whatever its name says$/,
  "symlink-loop": /^folder already scanned through another path \(symbolic-link loop or duplicate link\)$/,
  "unreadable-folder": /^folder could not be read \(EACCES\)$/,
};

/** What a folder holding only this array file gets from quantize: the file named, what is wrong, what to do. */
const ARRAY_REFUSALS: Record<ArrayId, RegExp[]> = {
  "npy-wrong-dtype": [/holds int32 values, but input "input" takes float32 \[N, 3, 32, 32\]/, /Save it as float32 \(arr\.astype\(numpy\.float32\)\)/],
  "npy-wrong-shape": [/has shape \(3, 32, 31\), but input "input" takes \[N, 3, 32, 32\]/, /save one sample of shape \[3, 32, 32\] or a batch of shape \[k, 3, 32, 32\]/],
  "npy-truncated-header": [/is cut short: its \.npy header says it takes 128 bytes but the file has only 40/, /Save it again with numpy\.save/],
  "npy-truncated-data": [/is cut short: shape \(3, 32, 32\) of float32 needs 12288 bytes of data but the file has 11288/, /Save it again with numpy\.save/],
  "npz-missing-key": [/has no array named "input" \(its arrays: "image"\)/, /one array per model input, named after it: "input" \[N, 3, 32, 32\]/],
  "npz-not-a-zip": [/is not a readable \.npz archive/, /Save it again with numpy\.savez or numpy\.savez_compressed/],
};

const ROOT = process.getuid?.() === 0;

/** How to run a command as `nobody` from root; [] when not root; null when no tool can. */
function dropRoot(): string[] | null {
  if (!ROOT) return [];
  for (const prefix of [["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"], ["runuser", "-u", "nobody", "--"]]) {
    const r = spawnSync(prefix[0], [...prefix.slice(1), "id", "-u"], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim() !== "0") return prefix;
  }
  return null;
}

// ---- the suite -------------------------------------------------------------------------------------

let corpus: Corpus;
let service: EngineService;
let web: WebHost;
let events: EventStream;
let before_: string[];
const routes: Route[] = [];

before(async () => {
  corpus = await buildCorpus();
  before_ = await tree(corpus.root);
  service = createEngineService();
  web = await startWebHost(corpus.root);
  const url = new URL(web.url);
  const token = url.searchParams.get("token")!;
  events = await openEvents(Number(url.port), token);
  routes.push(engineRoute(service), hostRoute(Number(url.port), token, events));
});

after(async () => {
  events?.close();
  await web?.stop();
  await service?.close();
  if (corpus) {
    assert.deepEqual(await tree(corpus.root), before_, "nothing was written into the corpus");
    await chmod(path.join(corpus.images["unreadable-folder"].dir, "locked"), 0o755);
    await corpus.cleanup();
  }
});

for (const routeName of ["engine", "host"] as const) {
  const route = () => routes.find((r) => r.name === routeName)!;

  describe(`bad models through the ${routeName}`, { concurrency: 2 }, () => {
    for (const [id, expect] of Object.entries(MODELS) as [ModelId, ModelExpect][]) {
      test(id, async () => {
        const r = route();
        const file = corpus.models[id];
        // The three calls at once: each runs in its own engine thread, as they would from a busy UI.
        const [inspected, quantized, previewed] = await Promise.all([
          r.inspect(file),
          r.quantize(file, corpus.goodCalib),
          expect.preview ? r.preview(corpus.goodCalib, file) : null,
        ]);
        if (expect.inspectWarning) {
          const s = okValue<{ warnings: string[] }>(inspected, `${id}: inspect`);
          assert.match(s.warnings.join("\n"), expect.inspectWarning);
        } else assertRefusal(inspected, `${id}: inspect`, file, expect.refusal);
        assertRefusal(quantized, `${id}: quantize`, file, expect.refusal);
        if (expect.preview === "refused") assertRefusal(previewed!, `${id}: preview`, file, expect.refusal);
        if (expect.preview === "works") okValue(previewed!, `${id}: preview`);
        await assertUsable(r, corpus, id);
      });
    }
  });

  describe(`bad and unusual images through the ${routeName}`, { concurrency: 2 }, () => {
    for (const id of Object.keys(IMAGE_REASONS).concat(["png-16-bit", "cmyk-jpeg", "animated-gif", "name-with-spaces", "name-non-ascii", "name-with-newline"]) as ImageId[]) {
      const reason = IMAGE_REASONS[id];
      if (id === "unreadable-folder") continue; // needs a user that cannot read it: see below
      test(`${id}: preview of a folder holding only it`, async () => {
        const r = route();
        const c = corpus.images[id];
        const o = await r.preview(c.dir, corpus.goodModel);
        if (c.valid) {
          const p = okValue<{ samples: { file: string }[]; skipped: unknown[] }>(o, id);
          assert.deepEqual(p.samples.map((s) => s.file), [c.rel]);
          assert.deepEqual(p.skipped, []);
        } else {
          const message = assertRefusal(o, id, c.dir, [new RegExp(reason!.source.replace(/^\^/, "").replace(/\$$/, ""))]);
          assert.ok(message.includes(c.rel), `names ${c.rel}: ${message}`);
          assert.match(message, id === "symlink-loop" ? /Expected JPEG, PNG, WebP, BMP, TIFF or GIF files/ : /Choose a folder of JPEG, PNG, WebP, BMP, TIFF or GIF images/);
        }
        await assertUsable(r, corpus, id);
      });
    }

    test("good images mixed with every bad one still quantize; the bad ones are listed with reasons", async () => {
      const r = route();
      const o = await r.quantize(corpus.goodModel, corpus.mixed);
      const result = okValue<{ report: { calibration: { images: number; skipped: { file: string; reason: string }[] }; warnings: string[] } }>(o, "mixed quantize");
      const { skipped, images } = result.report.calibration;
      const cases = Object.values(corpus.images);
      const unreadable = (id: ImageId) => id === "unreadable-folder" && !ROOT;
      for (const c of cases) {
        const entry = skipped.find((s) => s.file === c.rel);
        const reason = IMAGE_REASONS[c.id];
        if (c.valid || (c.id === "unreadable-folder" && !unreadable(c.id))) assert.equal(entry, undefined, `${c.id} is usable and must not be skipped`);
        else {
          assert.ok(entry, `${c.id} (${JSON.stringify(c.rel)}) is listed as skipped: ${JSON.stringify(skipped)}`);
          assert.match(entry.reason, reason!, c.id);
        }
      }
      const used = corpus.goodImages.length + cases.filter((c) => c.valid).length + (ROOT ? 1 : 0);
      assert.equal(images, used, "calibration image count = images actually used");
      assert.equal(skipped.length, cases.filter((c) => !c.valid).length - (ROOT ? 1 : 0));
      assert.match(result.report.warnings.join("\n"), new RegExp(`${skipped.length} calibration file\\(s\\) could not be read and were skipped`));
    });
  });

  describe(`bad arrays and input sizes through the ${routeName}`, { concurrency: 2 }, () => {
    for (const [id, patterns] of Object.entries(ARRAY_REFUSALS) as [ArrayId, RegExp[]][]) {
      test(id, async () => {
        const r = route();
        const c = corpus.arrays[id];
        assertRefusal(await r.quantize(corpus.goodModel, c.dir), id, c.file, patterns);
        await assertUsable(r, corpus, id);
      });
    }

    test("an input size that does not fit a model of fixed size", async () => {
      const r = route();
      const o = await r.quantize(corpus.goodModel, corpus.goodCalib, {}, { inputSize: [64, 48] });
      assertRefusal(o, "input size", corpus.goodModel, [/The input size 64x48 does not fit/, /is fixed at 32x32 \(height x width\)\. Leave the input size empty for this model/]);
      await assertUsable(r, corpus, "input size");
    });

    test("a dynamic-size model quantizes once the size is chosen", async () => {
      const r = route();
      okValue(await r.quantize(corpus.models["dynamic-size"], corpus.goodCalib, {}, { inputSize: [32, 32] }), "dynamic with a size");
    });
  });

  describe(`bad options through the ${routeName}`, () => {
    let jobId: string;
    before(async () => {
      const o = await route().quantize(corpus.goodModel, corpus.goodCalib);
      jobId = okValue<{ jobId: string }>(o, "good quantize").jobId;
    });

    const config: [string, Record<string, unknown>, RegExp, RegExp][] = [
      ["weight bits 1", { wBits: 1 }, /Weight bits must be a whole number from 2 to 8, not 1\. Choose 4/, /config\.wBits: must be between 2 and 8/],
      ["weight bits 9", { wBits: 9 }, /Weight bits must be a whole number from 2 to 8, not 9/, /config\.wBits: must be between 2 and 8/],
      ["weight bits 2.5", { wBits: 2.5 }, /Weight bits must be a whole number from 2 to 8, not 2\.5/, /config\.wBits: expected a whole number/],
      ["activation bits 0", { aBits: 0 }, /Activation bits must be a whole number from 2 to 8, not 0/, /config\.aBits: must be between 2 and 8/],
      ["unknown method", { methods: ["aciq", "magic"] }, /Unknown method "magic"\. Choose from aciq, bitalloc-w, bitalloc-a, biascorr/, /config\.methods\[1\]: must be one of aciq, bitalloc-w, bitalloc-a, biascorr/],
    ];
    for (const [name, cfg, engineMessage, hostMessage] of config) {
      test(name, async () => {
        const r = route();
        const o = await r.quantize(corpus.goodModel, corpus.goodCalib, cfg);
        const field = r.name === "engine" ? (/bits/.test(name) ? (name.startsWith("weight") ? "Weight bits" : "Activation bits") : "method") : "config.";
        assertRefusal(o, name, field, [r.name === "engine" ? engineMessage : hostMessage]);
        if (r.name === "host") assert.equal((o as { status?: number }).status, 400);
        await assertUsable(r, corpus, name);
      });
    }

    test("export over the input model is refused and the model is untouched", async () => {
      const r = route();
      const original = await readFile(corpus.goodModel);
      const siblings = await readdir(path.dirname(corpus.goodModel));
      for (const spelled of [corpus.goodModel, path.join(path.dirname(corpus.goodModel), "calib", "..", "model.onnx")]) {
        assertRefusal(await r.exportModel(jobId, spelled), "export onto the input", spelled, [/that is the input model itself\. Choose another file name: Nibble never overwrites its input/]);
      }
      assert.deepEqual(await readFile(corpus.goodModel), original);
      assert.deepEqual(await readdir(path.dirname(corpus.goodModel)), siblings, "no temp file next to the model");
      await assertUsable(r, corpus, "export onto the input");
    });

    test("export into a folder that does not exist", async () => {
      const r = route();
      const out = await corpus.outDir(`${r.name}-missing`);
      const target = path.join(out, "no-such-folder", "q.onnx");
      assertRefusal(await r.exportModel(jobId, target), "missing folder", path.join(out, "no-such-folder"), [/does not exist\. Choose an existing folder/]);
      assert.deepEqual(await readdir(out), []);
      // ...and the same run exports fine to a folder that exists
      const good = path.join(out, "q.onnx");
      const written = okValue<{ bytes: number }>(await r.exportModel(jobId, good), "good export");
      assert.equal((await stat(good)).size, written.bytes);
      assert.deepEqual(await readdir(out), ["q.onnx"], "no temp file left");
    });
  });
}

// ---- as a user without root's rights -----------------------------------------------------------------

describe("permissions, as the unprivileged user nobody", () => {
  const prefix = dropRoot();
  const skip = prefix === null ? "running as root and neither setpriv nor runuser can switch to nobody; the unreadable-folder and read-only-output cases are not checked" : false;

  /** Runs engine-service calls in a fresh process as nobody (see service-runner.ts). */
  function runAsNobody(calls: ServiceCall[]): Promise<ServiceOutcome[]> {
    return new Promise((resolve, reject) => {
      const argv = [...prefix!, process.execPath, "--import", "tsx", "test/robustness/service-runner.ts", JSON.stringify(calls)];
      const child = spawn(argv[0], argv.slice(1), { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.on("error", reject);
      child.on("exit", (code) => {
        if (code !== 0) return reject(new Error(`service runner exited ${code}: ${stderr}`));
        resolve(stdout.trim().split("\n").map((l) => JSON.parse(l) as ServiceOutcome));
      });
    });
  }

  const unreadableMessage = [/No images found in/, /locked\/: folder could not be read \(EACCES\)/];

  test("engine: unreadable folder, mixed folder with an unreadable part, read-only output folder", { skip }, async () => {
    const readOnly = await corpus.outDir("nobody-engine-readonly");
    await chmod(readOnly, 0o555);
    const unreadable = corpus.images["unreadable-folder"].dir;
    const [preview, mixed, exported, after] = await runAsNobody([
      { call: "previewData", dir: unreadable, model: corpus.goodModel },
      { call: "quantize", request: quantizeRequest(corpus.goodModel, corpus.mixed) },
      { call: "quantize", request: quantizeRequest(corpus.goodModel, corpus.goodCalib), exportTo: path.join(readOnly, "q.onnx") },
      { call: "inspect", model: corpus.goodModel },
    ]);
    assertRefusal(preview, "unreadable folder", unreadable, unreadableMessage);
    const report = (okValue<{ report: { calibration: { skipped: { file: string; reason: string }[] } } }>(mixed, "mixed as nobody")).report;
    const locked = report.calibration.skipped.find((s) => s.file === "locked/");
    assert.ok(locked, JSON.stringify(report.calibration.skipped));
    assert.match(locked.reason, IMAGE_REASONS["unreadable-folder"]!);
    assertRefusal(exported, "read-only output folder", path.join(readOnly, "q.onnx"), [/you do not have permission to write there\. Choose another folder/]);
    assert.deepEqual(await readdir(readOnly), [], "no output or temp file");
    okValue(after, "a good request after");
  });

  test("host: unreadable folder and read-only output folder", { skip }, async () => {
    const readOnly = await corpus.outDir("nobody-host-readonly");
    await chmod(readOnly, 0o555);
    const host = await startWebHost(corpus.root, prefix!);
    try {
      const url = new URL(host.url);
      const token = url.searchParams.get("token")!;
      const stream = await openEvents(Number(url.port), token);
      try {
        const r = hostRoute(Number(url.port), token, stream);
        const unreadable = corpus.images["unreadable-folder"].dir;
        assertRefusal(await r.preview(unreadable, corpus.goodModel), "unreadable folder", unreadable, unreadableMessage);
        const job = okValue<{ jobId: string }>(await r.quantize(corpus.goodModel, corpus.goodCalib), "good quantize as nobody");
        const target = path.join(readOnly, "q.onnx");
        assertRefusal(await r.exportModel(job.jobId, target), "read-only output folder", target, [/you do not have permission to write there\. Choose another folder/]);
        assert.deepEqual(await readdir(readOnly), [], "no output or temp file");
        await assertUsable(r, corpus, "after the permission errors");
        const info = await rawRequest(Number(url.port), { path: HTTP.info, headers: { [HTTP.tokenHeader]: token } });
        assert.equal(info.status, 200);
      } finally {
        stream.close();
      }
    } finally {
      await host.stop();
    }
  });
});
