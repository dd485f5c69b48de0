// The loopback host may only touch files inside the folders it was started with. Every path is resolved
// through realpath before the check, so a symbolic link inside a root cannot lead outside it.
import { realpath, stat } from "node:fs/promises";
import path from "node:path";

export class OutsideRootsError extends Error {
  override name = "OutsideRootsError";
}

export interface RootPolicy {
  readonly roots: string[];
  /** The real path of an existing file or folder inside the roots. */
  readable(p: string): Promise<string>;
  /** The real path a new file would get: its folder must exist inside the roots. */
  writable(p: string): Promise<string>;
  isRoot(p: string): boolean;
}

function within(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

export async function createRootPolicy(rootsIn: string[]): Promise<RootPolicy> {
  const roots: string[] = [];
  for (const r of rootsIn) {
    const real = await realpath(path.resolve(r)).catch(() => {
      throw new Error(`The folder ${r} given with --root does not exist.`);
    });
    if (!(await stat(real)).isDirectory()) throw new Error(`${r} given with --root is not a folder.`);
    roots.push(real);
  }
  const refuse = (p: string): never => {
    throw new OutsideRootsError(
      `${p} is outside the folders Nibble was started with (${roots.join(", ")}). Choose a file inside them, or restart Nibble with --root pointing at the folder you need.`,
    );
  };
  const check = (p: string, original: string): string => (roots.some((r) => within(r, p)) ? p : refuse(original));
  return {
    roots,
    async readable(p) {
      check(path.resolve(p), p);
      const real = await realpath(p).catch(() => {
        throw new Error(`${p} does not exist or cannot be read. Choose it again.`);
      });
      return check(real, p);
    },
    async writable(p) {
      const abs = path.resolve(p);
      check(abs, p);
      const dir = await realpath(path.dirname(abs)).catch(() => {
        throw new Error(`The folder ${path.dirname(abs)} does not exist. Choose an existing folder to save into.`);
      });
      const target = path.join(dir, path.basename(abs));
      check(target, p);
      // An existing link at the target would be followed by the writer: resolve it too.
      const real = await realpath(target).catch(() => target);
      return check(real, p);
    },
    isRoot: (p) => roots.includes(p),
  };
}
