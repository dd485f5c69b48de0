import type { Progress } from "../../../shared/types.ts";

export type ProgressListener = (p: Progress) => void;

/** Reports progress of one stage with a time-left estimate from the rate seen so far. */
export class StageProgress {
  private readonly started = performance.now();
  private lastEmit = 0;

  constructor(
    private readonly stage: Progress["stage"],
    private readonly total: number,
    private readonly listener: ProgressListener | undefined,
    private readonly message?: string,
  ) {
    this.emit(0, true);
  }

  /** Throttled so a fast loop does not flood a UI channel. */
  update(done: number): void {
    this.emit(done, done >= this.total);
  }

  private emit(done: number, force: boolean): void {
    if (!this.listener) return;
    const now = performance.now();
    if (!force && now - this.lastEmit < 200) return;
    this.lastEmit = now;
    const elapsed = (now - this.started) / 1000;
    const etaSeconds = done > 0 && this.total > done ? (elapsed / done) * (this.total - done) : done >= this.total ? 0 : null;
    this.listener({ stage: this.stage, done, total: this.total, etaSeconds, message: this.message });
  }
}

export class CancelledError extends Error {
  constructor() {
    super("Cancelled.");
    this.name = "CancelledError";
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}
