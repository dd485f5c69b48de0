// The CLI contract for bad input, over real processes: exit status (2 usage, 1 failure, 0 success),
// a stderr message that names the offending file or option and says what to do, and nothing left
// behind in the output folder (no output file, no temp file, an existing --out untouched).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { ModelBuilder, mulberry32 } from "../helpers/model-builder.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixtures = path.resolve(repoRoot, "../shared/fixtures");
const resnet = path.join(fixtures, "models", "resnet20-cifar10.onnx");

let tmp: string;
let model: string; // a small valid model
let calib: string; // a small valid calibration folder

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function nibble(...args: string[]): Run {
  const r = spawnSync(process.execPath, ["bin/nibble.js", ...args], { cwd: repoRoot, encoding: "utf8", timeout: 60_000, env: { ...process.env, NO_COLOR: "1" } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh, empty output folder for one case. */
async function outDir(name: string): Promise<string> {
  const dir = path.join(tmp, "out", name);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function assertEmpty(dir: string): Promise<void> {
  assert.deepEqual(await readdir(dir), [], `${dir} should be left empty`);
}

function show(r: Run): string {
  return `exit ${r.status}\nstderr: ${r.stderr}\nstdout: ${r.stdout.slice(0, 500)}`;
}

/** Exit status, the name in the message, a hint of what to do, and an empty output folder. */
async function expectFailure(r: Run, o: { status: number; names: string; hint: RegExp; out: string }): Promise<void> {
  assert.equal(r.status, o.status, show(r));
  assert.ok(r.stderr.includes(o.names), `stderr should name ${o.names}\n${show(r)}`);
  assert.match(r.stderr, o.hint, show(r));
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, `no stack trace expected\n${show(r)}`);
  await assertEmpty(o.out);
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-cli-errors-"));
  model = path.join(tmp, "model.onnx");
  const b = new ModelBuilder({ opset: 13, seed: 3 }).input("x", ["N", 3, 16, 16]).conv({ out: 4 }).relu().globalAveragePool().flatten().gemm({ out: 2 }).output();
  await writeFile(model, b.bytes());
  calib = path.join(tmp, "calib");
  const rnd = mulberry32(11);
  for (let i = 0; i < 4; i++) {
    const raw = Buffer.from(Array.from({ length: 16 * 16 * 3 }, () => Math.floor(rnd() * 256)));
    const dir = path.join(calib, i % 2 ? "b" : "a");
    await mkdir(dir, { recursive: true });
    await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(dir, `${i}.png`));
  }
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("usage errors exit 2", () => {
  for (const [flag, value] of [["--w-bits", "9"], ["--w-bits", "1"], ["--a-bits", "x"]] as const) {
    test(`${flag} ${value}`, async () => {
      const out = await outDir(`bits-${flag}-${value}`);
      const r = nibble("quantize", model, "--calib", calib, "--out", path.join(out, "q.onnx"), flag, value);
      await expectFailure(r, { status: 2, names: flag, hint: /2 to 8/, out });
      assert.ok(r.stderr.includes(`"${value}"`), show(r));
    });
  }

  test("--methods foo", async () => {
    const out = await outDir("methods");
    const r = nibble("quantize", model, "--calib", calib, "--out", path.join(out, "q.onnx"), "--methods", "foo");
    await expectFailure(r, { status: 2, names: "--methods", hint: /aciq.*bitalloc-w.*bitalloc-a.*biascorr/, out });
    assert.ok(r.stderr.includes("foo"), show(r));
  });

  test("--out equal to the model", async () => {
    const original = await readFile(model);
    const r = nibble("quantize", model, "--calib", calib, "--out", model);
    assert.equal(r.status, 2, show(r));
    assert.ok(r.stderr.includes("--out") && r.stderr.includes(model), show(r));
    assert.match(r.stderr, /[Cc]hoose another/, show(r));
    assert.deepEqual(await readFile(model), original, "the input model must be untouched");
    const files = (await readdir(tmp, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
    assert.deepEqual(files, ["model.onnx"], "no output or temp file next to the model");
  });

  test("--out in a folder that does not exist", async () => {
    const out = await outDir("nofolder");
    const missing = path.join(out, "missing");
    const r = nibble("quantize", model, "--calib", calib, "--out", path.join(missing, "q.onnx"));
    await expectFailure(r, { status: 2, names: missing, hint: /[Cc]reate it|choose another/, out });
  });
});

describe("unreadable models exit 1 and name the file", () => {
  const cases: [string, () => Promise<Buffer>][] = [
    ["zero-byte", async () => Buffer.alloc(0)],
    [
      "random-bytes",
      async () => {
        const rnd = mulberry32(2024);
        return Buffer.from(Array.from({ length: 4096 }, () => Math.floor(rnd() * 256)));
      },
    ],
    [
      "truncated at 50%",
      async () => {
        const full = await readFile(resnet);
        return full.subarray(0, Math.floor(full.length / 2));
      },
    ],
    ["text", async () => Buffer.from("This is not an ONNX model, just a text file with the wrong name.\n")],
  ];
  for (const [name, content] of cases) {
    test(name, async () => {
      const dir = path.join(tmp, "models", name.replace(/\W+/g, "-"));
      await mkdir(dir, { recursive: true });
      const bad = path.join(dir, "model.onnx");
      await writeFile(bad, await content());
      const out = await outDir(`model-${name.replace(/\W+/g, "-")}`);
      const r = nibble("quantize", bad, "--calib", calib, "--out", path.join(out, "q.onnx"));
      // a text file was never a model: exporting "again" is the wrong advice for it
      const hint = name === "text" ? /is a text file, not an ONNX model.*Choose the \.onnx file itself/ : /[Ee]xport the model again|download it again/;
      await expectFailure(r, { status: 1, names: bad, hint, out });
    });
  }
});

describe("bad calibration folders exit 1", () => {
  test("empty folder", async () => {
    const empty = path.join(tmp, "calib-empty");
    await mkdir(empty, { recursive: true });
    const out = await outDir("calib-empty");
    const r = nibble("quantize", model, "--calib", empty, "--out", path.join(out, "q.onnx"));
    await expectFailure(r, { status: 1, names: empty, hint: /JPEG, PNG/, out });
  });

  test("only undecodable files: the message names a file", async () => {
    const bad = path.join(tmp, "calib-bad");
    await mkdir(bad, { recursive: true });
    await writeFile(path.join(bad, "empty.png"), "");
    await writeFile(path.join(bad, "notes.jpg"), "this is text, not a JPEG\n");
    const out = await outDir("calib-bad");
    const r = nibble("quantize", model, "--calib", bad, "--out", path.join(out, "q.onnx"));
    await expectFailure(r, { status: 1, names: bad, hint: /[Cc]heck that|JPEG, PNG/, out });
    assert.match(r.stderr, /empty\.png|notes\.jpg/, show(r));
  });

  test("nonexistent --calib", async () => {
    const missing = path.join(tmp, "no-such-folder");
    const out = await outDir("calib-missing");
    const r = nibble("quantize", model, "--calib", missing, "--out", path.join(out, "q.onnx"));
    await expectFailure(r, { status: 1, names: missing, hint: /[Cc]hoose an existing folder/, out });
  });

  test("an existing file at --out is left byte-identical when the run fails", async () => {
    const empty = path.join(tmp, "calib-empty-2");
    await mkdir(empty, { recursive: true });
    const out = await outDir("keep-existing");
    const target = path.join(out, "q.onnx");
    const original = Buffer.from("previous result, must survive a failed run\n");
    await writeFile(target, original);
    const mtime = (await stat(target)).mtimeMs;
    const r = nibble("quantize", model, "--calib", empty, "--out", target);
    assert.equal(r.status, 1, show(r));
    assert.ok(r.stderr.includes(empty), show(r));
    assert.deepEqual(await readFile(target), original);
    assert.equal((await stat(target)).mtimeMs, mtime);
    assert.deepEqual(await readdir(out), ["q.onnx"], "no temp file next to it");
  });
});

describe("help and inspect", () => {
  test("--help exits 0 and documents every flag of the contract", () => {
    const r = nibble("--help");
    assert.equal(r.status, 0, show(r));
    for (const word of ["quantize", "--calib", "--out", "--eval", "--preset", "--resize", "--crop", "--w-bits", "--a-bits", "--methods", "--activations", "--keep", "--report", "--json"]) {
      assert.ok(r.stdout.includes(word), `--help should mention ${word}`);
    }
  });

  test("inspect prints the layer count", () => {
    const r = nibble("inspect", resnet);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /\b20 to quantize\b/);
    assert.match(r.stdout, /19 conv, 1 fc/);
  });
});
