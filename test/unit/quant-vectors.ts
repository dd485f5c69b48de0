// Loads the reference test vectors (shared/vectors) and reads them with shape checks: a missing file or a
// field of the wrong shape throws, so a test can never pass by skipping data.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function vectorsDir(): string {
  const beside = path.resolve(repoRoot, "../shared/vectors");
  if (existsSync(beside)) return beside;
  const env = process.env.NIBBLE_SHARED;
  if (env) return existsSync(path.join(env, "vectors")) ? path.join(env, "vectors") : env;
  throw new Error(`test vectors not found at ${beside} and NIBBLE_SHARED is not set`);
}

export type Json = Record<string, unknown>;

export function loadVector(file: string): Json {
  return obj(JSON.parse(readFileSync(path.join(vectorsDir(), file), "utf8")), file);
}

export function obj(v: unknown, what: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypeError(`${what}: expected an object`);
  return v as Json;
}

export function list(o: Json, key: string, length?: number): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new TypeError(`${key}: expected an array`);
  if (length !== undefined && v.length !== length) throw new TypeError(`${key}: expected ${length} entries, got ${v.length}`);
  return v;
}

export function num(o: Json, key: string): number {
  const v = o[key];
  if (typeof v !== "number") throw new TypeError(`${key}: expected a number, got ${JSON.stringify(v)}`);
  return v;
}

export function str(o: Json, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new TypeError(`${key}: expected a string`);
  return v;
}

export function bool(o: Json, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new TypeError(`${key}: expected a boolean`);
  return v;
}

export function child(o: Json, key: string): Json {
  return obj(o[key], key);
}

/** A numeric array of exactly `length` entries (nested arrays are flattened row-major first). */
export function asNums(v: unknown, what: string, length?: number): number[] {
  if (!Array.isArray(v)) throw new TypeError(`${what}: expected an array`);
  const flat = (v as unknown[]).flat(Infinity);
  if (length !== undefined && flat.length !== length) throw new TypeError(`${what}: expected ${length} numbers, got ${flat.length}`);
  for (const x of flat) if (typeof x !== "number") throw new TypeError(`${what}: non-numeric entry ${JSON.stringify(x)}`);
  return flat as number[];
}

export function nums(o: Json, key: string, length?: number): number[] {
  return asNums(o[key], key, length);
}

export function objects(o: Json, key: string, length?: number): Json[] {
  return list(o, key, length).map((v, i) => obj(v, `${key}[${i}]`));
}

export function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
