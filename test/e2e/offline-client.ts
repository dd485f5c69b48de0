// Run inside the loopback host's network namespace (nsenter -t HOST_PID -n): a namespace's 127.0.0.1 is its
// own, so privacy.test.ts drives the host's API from in there. Prints one JSON line with what it saw.
import net from "node:net";
import type { ModelSummary } from "../../shared/types.ts";
import { DEMO, HostClient, QUICK_REQUEST, runToEnd } from "./fault-helpers.ts";

const [port, token] = process.argv.slice(2);
// first, that this really is a place without a network: a connect to a public address fails at once
const network = await new Promise<string>((resolve) => {
  const s = net.connect(443, "1.1.1.1");
  s.once("connect", () => (s.destroy(), resolve("connected")));
  s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
});
const client = new HostClient(Number(port), token);
await client.connectEvents();
const inspect = await client.call<ModelSummary>("inspect", DEMO.model);
const run = await runToEnd(client, QUICK_REQUEST);
client.close();
console.log(
  JSON.stringify({
    network,
    inspect: { status: inspect.status, layers: inspect.body.layers?.length ?? null, error: inspect.body.error ?? null },
    run: { type: run.final.type, error: run.final.type === "error" ? run.final.message : null },
  }),
);
