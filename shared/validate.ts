// Runtime checks of every request that crosses from the renderer into a host. The renderer is treated as
// untrusted (a compromised page must not steer the engine outside its contract), so each payload is
// rebuilt field by field from what is known: unknown fields are dropped, wrong types are refused with a
// message that names the field.
import type { JobRequest, NibbleApi } from "./engine-api.ts";
import type { ApiMethod, DialogRequest } from "./ipc.ts";
import { TARGET_IDS } from "./targets.ts";
import { CALIBRATIONS, KNOWN_METHODS, type Method, type PreprocessConfig, type PresetName, type QuantConfig } from "./types.ts";

export class ValidationError extends Error {
  override name = "ValidationError";
}

type Obj = Record<string, unknown>;

const MAX_PATH = 4096;
const MAX_NAME = 1024;

function fail(field: string, what: string): never {
  throw new ValidationError(`${field}: ${what}`);
}

function obj(v: unknown, field: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(field, "expected an object");
  return v as Obj;
}

function str(v: unknown, field: string, max = MAX_NAME): string {
  if (typeof v !== "string") fail(field, "expected a string");
  if (v.length === 0) fail(field, "must not be empty");
  if (v.length > max) fail(field, `longer than ${max} characters`);
  if (v.includes("\0")) fail(field, "contains a NUL character");
  return v;
}

/** An absolute path (POSIX or Windows); relative paths would resolve against the host's working dir. */
export function absPath(v: unknown, field: string): string {
  const p = str(v, field, MAX_PATH);
  if (!(p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith("\\\\"))) fail(field, "must be an absolute path");
  return p;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) fail(field, "expected a whole number");
  if (v < min || v > max) fail(field, `must be between ${min} and ${max}`);
  return v;
}

function num(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(field, "expected a number");
  if (v < min || v > max) fail(field, `must be between ${min} and ${max}`);
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") fail(field, "expected true or false");
  return v;
}

function oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[]): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) fail(field, `must be one of ${allowed.join(", ")}`);
  return v as T;
}

function triple(v: unknown, field: string, min: number, max: number): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3) fail(field, "expected three numbers");
  return [num(v[0], `${field}[0]`, min, max), num(v[1], `${field}[1]`, min, max), num(v[2], `${field}[2]`, min, max)];
}

const PRESETS: readonly PresetName[] = ["imagenet", "inception", "caffe", "raw255", "raw01", "custom"];

export function preprocess(v: unknown, field = "preprocess"): PreprocessConfig {
  const o = obj(v, field);
  const out: PreprocessConfig = { preset: oneOf(o.preset, `${field}.preset`, PRESETS) };
  if (o.mean !== undefined) out.mean = triple(o.mean, `${field}.mean`, -1e4, 1e4);
  if (o.std !== undefined) out.std = triple(o.std, `${field}.std`, 1e-6, 1e4);
  if (o.scale !== undefined) out.scale = num(o.scale, `${field}.scale`, 1e-9, 1e4);
  if (o.channelOrder !== undefined) out.channelOrder = oneOf(o.channelOrder, `${field}.channelOrder`, ["RGB", "BGR"] as const);
  if (o.resize !== undefined) out.resize = int(o.resize, `${field}.resize`, 1, 8192);
  if (o.crop !== undefined) out.crop = int(o.crop, `${field}.crop`, 1, 8192);
  if (o.inputSize !== undefined) {
    if (!Array.isArray(o.inputSize) || o.inputSize.length !== 2) fail(`${field}.inputSize`, "expected [height, width]");
    out.inputSize = [int(o.inputSize[0], `${field}.inputSize[0]`, 1, 16384), int(o.inputSize[1], `${field}.inputSize[1]`, 1, 16384)];
  }
  if (o.fourthChannel !== undefined) out.fourthChannel = o.fourthChannel === "alpha" ? "alpha" : num(o.fourthChannel, `${field}.fourthChannel`, -1e6, 1e6);
  return out;
}

export function quantConfig(v: unknown, field = "config"): QuantConfig {
  const o = obj(v, field);
  if (!Array.isArray(o.methods)) fail(`${field}.methods`, "expected a list");
  const methods = o.methods.map((m, i) => oneOf<Method>(m, `${field}.methods[${i}]`, KNOWN_METHODS));
  const keepIn = obj(o.keep, `${field}.keep`);
  const keep: Record<string, "8" | "float"> = {};
  const keepNames = Object.keys(keepIn);
  if (keepNames.length > 10_000) fail(`${field}.keep`, "too many layers");
  for (const name of keepNames) keep[str(name, `${field}.keep name`)] = oneOf(keepIn[name], `${field}.keep[${name}]`, ["8", "float"] as const);
  return {
    wBits: int(o.wBits, `${field}.wBits`, 2, 8),
    aBits: int(o.aBits, `${field}.aBits`, 2, 8),
    methods: [...new Set(methods)],
    prior: oneOf(o.prior, `${field}.prior`, ["laplace", "gaussian"] as const),
    aciqConstants: oneOf(o.aciqConstants, `${field}.aciqConstants`, ["reference", "exact"] as const),
    bitAllocMode: oneOf(o.bitAllocMode, `${field}.bitAllocMode`, ["reference", "strict"] as const),
    varianceCorrection: bool(o.varianceCorrection, `${field}.varianceCorrection`),
    baseline: oneOf(o.baseline, `${field}.baseline`, ["minmax", "percentile", "mse"] as const),
    activations: oneOf(o.activations, `${field}.activations`, ["per-channel", "per-tensor"] as const),
    keepFirstLast8: bool(o.keepFirstLast8, `${field}.keepFirstLast8`),
    keep,
    // absent in configs saved before it existed: they get today's default
    calibration: o.calibration === undefined ? "global" : oneOf(o.calibration, `${field}.calibration`, CALIBRATIONS),
    target: o.target === undefined ? "exact" : oneOf(o.target, `${field}.target`, TARGET_IDS),
    ...(o.maxDrop !== undefined && o.maxDrop !== null ? { maxDrop: num(o.maxDrop, `${field}.maxDrop`, 0, 100) } : {}),
    ...(o.reconstruct !== undefined ? { reconstruct: reconstructSettings(o.reconstruct, `${field}.reconstruct`) } : {}),
  };
}

function reconstructSettings(v: unknown, field: string): NonNullable<QuantConfig["reconstruct"]> {
  const o = obj(v, field);
  const out: NonNullable<QuantConfig["reconstruct"]> = {};
  if (o.images !== undefined) out.images = int(o.images, `${field}.images`, 1, 100_000);
  if (o.inputs !== undefined) out.inputs = oneOf(o.inputs, `${field}.inputs`, ["float", "quantized"] as const);
  if (o.floatTarget !== undefined) out.floatTarget = bool(o.floatTarget, `${field}.floatTarget`);
  if (o.actOrder !== undefined) out.actOrder = bool(o.actOrder, `${field}.actOrder`);
  if (o.damp !== undefined) out.damp = num(o.damp, `${field}.damp`, 0, 10);
  return out;
}

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function jobId(v: unknown, field = "jobId"): string {
  const s = str(v, field, 64);
  if (!JOB_ID.test(s)) fail(field, "is not a job id");
  return s;
}

export function jobRequest(v: unknown): JobRequest {
  const o = obj(v, "request");
  const kind = oneOf(o.kind, "request.kind", ["evaluate-fp32", "recommend-preprocess", "quantize", "ablation"] as const);
  const model = absPath(o.model, "request.model");
  const pre = preprocess(o.preprocess, "request.preprocess");
  const labels = o.evalLabels === undefined ? {} : { evalLabels: absPath(o.evalLabels, "request.evalLabels") };
  if (kind === "evaluate-fp32") return { kind, model, evalDir: absPath(o.evalDir, "request.evalDir"), preprocess: pre, ...labels };
  if (kind === "recommend-preprocess") {
    const sample = o.sample === undefined ? {} : { sample: int(o.sample, "request.sample", 1, 100_000) };
    return { kind, model, evalDir: absPath(o.evalDir, "request.evalDir"), preprocess: pre, ...labels, ...sample };
  }
  const calibDir = absPath(o.calibDir, "request.calibDir");
  const config = quantConfig(o.config, "request.config");
  const calibLimit = o.calibLimit === undefined ? undefined : int(o.calibLimit, "request.calibLimit", 1, 10_000_000);
  const limit = calibLimit === undefined ? {} : { calibLimit };
  if (kind === "ablation") {
    return { kind, model, calibDir, evalDir: absPath(o.evalDir, "request.evalDir"), preprocess: pre, config, ...limit, ...labels };
  }
  const evalDir = o.evalDir === null || o.evalDir === undefined ? null : absPath(o.evalDir, "request.evalDir");
  const seed = o.calibSeed === undefined ? {} : { calibSeed: int(o.calibSeed, "request.calibSeed", 0, 2 ** 31 - 1) };
  let detection = {};
  if (o.detection !== undefined) {
    const d = obj(o.detection, "request.detection");
    const fraction = (k: string) => (d[k] === undefined ? {} : { [k]: num(d[k], `request.detection.${k}`, 0, 1) });
    detection = { detection: { ...fraction("scoreThreshold"), ...fraction("nmsIou"), ...fraction("matchIou") } };
  }
  return { kind, model, calibDir, evalDir, preprocess: pre, config, ...limit, ...seed, ...labels, ...detection };
}

/** The single argument of each API method, checked. */
export type ApiArg<M extends ApiMethod> = Parameters<NibbleApi[M]>[0];

export const apiArg: { [M in ApiMethod]: (v: unknown) => ApiArg<M> } = {
  inspect: (v) => absPath(v, "model path"),
  previewData: (v) => {
    const o = obj(v, "request");
    return {
      dir: absPath(o.dir, "request.dir"),
      model: absPath(o.model, "request.model"),
      preprocess: preprocess(o.preprocess, "request.preprocess"),
      count: int(o.count, "request.count", 1, 64),
    };
  },
  startJob: jobRequest,
  cancelJob: (v) => jobId(v),
  exportModel: (v) => {
    const o = obj(v, "request");
    return { jobId: jobId(o.jobId, "request.jobId"), path: absPath(o.path, "request.path") };
  },
  exportReport: (v) => {
    const o = obj(v, "request");
    return {
      jobId: jobId(o.jobId, "request.jobId"),
      path: absPath(o.path, "request.path"),
      format: oneOf(o.format, "request.format", ["html", "json"] as const),
    };
  },
};

/** Every filesystem path an API argument carries, so a host can check each against its policy. */
export function pathsOf<M extends ApiMethod>(method: M, arg: ApiArg<M>): { read: string[]; write: string[] } {
  switch (method) {
    case "inspect":
      return { read: [arg as string], write: [] };
    case "previewData": {
      const a = arg as ApiArg<"previewData">;
      return { read: [a.dir, a.model], write: [] };
    }
    case "startJob": {
      const a = arg as JobRequest;
      const read = [a.model];
      if (a.evalLabels) read.push(a.evalLabels);
      if (a.kind === "evaluate-fp32" || a.kind === "recommend-preprocess") read.push(a.evalDir);
      else {
        read.push(a.calibDir);
        if (a.evalDir) read.push(a.evalDir);
      }
      return { read, write: [] };
    }
    case "exportModel":
    case "exportReport":
      return { read: [], write: [(arg as { path: string }).path] };
    default:
      return { read: [], write: [] };
  }
}

export function dialogRequest(v: unknown): DialogRequest {
  const o = obj(v, "dialog");
  const out: DialogRequest = {
    kind: oneOf(o.kind, "dialog.kind", ["model", "folder", "save"] as const),
    title: str(o.title, "dialog.title", 200),
  };
  if (o.defaultPath !== undefined) out.defaultPath = absPath(o.defaultPath, "dialog.defaultPath");
  if (o.extension !== undefined) {
    const ext = str(o.extension, "dialog.extension", 16);
    if (!/^[a-z0-9]+$/.test(ext)) fail("dialog.extension", "must be letters and digits");
    out.extension = ext;
  }
  return out;
}

export function browseRequest(v: unknown): { dir: string | null } {
  const o = obj(v, "browse");
  return { dir: o.dir === null || o.dir === undefined ? null : absPath(o.dir, "browse.dir") };
}
