import assert from "node:assert/strict";
import { test } from "node:test";
import zlib from "node:zlib";
import sharp from "sharp";
import type { Layout, PreprocessConfig } from "../../shared/types.ts";
import { DataError } from "../../src-main/engine/data/errors.ts";
import {
  loadPixels,
  normalisationTables,
  planGeometry,
  resolvePreprocess,
  writeTensor,
  type TensorSpec,
} from "../../src-main/engine/data/preprocess.ts";
import { bmp, png, put, solidPng, tempDir } from "./data-fixtures.ts";

const f = Math.fround;

async function tensorOf(file: string, preprocess: PreprocessConfig, spec: Partial<TensorSpec> = {}): Promise<Float32Array> {
  const s: TensorSpec = { layout: "NCHW", channels: 3, height: 2, width: 2, ...spec };
  const px = await loadPixels(file, preprocess, s);
  const norm = resolvePreprocess(preprocess);
  const out = new Float32Array(s.channels * s.height * s.width);
  writeTensor(px, normalisationTables(norm, s.channels), norm.bgr, s.layout, out, 0);
  return out;
}

/** Raw 0..255 pixels as the model sees them, NCHW. */
const raw = (file: string, spec: Partial<TensorSpec> = {}) => tensorOf(file, { preset: "raw255" }, spec);

test("presets resolve to the documented arithmetic", () => {
  assert.deepEqual(resolvePreprocess({ preset: "imagenet" }), { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false, fourth: "alpha" });
  assert.deepEqual(resolvePreprocess({ preset: "caffe" }), { scale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1], bgr: true, fourth: "alpha" });
  assert.deepEqual(resolvePreprocess({ preset: "custom", mean: [1, 2, 3], std: [4, 5, 6], scale: 0.5, channelOrder: "BGR" }), {
    scale: 0.5, mean: [1, 2, 3], std: [4, 5, 6], bgr: true, fourth: "alpha",
  });
  // custom defaults are the identity; custom-only fields are ignored by named presets
  assert.deepEqual(resolvePreprocess({ preset: "custom" }), resolvePreprocess({ preset: "raw255" }));
  assert.deepEqual(resolvePreprocess({ preset: "raw01", mean: [9, 9, 9] }).mean, [0, 0, 0]);
  assert.throws(() => resolvePreprocess({ preset: "custom", std: [1, 0, 1] }), DataError);
  assert.throws(() => resolvePreprocess({ preset: "custom", scale: 0 }), DataError);
});

test("each preset gives exact tensor values for known pixels", async (t) => {
  const dir = await tempDir(t);
  // 2x2: (10,20,30) (0,0,0) / (255,255,255) (128,64,1)
  const pixels = [[10, 20, 30], [0, 0, 0], [255, 255, 255], [128, 64, 1]];
  const file = await put(dir, "a.png", await png(2, 2, 3, (x, y, c) => pixels[y * 2 + x][c]));
  const plane = (c: number) => pixels.map((p) => p[c]);

  assert.deepEqual([...(await raw(file))], [...plane(0), ...plane(1), ...plane(2)]);
  assert.deepEqual([...(await tensorOf(file, { preset: "raw01" }))], [0, 1, 2].flatMap((c) => plane(c).map((v) => f(v / 255))));
  assert.deepEqual([...(await tensorOf(file, { preset: "inception" }))], [0, 1, 2].flatMap((c) => plane(c).map((v) => f(f(v / 127.5) - 1))));
  const inc = await tensorOf(file, { preset: "inception" });
  assert.equal(inc[1], -1);
  assert.equal(inc[2], 1);

  // imagenet: torch's float32 ToTensor + Normalize, step by step
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const imagenet = await tensorOf(file, { preset: "imagenet" });
  assert.deepEqual([...imagenet], [0, 1, 2].flatMap((c) => plane(c).map((v) => f(f(f(v / 255) - f(mean[c])) / f(std[c])))));
  assert.ok(Math.abs(imagenet[1] - -0.485 / 0.229) < 1e-6); // pixel 0, red
  assert.ok(Math.abs(imagenet[4 + 2] - (1 - 0.456) / 0.224) < 1e-6); // pixel 255, green

  // caffe: channel 0 is blue, minus the BGR means, no scaling
  const caffe = await tensorOf(file, { preset: "caffe" });
  assert.ok(Math.abs(caffe[0] - (30 - 103.939)) < 1e-4);
  assert.ok(Math.abs(caffe[4] - (20 - 116.779)) < 1e-4);
  assert.ok(Math.abs(caffe[8] - (10 - 123.68)) < 1e-4);
  assert.ok(Math.abs(caffe[3] - (1 - 103.939)) < 1e-4);

  const custom = await tensorOf(file, { preset: "custom", scale: 2, mean: [1, 2, 3], std: [2, 4, 8], channelOrder: "BGR" });
  assert.equal(custom[0], (30 * 2 - 1) / 2);
  assert.equal(custom[4], (20 * 2 - 2) / 4);
  assert.equal(custom[8], (10 * 2 - 3) / 8);
});

test("NHWC holds the same values as NCHW, interleaved", async (t) => {
  const dir = await tempDir(t);
  const file = await put(dir, "a.png", await png(3, 2, 3, (x, y, c) => 40 * x + 10 * y + c));
  const spec = { height: 2, width: 3 };
  const nchw = await tensorOf(file, { preset: "imagenet" }, { ...spec, layout: "NCHW" });
  const nhwc = await tensorOf(file, { preset: "imagenet" }, { ...spec, layout: "NHWC" });
  for (let c = 0; c < 3; c++) for (let i = 0; i < 6; i++) assert.equal(nhwc[i * 3 + c], nchw[c * 6 + i]);
});

test("writeTensor writes image `index` at its offset in a batch buffer", async (t) => {
  const dir = await tempDir(t);
  const file = await put(dir, "a.png", await solidPng(2, 2, [1, 2, 3]));
  const spec: TensorSpec = { layout: "NHWC", channels: 3, height: 2, width: 2 };
  const out = new Float32Array(3 * 12).fill(-7);
  const norm = resolvePreprocess({ preset: "raw255" });
  writeTensor(await loadPixels(file, { preset: "raw255" }, spec), normalisationTables(norm, 3), false, "NHWC", out, 1);
  assert.deepEqual([...out.subarray(0, 12)], new Array(12).fill(-7));
  assert.deepEqual([...out.subarray(12, 24)], [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
  assert.deepEqual([...out.subarray(24)], new Array(12).fill(-7));
});

test("planGeometry follows torchvision Resize + CenterCrop", () => {
  const spec = (h: number, w = h): TensorSpec => ({ layout: "NCHW", channels: 3, height: h, width: w });
  // shorter side to 256, longer truncated (500*256/375 = 341.33), crop margin 117 -> 58 (half to even)
  assert.deepEqual(planGeometry(500, 375, { preset: "imagenet", resize: 256, crop: 224 }, spec(224)), { resizeWidth: 341, resizeHeight: 256, left: 58, top: 16 });
  assert.deepEqual(planGeometry(375, 500, { preset: "imagenet", resize: 256 }, spec(224)), { resizeWidth: 256, resizeHeight: 341, left: 16, top: 58 });
  assert.deepEqual(planGeometry(43, 20, { preset: "raw255", resize: 20 }, spec(16)).left, 14); // 13.5 -> 14
  assert.deepEqual(planGeometry(41, 20, { preset: "raw255", resize: 20 }, spec(16)).left, 12); // 12.5 -> 12
  // no resize/crop: stretch to the model input
  assert.deepEqual(planGeometry(640, 480, { preset: "imagenet" }, spec(32)), { resizeWidth: 32, resizeHeight: 32, left: 0, top: 0 });
  // crop alone: centre crop of the original, zero padding when it is smaller
  assert.deepEqual(planGeometry(20, 21, { preset: "raw255", crop: 32 }, spec(32)), { resizeWidth: 20, resizeHeight: 21, left: -6, top: -5 });
  // crop defaults to the (possibly non-square) model input
  assert.deepEqual(planGeometry(300, 300, { preset: "raw255", resize: 256 }, spec(200, 100)), { resizeWidth: 256, resizeHeight: 256, left: 78, top: 28 });
  assert.throws(() => planGeometry(300, 300, { preset: "raw255", resize: 256, crop: 224 }, spec(32)), /does not match the model input/);
  assert.throws(() => planGeometry(300, 300, { preset: "raw255", resize: 25.5 }, spec(16)), DataError);
  assert.throws(() => planGeometry(300, 300, { preset: "raw255" }, { ...spec(16), channels: 5 }), /5-channel images; images feed 1 \(grayscale\), 3 \(colour\) or 4 \(colour plus alpha\).*\.npy or \.npz/);
});

test("centre crop picks the right pixels; padding is pixel value 0", async (t) => {
  const dir = await tempDir(t);
  // R = x, G = y: every pixel names its own position
  const file = await put(dir, "a.png", await png(41, 20, 3, (x, y, c) => [x, y, 7][c]));
  const cropped = await tensorOf(file, { preset: "raw255", resize: 20, crop: 16 }, { height: 16, width: 16 });
  assert.equal(cropped[0], 12); // x of the top-left crop pixel
  assert.equal(cropped[256], 2); // y of the top-left crop pixel
  assert.equal(cropped[255], 12 + 15);
  assert.equal(cropped[256 + 255], 2 + 15);

  const small = await put(dir, "small.png", await solidPng(4, 4, [50, 60, 70]));
  const padded = await tensorOf(small, { preset: "raw255", crop: 8 }, { height: 8, width: 8 });
  assert.equal(padded[0], 0);
  assert.equal(padded[2 * 8 + 2], 50);
  assert.equal(padded[5 * 8 + 5], 50);
  assert.equal(padded[6 * 8 + 6], 0);
});

test("resize with no crop settings stretches to the model input, shorter side rule with resize", async (t) => {
  const dir = await tempDir(t);
  // left half red, right half blue, 64x32
  const file = await put(dir, "a.png", await png(64, 32, 3, (x, _y, c) => (x < 32 ? [255, 0, 0] : [0, 0, 255])[c]));
  const stretched = await raw(file, { height: 16, width: 16 });
  assert.equal(stretched[0], 255); // red at the far left
  assert.equal(stretched[15], 0);
  assert.equal(stretched[2 * 256 + 15], 255); // blue at the far right
  // resize 16 -> 32x16, centre crop 16x16 straddles the boundary at column 8
  const cropped = await tensorOf(file, { preset: "raw255", resize: 16 }, { height: 16, width: 16 });
  assert.equal(cropped[0], 255);
  assert.equal(cropped[15], 0);
  assert.equal(cropped[2 * 256 + 15], 255);
});

test("grayscale, gray+alpha, palette, RGBA, 16-bit, TIFF, WebP, GIF first frame, CMYK decode to RGB", async (t) => {
  const dir = await tempDir(t);
  const gray = await put(dir, "g.png", await png(2, 2, 1, () => 77));
  assert.deepEqual([...(await raw(gray))], new Array(12).fill(77));
  const grayAlpha = await put(dir, "ga.png", await png(2, 2, 2, (_x, _y, c) => [77, 0][c]));
  assert.deepEqual([...(await raw(grayAlpha))], new Array(12).fill(77));

  // palette PNG of two exact colours
  const twoColours = await sharp(await png(2, 2, 3, (x, _y, c) => (x === 0 ? [200, 10, 10] : [10, 10, 200])[c])).png({ palette: true, colours: 2, dither: 0 }).toBuffer();
  assert.equal((await sharp(twoColours).metadata()).isPalette, true);
  const pal = await put(dir, "p.png", twoColours);
  assert.deepEqual([...(await raw(pal))], [200, 10, 200, 10, 10, 10, 10, 10, 10, 200, 10, 200]);

  // RGBA: alpha is dropped (PIL convert("RGB")), colours kept even where fully transparent
  const rgba = await put(dir, "rgba.png", await png(2, 2, 4, (_x, _y, c) => [200, 100, 50, 0][c]));
  assert.deepEqual([...(await raw(rgba))], [200, 200, 200, 200, 100, 100, 100, 100, 50, 50, 50, 50]);

  const src = await png(2, 2, 3, (x, y, c) => 60 * x + 30 * y + 5 * c);
  const expected = [...(await raw(await put(dir, "src.png", src)))];
  const deep = await put(dir, "deep.png", await sharp(src).toColourspace("rgb16").png().toBuffer());
  assert.equal((await sharp(deep).metadata()).depth, "ushort");
  assert.deepEqual([...(await raw(deep))], expected);
  assert.deepEqual([...(await raw(await put(dir, "t.TIFF", await sharp(src).tiff({ compression: "lzw" }).toBuffer())))], expected);
  assert.deepEqual([...(await raw(await put(dir, "w.webp", await sharp(src).webp({ lossless: true }).toBuffer())))], expected);

  // two-frame GIF: white then black; the first frame counts
  const frames = Buffer.concat([Buffer.alloc(2 * 2 * 4, 255), Buffer.from(new Uint8Array(16).map((_, i) => (i % 4 === 3 ? 255 : 0)))]);
  const gif = await sharp(frames, { raw: { width: 2, height: 4, channels: 4, pageHeight: 2 } }).gif().toBuffer();
  assert.equal((await sharp(gif, { animated: true }).metadata()).pages, 2);
  assert.deepEqual([...(await raw(await put(dir, "anim.gif", gif)))], new Array(12).fill(255));

  // CMYK JPEG converted back to sRGB: three channels, near the original colour (the CMYK round trip
  // through sharp's default profile is not exact, so only a tolerance can be asserted)
  const cmyk = await sharp(await solidPng(8, 8, [150, 120, 100])).toColourspace("cmyk").jpeg({ quality: 100 }).toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, "cmyk");
  const back = await raw(await put(dir, "c.jpg", cmyk));
  for (const [i, v] of [[0, 150], [4, 120], [8, 100]]) assert.ok(Math.abs(back[i] - v) < 15, `channel ${i / 4}: ${back[i]} vs ${v}`);
});

test("one-channel models get PIL's ITU-R 601 luminance", async (t) => {
  const dir = await tempDir(t);
  const file = await put(dir, "a.png", await png(2, 1, 3, (x, _y, c) => (x === 0 ? [255, 0, 0] : [10, 200, 30])[c]));
  const out = await raw(file, { channels: 1, height: 1, width: 2 });
  assert.deepEqual([...out], [(19595 * 255 + 0x8000) >> 16, (19595 * 10 + 38470 * 200 + 7471 * 30 + 0x8000) >> 16]);
  // gray sources keep their exact value; one-channel normalisation uses the first mean/std
  const gray = await put(dir, "g.png", await png(1, 1, 1, () => 77));
  assert.deepEqual([...(await raw(gray, { channels: 1, height: 1, width: 1 }))], [77]);
  const norm = await tensorOf(gray, { preset: "imagenet" }, { channels: 1, height: 1, width: 1 });
  assert.equal(norm[0], f(f(f(77 / 255) - f(0.485)) / f(0.229)));
});

test("BMP: 24-bit, 32-bit top-down, 16-bit bitfields, 8/4/1-bit palettes", async (t) => {
  const dir = await tempDir(t);
  const rgb = (x: number, y: number): [number, number, number] => [40 * x + 8, 100 * y + 16, 200 - 24 * x];
  const spec = { height: 2, width: 3 };
  const expected = [...(await raw(await put(dir, "ref.png", await png(3, 2, 3, (x, y, c) => rgb(x, y)[c])), spec))];
  assert.deepEqual([...(await raw(await put(dir, "a24.bmp", bmp({ width: 3, height: 2, bpp: 24, rgb })), spec))], expected);
  assert.deepEqual([...(await raw(await put(dir, "a32.BMP", bmp({ width: 3, height: 2, bpp: 32, rgb, topDown: true })), spec))], expected);
  // 565 keeps 5/6/5 bits, rescaled to 0..255
  const b16 = await raw(await put(dir, "a16.bmp", bmp({ width: 3, height: 2, bpp: 16, rgb })), spec);
  for (let i = 0; i < 18; i++) assert.ok(Math.abs(b16[i] - expected[i]) <= 8, `value ${i}: ${b16[i]} vs ${expected[i]}`);

  const palette: [number, number, number][] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]];
  const index = (x: number, y: number) => (x + y) % 4;
  const expectPal = [0, 1, 2].flatMap((c) => [0, 1, 2, 3, 4, 5].map((i) => palette[index(i % 3, Math.floor(i / 3))][c]));
  for (const bpp of [8, 4] as const) {
    assert.deepEqual([...(await raw(await put(dir, `p${bpp}.bmp`, bmp({ width: 3, height: 2, bpp, palette, index })), spec))], expectPal, `${bpp}-bit`);
  }
  const mono = bmp({ width: 9, height: 1, bpp: 1, palette: [[0, 0, 0], [255, 255, 255]], index: (x) => x % 2 });
  const monoOut = await raw(await put(dir, "m.bmp", mono), { height: 1, width: 9 });
  assert.deepEqual([...monoOut.subarray(0, 9)], [0, 255, 0, 255, 0, 255, 0, 255, 0]);
});

test("broken files are rejected with readable reasons", async (t) => {
  const dir = await tempDir(t);
  const good = await solidPng(64, 64, [1, 2, 3]);
  const goodJpeg = await sharp({ create: { width: 300, height: 200, channels: 3, background: "red" } }).jpeg().toBuffer();

  // A valid PNG header claiming 100000 x 100000 pixels (CRC fixed, so only the size is wrong).
  const bomb = Buffer.from(good);
  bomb.writeUInt32BE(100_000, 16);
  bomb.writeUInt32BE(100_000, 20);
  bomb.writeUInt32BE(zlib.crc32(bomb.subarray(12, 29)), 29);
  const bmpBomb = bmp({ width: 2, height: 2, bpp: 24, rgb: () => [0, 0, 0] });
  bmpBomb.writeInt32LE(100_000, 18);
  bmpBomb.writeInt32LE(100_000, 22);
  const rle = bmp({ width: 2, height: 2, bpp: 8, palette: [[0, 0, 0]], index: () => 0 });
  rle.writeUInt32LE(1, 30);

  const cases: [string, Buffer, RegExp][] = [
    ["empty.png", Buffer.alloc(0), /empty \(0 bytes\)/],
    ["trunc.png", good.subarray(0, good.length - 30), /cannot be decoded/],
    ["trunc.jpg", goodJpeg.subarray(0, goodJpeg.length >> 1), /cannot be decoded.*(premature|end)/i],
    ["text.jpg", Buffer.from("this is not a JPEG\n"), /not an image in a supported format/],
    ["bomb.png", bomb, /larger than 100 megapixels.*decompression bomb/],
    ["bomb.bmp", bmpBomb, /larger than 100 megapixels/],
    ["rle.bmp", rle, /RLE-compressed BMP is not supported/],
    ["short.bmp", Buffer.from("BM1234"), /truncated BMP/],
  ];
  const spec: TensorSpec = { layout: "NCHW" as Layout, channels: 3, height: 32, width: 32 };
  for (const [name, content, reason] of cases) {
    const file = await put(dir, name, content);
    const started = performance.now();
    await assert.rejects(loadPixels(file, { preset: "imagenet", resize: 32 }, spec), (e: Error) => {
      assert.match(e.message, reason, name);
      assert.ok(!(e instanceof DataError), `${name} is a skip, not a settings error`);
      return true;
    });
    assert.ok(performance.now() - started < 2000, `${name} rejected quickly`);
  }
  await assert.rejects(loadPixels(`${dir}/missing.png`, { preset: "imagenet" }, spec), /cannot be opened \(ENOENT\)/);
});
