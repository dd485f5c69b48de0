// The fuzzer of the model reader and the image loader: seeded mutations of real files, each case run in
// a worker thread that is watched from outside, so a hang (even a synchronous endless loop) is caught by
// a deadline and the worker replaced, and memory is sampled after every case.
//
// A case passes when it succeeds or throws ModelError / DataError (a skipped image counts as a DataError:
// the loader's "none could be decoded"). Anything else is a finding: another error type, a hang, a
// worker that died, memory past the limit.
//
// Used by fuzz.test.ts (a fixed number of cases in `npm test`) and scripts/fuzz.ts (`npm run fuzz`).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import sharp from "sharp";
import { cifarPngs, FIXTURES } from "./corpus.ts";
import { mulberry32 } from "../../src-main/engine/random.ts";

export type Target = "model" | "image";
export const MUTATIONS = ["bitflip", "insert", "delete", "truncate", "length"] as const;
export type Mutation = (typeof MUTATIONS)[number];

export interface FuzzCase {
  id: number;
  target: Target;
  /** which seed file (index into the run's sources of that target) */
  source: number;
  mutation: Mutation;
  seed: number;
}

export type Verdict = "ok" | "ModelError" | "DataError" | "other" | "hang" | "crash";

export interface CaseResult {
  fuzzCase: FuzzCase;
  verdict: Verdict;
  /** the error's name and message, for findings */
  detail: string;
  ms: number;
  rssMb: number;
}

/** Messages between the runner and fuzz-target.ts. */
export type ToTarget = { type: "run"; fuzzCase: FuzzCase; bytes: Uint8Array; name: string; dir: string };
export type FromTarget = { type: "ready" } | { type: "result"; id: number; verdict: "ok" | "ModelError" | "DataError" | "other"; detail: string };

// ---- seeded mutations --------------------------------------------------------------------------------


const int = (r: () => number, n: number) => Math.floor(r() * n);

/** Offsets and byte counts of length fields: protobuf length-delimited fields, PNG chunk lengths, JPEG segment lengths. */
export function lengthFields(bytes: Uint8Array, target: Target): { at: number; size: number; value: number; kind: "varint" | "be32" | "be16" }[] {
  if (target === "model") {
    const out: { at: number; size: number; value: number; kind: "varint" }[] = [];
    protobufLengths(bytes, 0, bytes.length, 0, out);
    return out;
  }
  const out: { at: number; size: number; value: number; kind: "be32" | "be16" }[] = [];
  if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    for (let p = 8; p + 8 <= bytes.length; ) {
      const len = ((bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]) >>> 0;
      out.push({ at: p, size: 4, value: len, kind: "be32" });
      p += 12 + len;
    }
  } else if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    for (let p = 2; p + 4 <= bytes.length; ) {
      if (bytes[p] !== 0xff) break;
      const marker = bytes[p + 1];
      if (marker === 0xd9 || marker === 0xda) {
        if (marker === 0xda) out.push({ at: p + 2, size: 2, value: (bytes[p + 2] << 8) | bytes[p + 3], kind: "be16" });
        break;
      }
      const len = (bytes[p + 2] << 8) | bytes[p + 3];
      out.push({ at: p + 2, size: 2, value: len, kind: "be16" });
      p += 2 + len;
    }
  }
  return out;
}

function readVarint(b: Uint8Array, p: number, end: number): { value: number; size: number } | null {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10 && p + i < end; i++) {
    value += (b[p + i] & 0x7f) * mul;
    mul *= 128;
    if ((b[p + i] & 0x80) === 0) return { value, size: i + 1 };
  }
  return null;
}

/** Walks a protobuf message, recording every length-delimited field and descending into those that parse as messages. */
function protobufLengths(b: Uint8Array, start: number, end: number, depth: number, out: { at: number; size: number; value: number; kind: "varint" }[]): boolean {
  let p = start;
  const found: typeof out = [];
  while (p < end) {
    const tag = readVarint(b, p, end);
    if (!tag || tag.value === 0) return false;
    p += tag.size;
    const wire = tag.value % 8;
    if (wire === 0) {
      const v = readVarint(b, p, end);
      if (!v) return false;
      p += v.size;
    } else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else if (wire === 2) {
      const len = readVarint(b, p, end);
      if (!len || p + len.size + len.value > end) return false;
      found.push({ at: p, size: len.size, value: len.value, kind: "varint" });
      const inner = p + len.size;
      if (depth < 6 && len.value > 1) protobufLengths(b, inner, inner + len.value, depth + 1, out);
      p = inner + len.value;
    } else return false;
  }
  if (p !== end) return false;
  out.push(...found);
  return true;
}

function encodeVarint(value: number, minSize: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    out.push(v % 128);
    v = Math.floor(v / 128);
  } while (v > 0 || out.length < minSize);
  for (let i = 0; i < out.length - 1; i++) out[i] |= 0x80;
  return out;
}

export function mutate(input: Uint8Array, target: Target, mutation: Mutation, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const b = Uint8Array.from(input);
  switch (mutation) {
    case "bitflip": {
      const flips = 1 + int(r, 8);
      // Half the cases aim at the first 1 KB, where headers and the top-level fields live.
      for (let i = 0; i < flips; i++) {
        const at = r() < 0.5 ? int(r, Math.min(1024, b.length)) : int(r, b.length);
        b[at] ^= 1 << int(r, 8);
      }
      return b;
    }
    case "insert": {
      const at = int(r, b.length + 1);
      const extra = Uint8Array.from({ length: 1 + int(r, 16) }, () => int(r, 256));
      return concat(b.subarray(0, at), extra, b.subarray(at));
    }
    case "delete": {
      const at = int(r, b.length);
      const n = 1 + int(r, 64);
      return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + n)));
    }
    case "truncate":
      return b.subarray(0, int(r, b.length));
    case "length": {
      const fields = lengthFields(b, target);
      if (fields.length === 0) return mutate(input, target, "bitflip", seed);
      const f = fields[int(r, fields.length)];
      const choices = [0, 1, f.value - 1, f.value + 1, f.value * 2 + 7, f.value >>> 1, 0x7fffffff, 0xffffffff, int(r, 1 << 20)];
      const value = Math.max(0, choices[int(r, choices.length)]);
      if (f.kind === "varint") {
        const enc = encodeVarint(value, f.size);
        return concat(b.subarray(0, f.at), Uint8Array.from(enc), b.subarray(f.at + f.size));
      }
      if (f.kind === "be32") new DataView(b.buffer).setUint32(f.at, value >>> 0);
      else new DataView(b.buffer).setUint16(f.at, value & 0xffff);
      return b;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---- the seed files ----------------------------------------------------------------------------------

export interface Sources {
  model: { name: string; bytes: Uint8Array }[];
  image: { name: string; bytes: Uint8Array }[];
}

/**
 * ResNet-20 and -32 and UltraFace (opset 9, so mutations reach the opset converter) from the fixtures;
 * three CIFAR-10 PNGs and a JPEG made from one with sharp.
 */
export async function loadSources(): Promise<Sources> {
  const models = ["resnet20-cifar10.onnx", "resnet32-cifar10.onnx", "ultraface-rfb-320.onnx"];
  const pngs = await cifarPngs(3);
  const jpeg = await sharp(pngs[0]).resize(96, 96).jpeg({ quality: 85 }).toBuffer();
  return {
    model: await Promise.all(models.map(async (name) => ({ name, bytes: new Uint8Array(await readFile(path.join(FIXTURES, "models", name))) }))),
    image: [
      ...(await Promise.all(pngs.map(async (p) => ({ name: path.basename(p), bytes: new Uint8Array(await readFile(p)) })))),
      { name: "made-with-sharp.jpg", bytes: new Uint8Array(jpeg) },
    ],
  };
}

/** `count` cases from `seed`: targets alternate, mutations and seed files rotate, each case has its own seed. */
export function planCases(count: number, seed: number, sources: Sources, only?: Target): FuzzCase[] {
  const r = mulberry32(seed);
  return Array.from({ length: count }, (_, id) => {
    const target: Target = only ?? (id % 2 === 0 ? "model" : "image");
    const n = Math.floor(id / (only ? 1 : 2));
    return { id, target, source: int(r, sources[target].length), mutation: MUTATIONS[n % MUTATIONS.length], seed: (int(r, 2 ** 31) ^ seed) >>> 0 };
  });
}

// ---- the runner --------------------------------------------------------------------------------------

export interface RunOptions {
  cases: FuzzCase[];
  sources: Sources;
  /** a case running longer than this is a hang */
  caseTimeoutMs: number;
  /** heap limit of the worker thread */
  workerHeapMb: number;
  onResult?: (r: CaseResult) => void;
}

export async function runFuzz(opts: RunOptions): Promise<CaseResult[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nibble-fuzz-"));
  const results: CaseResult[] = [];
  let worker: Worker | null = null;
  let current: ((m: FromTarget | { type: "died"; detail: string }) => void) | null = null;

  /** A worker that has loaded the code under test: the per-case clock starts only then. */
  const spawnWorker = async (): Promise<Worker> => {
    const w = new Worker(new URL("./fuzz-worker.mjs", import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: opts.workerHeapMb } });
    w.unref();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the fuzz worker did not start within 120 s")), 120_000);
      w.once("message", () => {
        clearTimeout(timer);
        resolve();
      });
      w.once("error", reject);
    });
    w.on("message", (m: FromTarget) => current?.(m));
    w.on("error", (e: Error) => current?.({ type: "died", detail: `${e.name}: ${e.message}` }));
    w.on("exit", (code) => current?.({ type: "died", detail: `worker exited with code ${code}` }));
    return w;
  };

  try {
    for (const c of opts.cases) {
      worker ??= await spawnWorker();
      const source = opts.sources[c.target][c.source];
      const bytes = mutate(source.bytes, c.target, c.mutation, c.seed);
      const started = performance.now();
      const outcome = await new Promise<{ verdict: Verdict; detail: string }>((resolve) => {
        const timer = setTimeout(() => resolve({ verdict: "hang", detail: `no answer within ${opts.caseTimeoutMs} ms` }), opts.caseTimeoutMs);
        current = (m) => {
          if (m.type === "ready" || (m.type === "result" && m.id !== c.id)) return;
          clearTimeout(timer);
          resolve(m.type === "died" ? { verdict: "crash", detail: m.detail } : { verdict: m.verdict, detail: m.detail });
        };
        const name = `case-${c.id}${path.extname(source.name)}`;
        worker!.postMessage({ type: "run", fuzzCase: c, bytes, name, dir } satisfies ToTarget);
      });
      current = null;
      const ms = performance.now() - started;
      if (outcome.verdict === "hang" || outcome.verdict === "crash") {
        await worker.terminate().catch(() => undefined);
        worker = null;
      }
      const result: CaseResult = { fuzzCase: c, verdict: outcome.verdict, detail: outcome.detail, ms, rssMb: process.memoryUsage.rss() / 2 ** 20 };
      results.push(result);
      opts.onResult?.(result);
    }
  } finally {
    current = null;
    await worker?.terminate().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

/** A case's verdict is acceptable: success, or one of the two errors the app shows as they are. */
export function acceptable(v: Verdict): boolean {
  return v === "ok" || v === "ModelError" || v === "DataError";
}

/** One row per target and mutation: cases, outcomes, slowest case. */
export function summaryTable(results: CaseResult[]): string {
  const rows: string[][] = [["target", "mutation", "cases", "ok", "ModelError", "DataError", "other", "hang", "crash", "max ms"]];
  for (const target of ["model", "image"] as const) {
    for (const mutation of MUTATIONS) {
      const rs = results.filter((r) => r.fuzzCase.target === target && r.fuzzCase.mutation === mutation);
      if (rs.length === 0) continue;
      const n = (v: Verdict) => String(rs.filter((r) => r.verdict === v).length);
      rows.push([target, mutation, String(rs.length), n("ok"), n("ModelError"), n("DataError"), n("other"), n("hang"), n("crash"), String(Math.round(Math.max(...rs.map((r) => r.ms))))]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")).join("\n");
}
