// Deadlines in tests without betting on how busy the machine is.
//
// A probe is a timer started right after the code under test started its own deadline timer. Timers of
// one thread fire in the order they were started, so an event the code emits at its deadline (its timer
// callback plus promise reactions) arrives before the probe fires however loaded the machine: `fired()`
// still false is an exact check of "no later than the deadline". Across processes that order does not
// hold; there `lateMs()` says how late this thread's timers run right now, the part of a wall-clock
// measurement that belongs to the machine rather than to the code.
export interface Probe {
  /** the probe's timer has run */
  fired(): boolean;
  /** how much later than asked the probe's timer ran; 0 while it has not */
  lateMs(): number;
  stop(): void;
}

export function startProbe(ms: number): Probe {
  const started = performance.now();
  let late = -1;
  const timer = setTimeout(() => (late = Math.max(0, performance.now() - started - ms)), ms);
  return {
    fired: () => late >= 0,
    lateMs: () => Math.max(0, late),
    stop: () => clearTimeout(timer),
  };
}
