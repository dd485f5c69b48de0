// A fingerprint of an image set for the report: two runs on the same files give the same hash,
// wherever the folder lives. Covers relative paths and contents; labels files are not included.
//
// Each file is hashed on its own (streamed, never whole in memory), then the set hash is SHA-256 over
// "rel \0 hex-digest \n" per file in code-point order of rel. NUL cannot occur in a file name and the
// digest has a fixed length, so the encoding is unambiguous even for names containing newlines.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { compareCodePoints } from "./order.ts";
import type { ImageSet } from "./scan.ts";

/** Files hashed at once: enough to hide per-file open latency, few enough to bound open handles. */
const PARALLEL = 8;

export async function hashImageSet(set: ImageSet): Promise<string> {
  const files = [...set.files].sort((a, b) => compareCodePoints(a.rel, b.rel));
  const digests = new Array<string>(files.length);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      digests[i] = await hashFile(files[i].path);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
  const h = createHash("sha256");
  files.forEach((f, i) => h.update(`${f.rel}\0${digests[i]}\n`, "utf8"));
  return h.digest("hex");
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("error", reject)
      .on("data", (chunk) => h.update(chunk))
      .on("end", () => resolve(h.digest("hex")));
  });
}
