// The main process only reads paths the user chose (native dialog, drop, recent-models menu) and only
// writes paths the user confirmed in a save dialog. The page may name a path, but it cannot widen the set.
import path from "node:path";

export class PathNotChosenError extends Error {
  override name = "PathNotChosenError";
}

export class UserPaths {
  readonly #read = new Set<string>();
  readonly #write = new Set<string>();

  allowRead(p: string): string {
    const abs = path.resolve(p);
    this.#read.add(abs);
    return abs;
  }

  allowWrite(p: string): string {
    const abs = path.resolve(p);
    this.#write.add(abs);
    return abs;
  }

  checkRead(p: string): void {
    if (!this.#read.has(path.resolve(p))) {
      throw new PathNotChosenError(`${p} was not chosen in this window. Open it with File > Open Model or the Choose button.`);
    }
  }

  checkWrite(p: string): void {
    const abs = path.resolve(p);
    if (!this.#write.has(abs)) throw new PathNotChosenError(`${p} was not confirmed in a save dialog. Use Change… to choose where to save.`);
    if (this.#read.has(abs)) throw new PathNotChosenError(`${p} is one of your inputs. Choose a different file name so the original is kept.`);
  }
}
