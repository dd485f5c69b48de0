// One quantize run (no evaluation) in a fresh process, for the memory part of the benchmark:
//   node --import tsx scripts/bench/quantize-once.ts --model FILE --calib DIR --limit N [--seed S] --out FILE
// Prints one JSON line (prefixed "RESULT ") with the run's time and the process's peak RSS at the end.
import { parseArgs } from "node:util";
import { peakRss, quantizeRun } from "./common.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    calib: { type: "string" },
    limit: { type: "string" },
    seed: { type: "string", default: "0" },
    out: { type: "string" },
  },
});
if (!values.model || !values.calib || !values.limit || !values.out) {
  console.error("usage: quantize-once.ts --model FILE --calib DIR --limit N [--seed S] --out FILE");
  process.exit(2);
}
const before = peakRss();
const run = await quantizeRun(values.model, values.calib, Number(values.limit), Number(values.seed), values.out);
const peak = peakRss();
console.log(`RESULT ${JSON.stringify({ ...run, startRss: before.vmHWM ?? before.maxRSS, vmHWM: peak.vmHWM, maxRSS: peak.maxRSS })}`);
process.exit(0);
