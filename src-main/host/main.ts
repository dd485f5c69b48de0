// `npm run web`: serve Nibble to a browser on this machine. Prints exactly one line, the address to open.
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createEngineService } from "../service/index.ts";
import { createRootPolicy } from "./roots.ts";
import { startHost } from "./server.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const rendererDir = path.resolve(here, "../../src-renderer");
const assetsDir = path.join(rendererDir, "dist");

const { values } = parseArgs({
  options: {
    root: { type: "string", multiple: true },
    port: { type: "string", default: "0" },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port ${values.port} is not a port number (0 to 65535; 0 picks a free one).`);
  process.exit(2);
}

if (!existsSync(path.join(assetsDir, "index.html"))) {
  // First start from a checkout: build the renderer once. Vite's output would break the one-line contract.
  const { build } = await import("vite");
  await build({ configFile: path.join(rendererDir, "vite.config.ts"), logLevel: "silent" });
}

const policy = await createRootPolicy(values.root?.length ? values.root : [os.homedir()]);
const service = createEngineService();
const host = await startHost({ service, policy, home: policy.roots[0], assetsDir, port });
console.log(`Nibble is running at ${host.url}`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await host.close();
  await service.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
