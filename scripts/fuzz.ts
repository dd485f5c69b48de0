// `npm run fuzz [-- --count N --seed S --target model|image --timeout MS]`: the long fuzz run of the
// model reader and the image loader (test/robustness/fuzz-core.ts). Also FUZZ_COUNT / FUZZ_SEED.
// Prints each finding as it happens and a summary table; exits 1 when anything was not acceptable.
import { parseArgs } from "node:util";
import { acceptable, loadSources, planCases, runFuzz, summaryTable, type Target } from "../test/robustness/fuzz-core.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: process.env.FUZZ_COUNT ?? "2000" },
    seed: { type: "string", default: process.env.FUZZ_SEED ?? String(Date.now() % 2 ** 31) },
    target: { type: "string" },
    timeout: { type: "string", default: "5000" },
    "heap-mb": { type: "string", default: "1024" },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || seed < 0) {
  console.error("--count must be a positive whole number and --seed a whole number of at least 0.");
  process.exit(2);
}
if (values.target !== undefined && values.target !== "model" && values.target !== "image") {
  console.error("--target must be model or image.");
  process.exit(2);
}

const sources = await loadSources();
const cases = planCases(count, seed, sources, values.target as Target | undefined);
console.log(`Fuzzing ${count} cases, seed ${seed} (repeat with --seed ${seed}).`);
const started = performance.now();
const rss0 = process.memoryUsage.rss() / 2 ** 20;
let maxRss = rss0;
let done = 0;
const results = await runFuzz({
  cases,
  sources,
  caseTimeoutMs: Number(values.timeout),
  workerHeapMb: Number(values["heap-mb"]),
  onResult(r) {
    maxRss = Math.max(maxRss, r.rssMb);
    if (++done % 250 === 0) console.log(`  ${done}/${count}, ${((performance.now() - started) / 1000).toFixed(0)} s, RSS ${r.rssMb.toFixed(0)} MB`);
    if (!acceptable(r.verdict)) {
      const c = r.fuzzCase;
      console.log(`FINDING case ${c.id} (${c.target} ${sources[c.target][c.source].name}, ${c.mutation}, case seed ${c.seed}): ${r.verdict}\n  ${r.detail.split("\n").join("\n  ")}`);
    }
  },
});
console.log(`\n${summaryTable(results)}\n`);
const bad = results.filter((r) => !acceptable(r.verdict));
console.log(`${results.length} cases in ${((performance.now() - started) / 1000).toFixed(1)} s; RSS ${rss0.toFixed(0)} MB at start, ${maxRss.toFixed(0)} MB at most; ${bad.length} finding(s).`);
process.exit(bad.length ? 1 : 0);
