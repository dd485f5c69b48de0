// The folder/file picker of the loopback host: a browser has no native dialog that yields a path, so the
// host lists folders itself, as Jupyter does, and only inside its roots.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { BrowseEntry, BrowseResult } from "../../shared/ipc.ts";
import type { RootPolicy } from "./roots.ts";

/** A folder with more entries than this is cut short; the picker is for navigating, not for listing data sets. */
const MAX_ENTRIES = 2000;

export async function browse(policy: RootPolicy, dirIn: string | null, home: string): Promise<BrowseResult> {
  const dir = await policy.readable(dirIn ?? home);
  if (!(await stat(dir)).isDirectory()) throw new Error(`${dir} is not a folder.`);
  const dirents = await readdir(dir, { withFileTypes: true });
  const entries: BrowseEntry[] = [];
  for (const d of dirents) {
    if (d.name.startsWith(".")) continue;
    const full = path.join(dir, d.name);
    // Links are followed so that a linked data folder shows as a folder; broken links are left out.
    const st = await stat(full).catch(() => null);
    if (!st || !(st.isDirectory() || st.isFile())) continue;
    entries.push({ name: d.name, path: full, kind: st.isDirectory() ? "dir" : "file", bytes: st.isFile() ? st.size : null });
    if (entries.length >= MAX_ENTRIES) break;
  }
  entries.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name, undefined, { numeric: true }) : a.kind === "dir" ? -1 : 1));
  return { dir, parent: policy.isRoot(dir) ? null : path.dirname(dir), roots: policy.roots, entries };
}
