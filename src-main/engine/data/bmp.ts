// A small BMP decoder. The prebuilt libvips inside sharp has no BMP loader (sharp.format.magick.input is
// all false), and BMP folders are common in older classification datasets, so we decode the simple
// variants ourselves and hand sharp raw RGB pixels. Layout per Microsoft's BITMAPFILEHEADER /
// BITMAPINFOHEADER documentation: 14-byte file header, then an info header whose first field is its size.
import { pixelLimitReason } from "./limits.ts";

export interface RgbImage {
  width: number;
  height: number;
  /** interleaved RGB, 3 bytes per pixel, top row first */
  data: Buffer;
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

export function isBmp(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x42 && buf[1] === 0x4d; // "BM"
}

/**
 * Decodes uncompressed BMPs: 1/4/8-bit palette, 16/24/32-bit (with or without BI_BITFIELDS masks),
 * bottom-up or top-down, OS/2 core headers and Windows 40/52/56/108/124-byte headers. Alpha is dropped,
 * as for every other format (see preprocess.ts). Throws an Error whose message is a skip reason.
 */
export function decodeBmp(buf: Uint8Array, maxPixels: number): RgbImage {
  if (buf.length < 26) throw new Error("truncated BMP: header incomplete");
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dataOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);

  let width: number;
  let rawHeight: number;
  let bpp: number;
  let compression = BI_RGB;
  let colorsUsed = 0;
  let paletteEntrySize = 4;
  if (headerSize === 12) {
    // OS/2 BITMAPCOREHEADER: 16-bit dimensions, 3-byte palette entries.
    width = view.getUint16(18, true);
    rawHeight = view.getUint16(20, true);
    bpp = view.getUint16(24, true);
    paletteEntrySize = 3;
  } else if (headerSize >= 40 && buf.length >= 14 + 40) {
    width = view.getInt32(18, true);
    rawHeight = view.getInt32(22, true);
    bpp = view.getUint16(28, true);
    compression = view.getUint32(30, true);
    colorsUsed = view.getUint32(46, true);
  } else {
    throw new Error(`unsupported or truncated BMP header (${headerSize} bytes)`);
  }

  // A negative height marks a top-down bitmap; the usual positive height stores the bottom row first.
  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  if (width <= 0 || height === 0) throw new Error(`invalid BMP dimensions ${width}x${rawHeight}`);
  if (width * height > maxPixels) throw new Error(pixelLimitReason(maxPixels));
  if (compression !== BI_RGB && compression !== BI_BITFIELDS && compression !== BI_ALPHABITFIELDS) {
    const kind = compression === 1 || compression === 2 ? "RLE-compressed" : `compression type ${compression}`;
    throw new Error(`${kind} BMP is not supported; re-save it as PNG or uncompressed BMP`);
  }
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) throw new Error(`unsupported BMP bit depth ${bpp}`);

  const rowSize = Math.floor((bpp * width + 31) / 32) * 4; // rows are padded to 4 bytes
  if (dataOffset + rowSize * height > buf.length) throw new Error("truncated BMP: pixel data incomplete");

  const out = Buffer.alloc(width * height * 3);
  if (bpp <= 8) {
    const paletteOffset = 14 + headerSize;
    const entries = Math.min(colorsUsed || 1 << bpp, Math.floor((dataOffset - paletteOffset) / paletteEntrySize));
    const palette = new Uint8Array(256 * 3); // indices past the stored palette read as black
    for (let i = 0; i < entries; i++) {
      const p = paletteOffset + i * paletteEntrySize; // entries are stored B, G, R(, reserved)
      palette[i * 3] = buf[p + 2];
      palette[i * 3 + 1] = buf[p + 1];
      palette[i * 3 + 2] = buf[p];
    }
    const perByte = 8 / bpp;
    const mask = (1 << bpp) - 1;
    for (let y = 0; y < height; y++) {
      const row = dataOffset + (topDown ? y : height - 1 - y) * rowSize;
      for (let x = 0; x < width; x++) {
        const byte = buf[row + Math.floor(x / perByte)];
        const index = (byte >> (8 - bpp * ((x % perByte) + 1))) & mask; // leftmost pixel in the high bits
        out.set(palette.subarray(index * 3, index * 3 + 3), (y * width + x) * 3);
      }
    }
    return { width, height, data: out };
  }

  if (bpp === 24) {
    for (let y = 0; y < height; y++) {
      const row = dataOffset + (topDown ? y : height - 1 - y) * rowSize;
      for (let x = 0; x < width; x++) {
        const s = row + x * 3;
        const d = (y * width + x) * 3;
        out[d] = buf[s + 2];
        out[d + 1] = buf[s + 1];
        out[d + 2] = buf[s];
      }
    }
    return { width, height, data: out };
  }

  // 16 and 32 bits: channels defined by bit masks, explicit (BI_BITFIELDS, stored at offset 54 for
  // every Windows header size) or the defaults (x1r5g5b5 and x8r8g8b8).
  const masks =
    compression === BI_RGB
      ? bpp === 16
        ? [0x7c00, 0x03e0, 0x001f]
        : [0xff0000, 0x00ff00, 0x0000ff]
      : [view.getUint32(54, true), view.getUint32(58, true), view.getUint32(62, true)];
  const channels = masks.map(maskChannel);
  const bytes = bpp / 8;
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * rowSize;
    for (let x = 0; x < width; x++) {
      const s = row + x * bytes;
      const px = bytes === 2 ? view.getUint16(s, true) : view.getUint32(s, true);
      const d = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) out[d + c] = channels[c](px);
    }
  }
  return { width, height, data: out };
}

/** Turns a bit mask into a function extracting that field scaled to 0..255. */
function maskChannel(mask: number): (px: number) => number {
  if (mask === 0) return () => 0;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (((mask >>> (shift + bits)) & 1) === 1 && shift + bits < 32) bits++;
  const max = 2 ** bits - 1;
  return (px) => Math.round((((px & mask) >>> shift) * 255) / max);
}
