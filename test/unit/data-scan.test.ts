import assert from "node:assert/strict";
import { chmod, mkdir, symlink } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { DataError } from "../../src-main/engine/data/errors.ts";
import { compareCodePoints } from "../../src-main/engine/data/order.ts";
import { pickSubset, scanImages } from "../../src-main/engine/data/scan.ts";
import { fixtures, put, tempDir } from "./data-fixtures.ts";

const X = Buffer.from("not decoded by the scan");

test("lists image extensions case-insensitively, recursively, in code-point order", async (t) => {
  const dir = await tempDir(t);
  const names = ["b.JPG", "a.png", "c.jpeg", "d.WebP", "e.bmp", "f.tif", "g.TIFF", "h.gif", "with space.png", "ünï.png", "new\nline.png", "\uE000.png", "😀.png", "sub/deeper/x.png"];
  for (const n of names) await put(dir, n, X);
  for (const n of ["notes.txt", "model.onnx", ".hidden.png", "._a.png", ".git/x.png", "noext"]) await put(dir, n, X);

  const set = await scanImages(dir);
  const rels = set.files.map((f) => f.rel);
  assert.deepEqual(rels, [...names].sort(compareCodePoints));
  assert.ok(rels.indexOf("\uE000.png") < rels.indexOf("😀.png"), "code points, not UTF-16 units");
  assert.equal(set.root, dir);
  assert.equal(set.files.find((f) => f.rel === "sub/deeper/x.png")!.path, path.join(dir, "sub", "deeper", "x.png"));
  assert.ok(set.files.every((f) => f.label === null), "images at the root: no class folders");
  assert.deepEqual(set.classes, []);
  assert.deepEqual(set.skipped, []);
});

test("empty folders and missing folders give actionable DataErrors", async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(scanImages(dir), (e: Error) => e instanceof DataError && /No images found/.test(e.message) && /one sub-folder per class/.test(e.message));
  await put(dir, "readme.txt", "hi");
  await mkdir(path.join(dir, "cat"));
  await assert.rejects(scanImages(dir), /No images found/);
  await assert.rejects(scanImages(path.join(dir, "nope")), (e: Error) => e instanceof DataError && /cannot be opened \(ENOENT\)/.test(e.message));
  await assert.rejects(scanImages(path.join(dir, "readme.txt")), /is a file, not a folder/);
});

test("class folders give sorted classes and labels, empty class folders included", async (t) => {
  const dir = await tempDir(t);
  await put(dir, "dog/1.png", X);
  await put(dir, "cat/2.png", X);
  await put(dir, "cat/nested/3.png", X);
  await mkdir(path.join(dir, "bird")); // no images: still class 0, as in torchvision's ImageFolder
  const set = await scanImages(dir);
  assert.deepEqual(set.classes, ["bird", "cat", "dog"]);
  assert.deepEqual(set.files.map((f) => [f.rel, f.label]), [["cat/2.png", 1], ["cat/nested/3.png", 1], ["dog/1.png", 2]]);

  // a single sub-folder is not a class structure
  const one = await tempDir(t);
  await put(one, "images/a.png", X);
  assert.deepEqual((await scanImages(one)).files.map((f) => f.label), [null]);
});

test("classes.txt defines the index of each class folder", async (t) => {
  const dir = await tempDir(t);
  await put(dir, "cat/a.png", X);
  await put(dir, "dog/b.png", X);
  await put(dir, "classes.txt", "\uFEFFdog\r\ncat\r\n\r\n");
  const set = await scanImages(dir);
  assert.deepEqual(set.classes, ["dog", "cat"]);
  assert.deepEqual(set.files.map((f) => f.label), [1, 0]);

  await put(dir, "fox/c.png", X);
  await assert.rejects(scanImages(dir), (e: Error) => e instanceof DataError && /classes.txt does not list the class folder\(s\) "fox"/.test(e.message));
  await put(dir, "classes.txt", "dog\ncat\ndog\n");
  await assert.rejects(scanImages(dir), /lists class "dog" twice/);
});

test("labels.txt: integer or class-name labels, paths with spaces, overriding folders", async (t) => {
  const dir = await tempDir(t);
  await put(dir, "a b.png", X);
  await put(dir, "c.png", X);
  await put(dir, "d.png", X);
  await put(dir, "labels.txt", "# comment\n./a b.png 3\nc.png\t7\n\n");
  let set = await scanImages(dir);
  assert.deepEqual(set.files.map((f) => [f.rel, f.label]), [["a b.png", 3], ["c.png", 7], ["d.png", null]]);
  assert.deepEqual(set.classes, []);

  // names without classes.txt: classes are the sorted names used
  await put(dir, "labels.txt", "a b.png zebra\nc.png ant\nd.png zebra\n");
  set = await scanImages(dir);
  assert.deepEqual(set.classes, ["ant", "zebra"]);
  assert.deepEqual(set.files.map((f) => f.label), [1, 0, 1]);

  // with classes.txt, names and integers resolve against it, and out-of-range integers are refused
  await put(dir, "classes.txt", "zebra\nant\n");
  await put(dir, "labels.txt", "a b.png ant\nc.png 0\n");
  set = await scanImages(dir);
  assert.deepEqual(set.files.map((f) => f.label), [1, 0, null]);
  await put(dir, "labels.txt", "c.png 2\n");
  await assert.rejects(scanImages(dir), /label 2 is out of range; there are 2 classes/);
  await put(dir, "labels.txt", "c.png gnu\n");
  await assert.rejects(scanImages(dir), /class "gnu" is not a known class/);
  await put(dir, "labels.txt", "c.png\n");
  await assert.rejects(scanImages(dir), (e: Error) => e instanceof DataError && /line 1 \("c.png"\) has no label/.test(e.message));
  await put(dir, "labels.txt", "elsewhere/c.png 1\n");
  await assert.rejects(scanImages(dir), /none of them is in/);

  // labels.txt wins over class folders
  const folders = await tempDir(t);
  await put(folders, "cat/1.png", X);
  await put(folders, "dog/2.png", X);
  await put(folders, "labels.txt", "cat/1.png dog\n");
  assert.deepEqual((await scanImages(folders)).files.map((f) => f.label), [1, 1]);
});

test("the fixture's labels.txt and class folders agree", async () => {
  const set = await scanImages(path.join(fixtures, "cifar10-test"));
  assert.equal(set.files.length, 10_000);
  assert.deepEqual(set.classes, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]);
  assert.ok(set.files.every((f) => f.label === set.classes.indexOf(f.rel.split("/")[0])));
});

test("seeded subsets are deterministic, sorted, and depend on the seed", async (t) => {
  const dir = await tempDir(t);
  for (let i = 0; i < 40; i++) await put(dir, `${i % 4}/${String(i).padStart(2, "0")}.png`, X);
  const a = await scanImages(dir, { limit: 10, seed: 7 });
  const b = await scanImages(dir, { limit: 10, seed: 7 });
  const c = await scanImages(dir, { limit: 10, seed: 8 });
  assert.equal(a.files.length, 10);
  assert.deepEqual(a.files, b.files);
  assert.notDeepEqual(a.files.map((f) => f.rel), c.files.map((f) => f.rel));
  assert.deepEqual(a.files.map((f) => f.rel), a.files.map((f) => f.rel).sort(compareCodePoints));
  assert.ok(new Set(a.files.map((f) => f.label)).size > 1, "not just the first class");
  assert.equal((await scanImages(dir, { limit: 100 })).files.length, 40);
  assert.throws(() => pickSubset([1, 2], 0, 0), DataError);
  // pinned: the benchmark protocol must pick the same images on every machine and Node version
  assert.deepEqual(pickSubset([...Array(1000).keys()], 5, 0), [1, 148, 224, 266, 469]);
});

test("symbolic links are followed without loops; broken links are recorded", async (t) => {
  const dir = await tempDir(t);
  await put(dir, "a/x.png", X);
  await symlink(dir, path.join(dir, "a", "loop")); // a/loop -> root
  await symlink(path.join(dir, "a"), path.join(dir, "b")); // b -> a, same folder twice
  await symlink(path.join(dir, "a", "x.png"), path.join(dir, "y.png")); // file link: an image of its own
  await symlink(path.join(dir, "gone.png"), path.join(dir, "z.png"));
  const set = await scanImages(dir);
  assert.deepEqual(set.files.map((f) => f.rel), ["a/x.png", "y.png"]);
  assert.deepEqual(set.skipped.map((s) => s.file).sort(), ["a/loop/", "b/", "z.png"]);
  assert.match(set.skipped.find((s) => s.file === "z.png")!.reason, /broken symbolic link/);
  assert.match(set.skipped.find((s) => s.file === "b/")!.reason, /already scanned/);
});

test("unreadable sub-folders are skipped and recorded", { skip: process.getuid?.() === 0 ? "root can read every folder" : false }, async (t) => {
  const dir = await tempDir(t);
  await put(dir, "ok/a.png", X);
  await put(dir, "locked/b.png", X);
  await chmod(path.join(dir, "locked"), 0o000);
  let set;
  try {
    set = await scanImages(dir);
  } finally {
    await chmod(path.join(dir, "locked"), 0o755); // so the temp folder can be removed
  }
  assert.deepEqual(set.files.map((f) => f.rel), ["ok/a.png"]);
  assert.deepEqual(set.skipped.map((s) => s.file), ["locked/"]);
  assert.match(set.skipped[0].reason, /EACCES/);
});
