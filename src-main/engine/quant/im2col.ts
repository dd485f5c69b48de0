// The columns a 2-D convolution multiplies its weights with, one row per output position: the plain
// reference for the onnxruntime im2col of pipeline/hessian.ts, and the typed-array path it is measured against.

export interface ConvWindow {
  kernel: [number, number];
  strides: [number, number];
  /** top, left, bottom, right (ONNX order: begins then ends) */
  pads: [number, number, number, number];
  dilations: [number, number];
}

export function outputSize(size: number, k: number, stride: number, padBegin: number, padEnd: number, dilation: number): number {
  return Math.floor((size + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

/**
 * x is one image [C, H, W]; returns [Ho·Wo, C·kh·kw], column index c·kh·kw + i·kw + j as in a Conv
 * weight [OC, C, kh, kw] flattened. Positions in the padding read 0.
 */
export function im2col(x: ArrayLike<number>, channels: number, height: number, width: number, win: ConvWindow): { data: Float32Array; rows: number; cols: number } {
  const [kh, kw] = win.kernel;
  const [sh, sw] = win.strides;
  const [pt, pl, pb, pr] = win.pads;
  const [dh, dw] = win.dilations;
  const ho = outputSize(height, kh, sh, pt, pb, dh);
  const wo = outputSize(width, kw, sw, pl, pr, dw);
  const cols = channels * kh * kw;
  const data = new Float32Array(ho * wo * cols);
  for (let oy = 0; oy < ho; oy++) {
    for (let ox = 0; ox < wo; ox++) {
      const row = (oy * wo + ox) * cols;
      for (let c = 0; c < channels; c++) {
        for (let i = 0; i < kh; i++) {
          const y = oy * sh - pt + i * dh;
          if (y < 0 || y >= height) continue;
          for (let j = 0; j < kw; j++) {
            const xx = ox * sw - pl + j * dw;
            if (xx < 0 || xx >= width) continue;
            data[row + (c * kh + i) * kw + j] = x[(c * height + y) * width + xx];
          }
        }
      }
    }
  }
  return { data, rows: ho * wo, cols };
}
