import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { imageNames, linkFolder, splitNames } from "../../scripts/bench/split.ts";
import { fixtures, tempDir } from "./data-fixtures.ts";

const NAMES = Array.from({ length: 50 }, (_, i) => `img_${String(i).padStart(3, "0")}.jpg`);

test("the split is disjoint, has the sizes asked for, and its lists are sorted", () => {
  const s = splitNames(NAMES, 12, 30, 0);
  assert.equal(s.calib.length, 12);
  assert.equal(s.eval.length, 30);
  const calib = new Set(s.calib);
  assert.equal(calib.size, 12);
  assert.ok(s.eval.every((n) => !calib.has(n)), "no image in both");
  assert.deepEqual(s.calib, [...s.calib].sort());
  assert.deepEqual(s.eval, [...s.eval].sort());
  assert.notDeepEqual(s.calib, NAMES.slice(0, 12), "a shuffle, not the first names");
});

test("the split depends on the seed and the set of names, not on the order they were listed in", () => {
  const a = splitNames(NAMES, 12, 30, 0);
  assert.deepEqual(splitNames([...NAMES].reverse(), 12, 30, 0), a);
  assert.deepEqual(splitNames([...NAMES, NAMES[3]], 12, 30, 0), a, "a duplicate name is one image");
  assert.notDeepEqual(splitNames(NAMES, 12, 30, 1).calib, a.calib);
  // a larger evaluation share keeps the same calibration images: they come first in the shuffle
  assert.deepEqual(splitNames(NAMES, 12, 38, 0).calib, a.calib);
});

test("a split larger than the folder is refused", () => {
  assert.throws(() => splitNames(NAMES, 30, 21, 0), /needs 51 distinct images; there are 50/);
});

test("linkFolder rebuilds the folder with exactly the split's images", async (t) => {
  const dir = await tempDir(t);
  const to = path.join(dir, "calib");
  await linkFolder("/src", ["a.jpg", "b.jpg"], to);
  await linkFolder("/src", ["c.jpg"], to);
  assert.deepEqual(await readdir(to), ["c.jpg"]);
  assert.equal(await readlink(path.join(to, "c.jpg")), path.resolve("/src", "c.jpg"));
});

// The ImageNet numbers of docs/BENCHMARKS.md were measured on this split: a change to it must be deliberate.
test("the imagenet-val-1300 split (300 / 1,000, seed 0) is the one the benchmarks were measured on", { skip: !existsSync(path.join(fixtures, "imagenet-val-1300")) }, async () => {
  const s = splitNames(await imageNames(path.join(fixtures, "imagenet-val-1300")), 300, 1000, 0);
  assert.equal(new Set([...s.calib, ...s.eval]).size, 1300);
  const digest = createHash("sha256").update(JSON.stringify([s.calib, s.eval])).digest("hex");
  assert.equal(digest, "83a6f4f46845fec6302e1d2f3085deaa758db054d74777b51f6c68a9029df02b");
});
