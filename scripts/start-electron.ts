// `npm start`: the desktop app where Electron's binary is installed; otherwise say how to use the web host.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The Electron binary's path, or null when the package is installed without it (as on CI machines). */
export function electronBinary(): string | null {
  try {
    const bin = createRequire(import.meta.url)("electron") as unknown;
    return typeof bin === "string" && existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

const bin = electronBinary();
if (!bin) {
  console.error(
    "Electron's binary is not installed on this machine, so the desktop window cannot open.\n" +
      "Run `npm run web` instead: it prints an address to open in your browser, with the same app.",
  );
  process.exit(1);
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
for (const script of ["build:renderer", "build:electron"]) {
  const r = spawn(npm, ["run", "--silent", script], { cwd: root, stdio: "inherit", shell: process.platform === "win32" });
  const code = await new Promise<number | null>((resolve) => r.on("exit", resolve));
  if (code !== 0) process.exit(code ?? 1);
}
const app = spawn(bin, [root], { cwd: root, stdio: "inherit" });
app.on("exit", (code) => process.exit(code ?? 0));
