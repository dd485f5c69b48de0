// libvips keeps one error buffer for the whole process, and sharp copies it when a call fails and clears
// it when any call ends. With several images in flight (in this thread or in other engine threads), a
// failing decode can therefore read another file's message, several files' messages, or nothing at all.
// The only message that is certainly a file's own is the one from a decode with no other libvips call in
// flight anywhere in the process. This gate provides that: every libvips call is counted (`inLibvips`),
// and `aloneInLibvips` waits until no call is in flight, keeps new ones waiting, and runs by itself.
//
// The counts live in shared memory so that all engine threads of a process see them. The thread that
// starts an engine thread reserves a slot for it (`reserveLibvipsSlot`) and frees it once the thread has
// exited (`releaseLibvipsSlot`), so a thread terminated mid-decode (cancel, out of memory) leaves no
// count or exclusive claim behind that would make the others wait for ever.

export interface LibvipsSlot {
  table: Int32Array<SharedArrayBuffer>;
  slot: number;
}

const SLOTS = 256;
/** slot + 1 of the thread running alone, 0 when none */
const ALONE = 0;
/** bumped whenever a count drops, so a waiter can sleep until one does */
const CHANGES = 1;
const CLAIMED = 2;
const COUNT = CLAIMED + SLOTS;

let mine: LibvipsSlot | null = null;

/** This thread's slot: the one joined, or slot 0 of a table of its own (the process's first thread). */
function own(): LibvipsSlot {
  if (!mine) {
    const table = new Int32Array(new SharedArrayBuffer((COUNT + SLOTS) * 4));
    table[CLAIMED] = 1;
    mine = { table, slot: 0 };
  }
  return mine;
}

/** For a thread about to be started: a slot in this thread's table, or null when all are taken. */
export function reserveLibvipsSlot(): LibvipsSlot | null {
  const { table } = own();
  for (let slot = 1; slot < SLOTS; slot++) {
    if (Atomics.compareExchange(table, CLAIMED + slot, 0, 1) === 0) return { table, slot };
  }
  return null;
}

/** Once the thread given `s` has exited: drops whatever it left counted or claimed, and frees the slot. */
export function releaseLibvipsSlot(s: LibvipsSlot | null): void {
  if (!s) return;
  const { table, slot } = s;
  Atomics.store(table, COUNT + slot, 0);
  changed(table);
  if (Atomics.compareExchange(table, ALONE, slot + 1, 0) === slot + 1) Atomics.notify(table, ALONE);
  Atomics.store(table, CLAIMED + slot, 0);
}

/**
 * In a thread started with a reserved slot, before its first libvips call. Without one (all slots taken)
 * the thread keeps a table of its own: its calls are then alone only among themselves.
 */
export function joinLibvipsGate(s: LibvipsSlot | null): void {
  if (s) mine = s;
}

/** Runs one libvips call (a decode, an encode); waits while a call runs alone. */
export async function inLibvips<T>(call: () => Promise<T>): Promise<T> {
  const { table, slot } = own();
  for (;;) {
    const alone = Atomics.load(table, ALONE);
    if (alone !== 0) {
      await sleepWhile(table, ALONE, alone);
      continue;
    }
    Atomics.add(table, COUNT + slot, 1);
    if (Atomics.load(table, ALONE) === 0) break;
    // A call started to run alone between the two loads: give it the process.
    Atomics.sub(table, COUNT + slot, 1);
    changed(table);
  }
  try {
    return await call();
  } finally {
    Atomics.sub(table, COUNT + slot, 1);
    changed(table);
  }
}

/** Runs `call` with no other gated libvips call in flight in the process. Not from inside `inLibvips`. */
export async function aloneInLibvips<T>(call: () => Promise<T>): Promise<T> {
  const { table, slot } = own();
  for (;;) {
    const holder = Atomics.compareExchange(table, ALONE, 0, slot + 1);
    if (holder === 0) break;
    await sleepWhile(table, ALONE, holder);
  }
  try {
    for (;;) {
      const seen = Atomics.load(table, CHANGES);
      if (inFlight(table) === 0) break;
      await sleepWhile(table, CHANGES, seen);
    }
    return await call();
  } finally {
    Atomics.store(table, ALONE, 0);
    Atomics.notify(table, ALONE);
  }
}

function inFlight(table: Int32Array): number {
  let n = 0;
  for (let s = 0; s < SLOTS; s++) n += Atomics.load(table, COUNT + s);
  return n;
}

function changed(table: Int32Array): void {
  Atomics.add(table, CHANGES, 1);
  Atomics.notify(table, CHANGES);
}

/** Until table[index] is no longer `value`. */
async function sleepWhile(table: Int32Array, index: number, value: number): Promise<void> {
  const w = Atomics.waitAsync(table, index, value);
  if (!w.async) return;
  // A pending waitAsync does not keep a thread's event loop alive: without this, an engine thread with
  // nothing else to do would exit while it waits for another thread's decode.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    await w.value;
  } finally {
    clearInterval(keepAlive);
  }
}
