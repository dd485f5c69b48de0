// The authors' code on our checkpoints, column "(b) static" of ../shared/docs/REFERENCE-RUN.md
// (static statistics from 512 training images, first conv and classifier at 8 bits), top-1 / top-5.
// Rows absent from that document are absent here and print as "—".

export interface Ref {
  top1: number;
  top5: number | null;
}

/** keys: "<W>W<A>A <methods>" with methods as in the bench ("none", "aciq", "aciq+bitalloc-a", "all", ...) */
export const REFERENCE_B_STATIC: Record<string, { fp32: Ref; rows: Record<string, Ref> }> = {
  resnet20: {
    fp32: { top1: 91.73, top5: 99.66 },
    rows: {
      "8W4A none": { top1: 89.57, top5: 99.57 },
      "8W4A aciq": { top1: 91.16, top5: 99.64 },
      "8W4A bitalloc-a": { top1: 89.93, top5: 99.62 },
      "8W4A aciq+bitalloc-a": { top1: 91.24, top5: 99.67 },
      "4W8A none": { top1: 88.73, top5: 99.7 },
      "4W8A biascorr": { top1: 89.25, top5: 99.59 },
      "4W8A bitalloc-w": { top1: 88.59, top5: 99.67 },
      "4W8A biascorr+bitalloc-w": { top1: 89.25, top5: 99.62 },
      "4W4A none": { top1: 88.56, top5: 99.61 },
      "4W4A all": { top1: 90.69, top5: 99.6 },
      "3W3A none": { top1: 77.0, top5: 98.44 },
      "3W3A all": { top1: 86.06, top5: 99.34 },
    },
  },
  resnet32: {
    fp32: { top1: 92.63, top5: null },
    rows: {
      "4W4A none": { top1: 88.72, top5: null },
      "4W4A all": { top1: 91.78, top5: null },
    },
  },
  resnet44: {
    fp32: { top1: 93.1, top5: null },
    rows: {
      "4W4A none": { top1: 89.31, top5: null },
      "4W4A all": { top1: 92.45, top5: null },
    },
  },
  resnet56: {
    fp32: { top1: 93.39, top5: 99.77 },
    rows: {
      "8W4A none": { top1: 91.11, top5: 99.63 },
      "8W4A aciq": { top1: 93.06, top5: 99.77 },
      "8W4A bitalloc-a": { top1: 91.09, top5: 99.69 },
      "8W4A aciq+bitalloc-a": { top1: 93.19, top5: 99.75 },
      "4W8A none": { top1: 90.16, top5: 99.55 },
      "4W8A biascorr": { top1: 90.83, top5: 99.61 },
      "4W8A bitalloc-w": { top1: 90.87, top5: 99.52 },
      "4W8A biascorr+bitalloc-w": { top1: 91.17, top5: 99.62 },
      "4W4A none": { top1: 90.12, top5: 99.56 },
      "4W4A all": { top1: 92.98, top5: 99.7 },
      "3W3A none": { top1: 84.85, top5: 98.9 },
      "3W3A all": { top1: 90.67, top5: 99.6 },
    },
  },
};

/** Published top-1 / top-5 of the checkpoints (../shared/fixtures/README.md). */
export const PUBLISHED_FP32: Record<string, Ref> = {
  resnet20: { top1: 91.73, top5: 99.66 },
  resnet32: { top1: 92.63, top5: 99.78 },
  resnet44: { top1: 93.1, top5: 99.81 },
  resnet56: { top1: 93.39, top5: 99.77 },
};
