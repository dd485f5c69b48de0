// Recently opened models, kept in the app's data folder for the File > Open Recent menu.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

const MAX_RECENT = 10;

export async function loadRecent(file: string): Promise<string[]> {
  try {
    const list: unknown = JSON.parse(await readFile(file, "utf8"));
    // Models that were moved or deleted since are dropped rather than offered.
    return Array.isArray(list) ? list.filter((p): p is string => typeof p === "string" && path.isAbsolute(p) && existsSync(p)).slice(0, MAX_RECENT) : [];
  } catch {
    return [];
  }
}

/** Best effort: a read-only profile folder costs the menu its memory, not the app its function. */
export async function saveRecent(file: string, list: string[]): Promise<void> {
  await writeFile(file, JSON.stringify(list, null, 2)).catch(() => undefined);
}

export async function addRecent(file: string, list: string[], model: string): Promise<string[]> {
  const next = [model, ...list.filter((p) => p !== model)].slice(0, MAX_RECENT);
  await saveRecent(file, next);
  return next;
}
