// The fixed part of the fuzzer (fuzz-core.ts) in `npm test`: 500 seeded mutations of the real fixture
// models and of real CIFAR-10 PNGs and a JPEG, through the model reader and the image loader. Every case
// must succeed or throw ModelError/DataError, answer within 5 s (each runs in a watched worker thread),
// and the process's memory must stay bounded. `npm run fuzz` runs many more.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { acceptable, lengthFields, loadSources, mutate, MUTATIONS, planCases, runFuzz, summaryTable, type Sources } from "./fuzz-core.ts";

const SEED = 20_241_127;
const CASES = 500;
const CASE_TIMEOUT_MS = 5_000;
const WORKER_HEAP_MB = 512;
/** Growth of the whole process's resident memory over the run (the worker lives in this process). */
const RSS_GROWTH_LIMIT_MB = 700;

let sources: Sources;
before(async () => {
  sources = await loadSources();
});

test("mutations are seeded, change the bytes, and find the length fields they corrupt", () => {
  for (const target of ["model", "image"] as const) {
    for (const s of sources[target]) {
      const fields = lengthFields(s.bytes, target);
      assert.ok(fields.length >= (target === "model" ? 100 : 3), `${s.name}: ${fields.length} length fields`);
      for (const m of MUTATIONS) {
        const a = mutate(s.bytes, target, m, 42);
        assert.deepEqual(a, mutate(s.bytes, target, m, 42), `${s.name} ${m} is deterministic`);
        assert.notDeepEqual(Buffer.from(a), Buffer.from(s.bytes), `${s.name} ${m} changes something`);
      }
    }
  }
  const cases = planCases(CASES, SEED, sources);
  assert.deepEqual(cases, planCases(CASES, SEED, sources));
  assert.equal(new Set(cases.map((c) => `${c.target} ${c.mutation}`)).size, 2 * MUTATIONS.length);
});

test(`${CASES} mutated models and images: ModelError or DataError at worst, no hang, memory bounded`, async () => {
  const rss0 = process.memoryUsage.rss() / 2 ** 20;
  const started = performance.now();
  const results = await runFuzz({ cases: planCases(CASES, SEED, sources), sources, caseTimeoutMs: CASE_TIMEOUT_MS, workerHeapMb: WORKER_HEAP_MB });
  const seconds = (performance.now() - started) / 1000;
  const table = summaryTable(results);
  const findings = results
    .filter((r) => !acceptable(r.verdict))
    .map((r) => `case ${r.fuzzCase.id} (${r.fuzzCase.target} ${sources[r.fuzzCase.target][r.fuzzCase.source].name}, ${r.fuzzCase.mutation}, seed ${r.fuzzCase.seed}): ${r.verdict}: ${r.detail}`);
  assert.deepEqual(findings, [], `${table}\n${findings.join("\n")}`);
  const maxRss = Math.max(...results.map((r) => r.rssMb));
  assert.ok(maxRss - rss0 < RSS_GROWTH_LIMIT_MB, `RSS grew from ${rss0.toFixed(0)} MB to ${maxRss.toFixed(0)} MB\n${table}`);
  // Both outcomes must actually occur, or the fuzzer is not reaching the code it claims to test.
  for (const target of ["model", "image"] as const) {
    const rs = results.filter((r) => r.fuzzCase.target === target);
    assert.ok(rs.some((r) => r.verdict === "ok"), `some ${target} cases succeed\n${table}`);
    assert.ok(rs.some((r) => r.verdict !== "ok"), `some ${target} cases are refused\n${table}`);
  }
  console.log(`${table}\n${results.length} cases in ${seconds.toFixed(1)} s, RSS ${rss0.toFixed(0)} -> ${maxRss.toFixed(0)} MB at most`);
});
