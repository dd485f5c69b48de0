// Progress of a job made of several passes over the same images (one per preprocessing setting, one per
// method combination), as one stage: done counts images over all passes, and the time left comes from the
// pace so far, so it is known after the first batch instead of "estimating" until the end.
import type { Progress } from "../../shared/types.ts";
import type { ProgressListener } from "../engine/pipeline/progress.ts";

export class PassProgress {
  readonly #started = performance.now();
  /** when the second pass began: the first may cost more (an ablation's first pass also runs FP32) */
  #secondPass: number | null = null;
  #lastEmit = 0;

  constructor(
    private readonly stage: Progress["stage"],
    private readonly passes: number,
    private readonly perPass: number,
    private readonly listener: ProgressListener | undefined,
  ) {}

  /** `done` images of pass number `pass` (from 0); throttled except at the ends of a pass. */
  update(pass: number, done: number, message: string): void {
    if (!this.listener) return;
    const now = performance.now();
    if (pass >= 1 && this.#secondPass === null) this.#secondPass = now;
    const edge = done === 0 || done >= this.perPass;
    if (!edge && now - this.#lastEmit < 250) return;
    this.#lastEmit = now;
    const total = this.passes * this.perPass;
    const units = pass * this.perPass + done;
    this.listener({ stage: this.stage, done: units, total, etaSeconds: this.#eta(now, units, total), message });
  }

  #eta(now: number, units: number, total: number): number | null {
    if (units >= total) return 0;
    const later = this.#secondPass === null ? 0 : units - this.perPass;
    if (this.#secondPass !== null && later > 0) return ((now - this.#secondPass) / 1000 / later) * (total - units);
    return units > 0 ? ((now - this.#started) / 1000 / units) * (total - units) : null;
  }
}
