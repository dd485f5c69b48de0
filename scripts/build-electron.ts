// Compiles the Electron main process, its preload and the engine worker into out/electron with esbuild.
// Bundled JavaScript needs no TypeScript loader at run time, which is what the packaged app requires.
// npm packages stay external: onnxruntime-node and sharp carry native files that must load from node_modules.
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outdir = path.join(root, "out/electron");
const common = { bundle: true, platform: "node", target: "node22", sourcemap: true, logLevel: "warning", absWorkingDir: root } as const;

await Promise.all([
  // main.js bundles the engine service, which starts ./worker.js next to it.
  build({ ...common, entryPoints: { main: "src-main/electron/main.ts", worker: "src-main/service/worker.ts" }, outdir, format: "esm", packages: "external" }),
  // Sandboxed preloads must be a single CommonJS file that requires nothing but electron.
  build({ ...common, entryPoints: ["src-main/electron/preload.ts"], outfile: path.join(outdir, "preload.cjs"), format: "cjs", external: ["electron"] }),
]);
console.log(`Electron main, preload and engine worker written to ${path.relative(root, outdir)}/`);
