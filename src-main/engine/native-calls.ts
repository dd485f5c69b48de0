// Stopping an engine thread safely. Terminating a worker thread while it is inside onnxruntime-node aborts
// the whole process ("terminate called after throwing an instance of 'Napi::Error'"): the binding's calls
// are synchronous native code that throws a C++ exception nobody catches when its thread is torn down, and
// the window, the web host or the CLI would go with it. So an engine thread counts its onnxruntime calls in a
// counter it shares with the thread that started it, which terminates it only after claiming that counter
// at zero (-1 = being stopped); from then on the engine thread starts no new call. No onnxruntime import here:
// the service's thread uses this too and must never load the runtime.

export type NativeCallCounter = Int32Array<SharedArrayBuffer>;

const STOPPING = -1;

export function createNativeCallCounter(): NativeCallCounter {
  return new Int32Array(new SharedArrayBuffer(4));
}

let counter: NativeCallCounter | null = null;

/** In an engine thread: count this thread's onnxruntime calls in `shared`. */
export function countNativeCallsIn(shared: NativeCallCounter): void {
  counter = shared;
}

/** Runs one onnxruntime call; once the thread is being stopped, throws `stopped()` instead of starting it. */
export async function nativeCall<T>(call: () => Promise<T>, stopped: () => Error): Promise<T> {
  const c = counter;
  if (!c) return call();
  for (;;) {
    const n = Atomics.load(c, 0);
    if (n === STOPPING) throw stopped();
    if (Atomics.compareExchange(c, 0, n, n + 1) === n) break;
  }
  try {
    return await call();
  } finally {
    Atomics.sub(c, 0, 1);
  }
}

/** From the thread that owns the worker: true once the worker is outside onnxruntime and can no longer enter it. */
export function claimForTermination(shared: NativeCallCounter): boolean {
  const n = Atomics.compareExchange(shared, 0, 0, STOPPING);
  return n === 0 || n === STOPPING;
}
