// Resource limits for untrusted image files. A user's folder may hold anything, including files that
// declare enormous dimensions to exhaust memory on decode; these limits turn those into skips.

/** Largest accepted image, in pixels (width x height), checked from the header before decoding. */
export const MAX_PIXELS = 100_000_000;

/** Largest accepted file; bigger ones are skipped before being read into memory. */
export const MAX_FILE_BYTES = 512 * 1024 * 1024;

export function pixelLimitReason(maxPixels: number): string {
  return `image is larger than ${maxPixels / 1e6} megapixels; refused as a possible decompression bomb`;
}
