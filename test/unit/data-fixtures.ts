// Helpers shared by the data-layer tests: temp folders and generated images with known pixels.
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const fixtures = path.resolve(repoRoot, "../shared/fixtures");

/** A fresh temp folder, removed when the test (or suite) context ends. */
export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "nibble-data-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `content` at dir/rel, creating parent folders. */
export async function put(dir: string, rel: string, content: Buffer | string): Promise<string> {
  const file = path.join(dir, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

/** Raw interleaved 8-bit pixels from a per-pixel function. */
export function rawImage(width: number, height: number, channels: number, fn: (x: number, y: number, c: number) => number): Buffer {
  const buf = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) buf[(y * width + x) * channels + c] = fn(x, y, c);
  return buf;
}

export function png(width: number, height: number, channels: 1 | 2 | 3 | 4, fn: (x: number, y: number, c: number) => number): Promise<Buffer> {
  return sharp(rawImage(width, height, channels, fn), { raw: { width, height, channels } }).png().toBuffer();
}

export function solidPng(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return png(width, height, 3, (_x, _y, c) => rgb[c]);
}

/**
 * A minimal BMP encoder for tests: 24/32-bit BI_RGB, 16-bit BI_BITFIELDS (565), or 1/4/8-bit palette.
 * `topDown` writes a negative height. Pixels come as RGB; palette images take indices via `index`.
 */
export function bmp(opts: {
  width: number;
  height: number;
  bpp: 1 | 4 | 8 | 16 | 24 | 32;
  topDown?: boolean;
  rgb?: (x: number, y: number) => [number, number, number];
  palette?: [number, number, number][];
  index?: (x: number, y: number) => number;
}): Buffer {
  const { width, height, bpp } = opts;
  const rowSize = Math.floor((bpp * width + 31) / 32) * 4;
  const masks = bpp === 16 ? 12 : 0;
  const paletteBytes = bpp <= 8 ? (opts.palette?.length ?? 0) * 4 : 0;
  const offset = 14 + 40 + masks + paletteBytes;
  const buf = Buffer.alloc(offset + rowSize * height);
  buf.write("BM", 0, "latin1");
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(opts.topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  buf.writeUInt32LE(bpp === 16 ? 3 : 0, 30);
  buf.writeUInt32LE(bpp <= 8 ? (opts.palette?.length ?? 0) : 0, 46);
  if (bpp === 16) {
    buf.writeUInt32LE(0xf800, 54);
    buf.writeUInt32LE(0x07e0, 58);
    buf.writeUInt32LE(0x001f, 62);
  }
  opts.palette?.forEach(([r, g, b], i) => buf.set([b, g, r, 0], 54 + i * 4));
  for (let y = 0; y < height; y++) {
    const row = offset + (opts.topDown ? y : height - 1 - y) * rowSize;
    for (let x = 0; x < width; x++) {
      if (bpp <= 8) {
        const i = opts.index!(x, y);
        const bit = x * bpp;
        buf[row + (bit >> 3)] |= i << (8 - bpp - (bit & 7));
      } else {
        const [r, g, b] = opts.rgb!(x, y);
        if (bpp === 16) buf.writeUInt16LE(((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3), row + x * 2);
        else buf.set(bpp === 24 ? [b, g, r] : [b, g, r, 0], row + (x * bpp) / 8);
      }
    }
  }
  return buf;
}
