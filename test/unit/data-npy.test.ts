// The .npy/.npz readers against files numpy itself wrote (test/fixtures/numpy/make.py), and every way a file
// can be wrong: each refusal names the file and says what to do.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { DataError } from "../../src-main/engine/data/errors.ts";
import { parseNpy } from "../../src-main/engine/data/npy.ts";
import { readMember, readMemberHeader, withNpz } from "../../src-main/engine/data/npz.ts";
import { npy, npz } from "../helpers/numpy.ts";

const dir = path.resolve(import.meta.dirname, "../fixtures/numpy");
const load = async (name: string) => parseNpy(await readFile(path.join(dir, name)), name);
const a = Array.from({ length: 24 }, (_, i) => i / 8 - 1); // numpy: arange(24).reshape(2, 3, 4) / 8 - 1

function refuses(fn: () => unknown, file: string, ...patterns: RegExp[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.ok(e.message.includes(file), e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe(".npy written by numpy", () => {
  test("float32, C order, version 1.0 and 2.0", async () => {
    for (const f of ["f4-c.npy", "f4-v2.npy"]) {
      const r = await load(f);
      assert.equal(r.type, "float32");
      assert.deepEqual(r.shape, [2, 3, 4]);
      assert.deepEqual(Array.from(r.data as Float32Array), a);
    }
  });
  test("Fortran order comes back in C order", async () => {
    const r = await load("f4-fortran.npy");
    assert.deepEqual(Array.from(r.data as Float32Array), a);
  });
  test("float64, float16 bits, big-endian int32, int64, uint8, bool, a 0-d scalar", async () => {
    assert.deepEqual(Array.from((await load("f8.npy")).data as Float64Array), a);
    const half = await load("f2.npy");
    assert.equal(half.type, "float16");
    assert.equal((half.data as Uint16Array)[23], 0x3f80); // 23 / 8 - 1 = 1.875
    assert.deepEqual(Array.from((await load("i4-big-endian.npy")).data as Int32Array), [-3, -2, -1, 0, 1, 2]);
    assert.deepEqual(Array.from((await load("i8.npy")).data as BigInt64Array), [-(2n ** 40n), 0n, 7n]);
    assert.deepEqual(Array.from((await load("u1.npy")).data as Uint8Array), [0, 128, 255]);
    const b = await load("bool.npy");
    assert.equal(b.type, "bool");
    assert.deepEqual(Array.from(b.data as Uint8Array), [1, 0, 1]);
    const s = await load("scalar.npy");
    assert.deepEqual(s.shape, []);
    assert.deepEqual(Array.from(s.data as Float32Array), [2.5]);
  });
});

describe(".npy that cannot be used", () => {
  test("pickled objects, structured and complex arrays are refused, saying what to save instead", async () => {
    const buf = (f: string) => readFile(path.join(dir, f));
    const objects = await buf("object.npy");
    refuses(() => parseNpy(objects, "object.npy"), "object.npy", /Python objects \(a pickled array\)/, /never loads/, /astype\(numpy\.float32\)/);
    const structured = await buf("structured.npy");
    refuses(() => parseNpy(structured, "structured.npy"), "structured.npy", /structured array/);
    const complex = await buf("complex.npy");
    refuses(() => parseNpy(complex, "complex.npy"), "complex.npy", /dtype '<c8'/, /float32, float64, float16/);
  });
  test("not .npy, truncated header, truncated data", async () => {
    const good = await readFile(path.join(dir, "f4-c.npy"));
    refuses(() => parseNpy(Buffer.from("hello world, not numpy"), "x.npy"), "x.npy", /not a NumPy \.npy array/, /numpy\.save/);
    refuses(() => parseNpy(good.subarray(0, 40), "head.npy"), "head.npy", /cut short: its \.npy header says it takes 128 bytes but the file has only 40/);
    refuses(() => parseNpy(good.subarray(0, 6), "tiny.npy"), "tiny.npy", /cut short: it has only 6 bytes/);
    refuses(() => parseNpy(good.subarray(0, good.length - 4), "body.npy"), "body.npy", /cut short: shape \(2, 3, 4\) of float32 needs 96 bytes of data but the file has 92/);
    const damaged = Buffer.from(good);
    damaged.write("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x, 4), }", 10, "latin1");
    refuses(() => parseNpy(damaged, "bad-shape.npy"), "bad-shape.npy", /damaged \.npy header \(shape/);
  });
});

describe(".npz", () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-npz-"));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  for (const file of ["two-inputs.npz", "two-inputs-compressed.npz"]) {
    test(`${file} (numpy.savez${file.includes("compressed") ? "_compressed" : ""}, ZIP64 entries): headers alone, then whole arrays`, async () => {
      const f = path.join(dir, file);
      await withNpz(f, async (members, zip) => {
        const keys = members.map((m) => m.key).sort();
        assert.deepEqual(keys, file.includes("compressed") ? ["image", "scale"] : ["image", "label", "scale"]);
        const image = members.find((m) => m.key === "image")!;
        const h = await readMemberHeader(zip, image, f);
        assert.deepEqual(h.shape, [1, 2, 3, 4]);
        const arr = await readMember(zip, image, f);
        assert.deepEqual(Array.from(arr.data as Float32Array), a);
      });
    });
  }

  test("a damaged member is caught by its checksum", async () => {
    const z = npz({ x: npy("<f4", [4], [1, 2, 3, 4]) });
    z[z.indexOf(Buffer.from([0, 0, 0x80, 0x3f])) + 2] ^= 0xff; // flips bits inside the first float
    const f = path.join(tmp, "damaged.npz");
    await writeFile(f, z);
    await withNpz(f, async (members, zip) => {
      await assert.rejects(readMember(zip, members[0], f), (e: Error) => e instanceof DataError && e.message.includes(f) && /checksum does not match/.test(e.message));
    });
  });

  test("a file that is no archive", async () => {
    const f = path.join(tmp, "not-a-zip.npz");
    await writeFile(f, "plain text");
    await assert.rejects(withNpz(f, async () => null), (e: Error) => e instanceof DataError && e.message.includes(f) && /not a readable \.npz archive/.test(e.message) && /numpy\.savez/.test(e.message));
  });
});
