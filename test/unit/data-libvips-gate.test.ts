// The gate that lets one libvips call run alone in the process (src-main/engine/data/libvips-gate.ts):
// ordering within a thread, and threads that end mid-call without leaving the others waiting for ever.
import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { aloneInLibvips, inLibvips, releaseLibvipsSlot, reserveLibvipsSlot, type LibvipsSlot } from "../../src-main/engine/data/libvips-gate.ts";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every queued microtask and atomics wake-up run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

test("a call alone waits for the calls in flight, and calls started meanwhile wait for it", async () => {
  const log: string[] = [];
  const first = deferred();
  const second = deferred();
  const a = inLibvips(async () => {
    log.push("a starts");
    await first.promise;
    log.push("a ends");
  });
  const b = inLibvips(async () => {
    log.push("b starts");
    await second.promise;
    log.push("b ends");
  });
  const alone = aloneInLibvips(async () => {
    log.push("alone runs");
    await settle();
    log.push("alone ends");
  });
  await settle();
  const c = inLibvips(async () => void log.push("c runs"));
  await settle();
  assert.deepEqual(log, ["a starts", "b starts"], "nothing runs beside a and b, which were in flight first");
  first.resolve();
  await a;
  await settle();
  assert.deepEqual(log.at(-1), "a ends", "still waiting for b");
  second.resolve();
  await Promise.all([b, alone, c]);
  assert.deepEqual(log, ["a starts", "b starts", "a ends", "b ends", "alone runs", "alone ends", "c runs"]);
});

test("calls alone run one at a time, and a failing one lets the next run", async () => {
  const log: string[] = [];
  const results = await Promise.allSettled([1, 2, 3].map((i) => aloneInLibvips(async () => {
    log.push(`${i} in`);
    await settle();
    log.push(`${i} out`);
    if (i === 2) throw new Error("two fails");
  })));
  // which of the waiting two goes next is not specified; that they never overlap is
  assert.equal(log.length, 6);
  for (let k = 0; k < 6; k += 2) assert.equal(log[k + 1], log[k].replace("in", "out"), log.join(", "));
  assert.deepEqual(log.filter((l) => l.endsWith("in")).sort(), ["1 in", "2 in", "3 in"]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
});

/** A thread that joins `slot`, then starts a call that never ends (in flight or alone) and says so. */
async function threadStuckIn(mode: "in" | "alone", slot: LibvipsSlot): Promise<Worker> {
  const gate = new URL("../../src-main/engine/data/libvips-gate.ts", import.meta.url).href;
  const source = `
    const { workerData, parentPort } = await import("node:worker_threads");
    const { register } = await import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))});
    register();
    const gate = await import(${JSON.stringify(gate)});
    gate.joinLibvipsGate(workerData.slot);
    gate[workerData.mode === "in" ? "inLibvips" : "aloneInLibvips"](() => {
      parentPort.postMessage("inside");
      return new Promise(() => setInterval(() => {}, 60000));
    });
  `;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`), { workerData: { mode, slot } });
  const [msg] = await once(worker, "message");
  assert.equal(msg, "inside");
  return worker;
}

for (const mode of ["in", "alone"] as const) {
  test(`a thread terminated ${mode === "in" ? "with a call in flight" : "while running alone"} holds nobody up once its slot is released`, { timeout: 60_000 }, async () => {
    const slot = reserveLibvipsSlot();
    assert.ok(slot, "a slot is free");
    const worker = await threadStuckIn(mode, slot);
    let ran = false;
    const mine = (mode === "in" ? aloneInLibvips : inLibvips)(async () => void (ran = true));
    await settle();
    assert.equal(ran, false, "waits for the other thread's call");
    await worker.terminate();
    releaseLibvipsSlot(slot);
    await mine;
    assert.equal(ran, true);
  });
}
