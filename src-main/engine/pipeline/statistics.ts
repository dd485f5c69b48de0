// What calibration hands to the planner: per-sample statistics averaged over the calibration images
// (ALGORITHMS.md §6, the reference's static mode), per channel where the tensor has spatial extent.

export interface Moments {
  min: number;
  max: number;
  mean: number;
  /** mean absolute deviation about the mean: the Laplace scale b */
  mad: number;
  /** unbiased standard deviation */
  std: number;
}

export interface ChannelMoments {
  min: Float64Array;
  max: Float64Array;
  mean: Float64Array;
  mad: Float64Array;
  std: Float64Array;
}

export interface HistogramSummary {
  bins: number;
  channels: number;
  /** channel c's bins cover [−limit[c], limit[c]] evenly */
  limit: Float64Array;
  /** counts[c * bins + k], one histogram per channel (a single one for per-tensor tensors) */
  counts: Float64Array;
}

export interface TensorStatistics {
  tensor: string;
  /** shape of one sample, without the batch dimension */
  sampleShape: number[];
  samples: number;
  /** set when the tensor is [N, C, H, W] with H·W > 1 */
  perChannel: ChannelMoments | null;
  perTensor: Moments;
  /** extremes over every calibration image, for the classifier's 8-bit quantizer */
  globalMin: number;
  globalMax: number;
  histogram: HistogramSummary | null;
}

export function channelCount(s: TensorStatistics): number {
  return s.perChannel ? s.perChannel.mean.length : 1;
}
