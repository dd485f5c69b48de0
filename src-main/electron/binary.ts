// Where Electron's binary is, if it is installed: the electron npm package exports the path, but its
// download step is skipped on machines without network access, leaving the package without a binary.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

export function electronBinary(): string | null {
  try {
    const bin = createRequire(import.meta.url)("electron") as unknown;
    return typeof bin === "string" && existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}
