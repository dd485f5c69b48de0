// `npm start`: the desktop app where Electron's binary is installed; otherwise say how to use the web host.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { electronBinary } from "../src-main/electron/binary.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

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
