// NumPy's .npz archives: a ZIP file (stored by numpy.savez, deflated by numpy.savez_compressed, ZIP64 entries
// either way) holding one KEY.npy per array. yauzl reads the archive (ZIP64, bounds-checked entry sizes, random
// access from the file without loading it whole); it does not check CRC-32, so whole reads check it here.
import { crc32 } from "node:zlib";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import { DataError } from "./errors.ts";
import { MAX_FILE_BYTES } from "./limits.ts";
import { NPY_PREAMBLE_BYTES, parseNpy, parseNpyHeader, type NpyArray, type NpyHeader } from "./npy.ts";

export interface NpzMember {
  /** the array's key: the entry name without ".npy" */
  key: string;
  entry: Entry;
}

const SAVE_AGAIN = "Save it again with numpy.savez or numpy.savez_compressed.";

async function openZip(file: string): Promise<ZipFile> {
  try {
    return await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true });
  } catch (e) {
    throw new DataError(`${file} is not a readable .npz archive (${(e as Error).message}). ${SAVE_AGAIN}`);
  }
}

function listEntries(zip: ZipFile, file: string): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: Entry[] = [];
    zip.on("entry", (e: Entry) => {
      entries.push(e);
      zip.readEntry();
    });
    zip.once("end", () => resolve(entries));
    zip.once("error", (e: Error) => reject(new DataError(`${file} is a damaged .npz archive (${e.message}). ${SAVE_AGAIN}`)));
    zip.readEntry();
  });
}

/** Runs `fn` over the archive's arrays (entries named *.npy; others are ignored), closing the file after. */
export async function withNpz<T>(file: string, fn: (members: NpzMember[], zip: ZipFile) => Promise<T>): Promise<T> {
  const zip = await openZip(file);
  try {
    const entries = await listEntries(zip, file);
    const members = entries.filter((e) => e.fileName.endsWith(".npy")).map((entry) => ({ key: entry.fileName.slice(0, -4), entry }));
    return await fn(members, zip);
  } finally {
    zip.close();
  }
}

function stream(zip: ZipFile, m: NpzMember, file: string) {
  return zip.openReadStreamPromise(m.entry).catch((e: Error) => {
    throw new DataError(`${file}: array "${m.key}" cannot be read (${e.message}). ${SAVE_AGAIN}`);
  });
}

/** The .npy header of one member, reading (and inflating) only as much of it as the header takes. */
export async function readMemberHeader(zip: ZipFile, m: NpzMember, file: string): Promise<NpyHeader> {
  const name = `${file} (array "${m.key}")`;
  const s = await stream(zip, m, file);
  const chunks: Buffer[] = [];
  let have = 0;
  try {
    for await (const chunk of s as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      have += chunk.length;
      if (have < NPY_PREAMBLE_BYTES) continue;
      try {
        return parseNpyHeader(Buffer.concat(chunks), name, m.entry.uncompressedSize);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e; // the header goes on in the next chunks
      }
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${name} cannot be read (${(e as Error).message}). ${SAVE_AGAIN}`);
  } finally {
    s.destroy();
  }
  return parseNpyHeader(Buffer.concat(chunks), name, have);
}

/** One member's whole array, CRC-checked. */
export async function readMember(zip: ZipFile, m: NpzMember, file: string): Promise<NpyArray> {
  const name = `${file} (array "${m.key}")`;
  if (m.entry.uncompressedSize > MAX_FILE_BYTES) {
    throw new DataError(`${name} is ${Math.round(m.entry.uncompressedSize / 2 ** 20)} MiB, above the ${MAX_FILE_BYTES / 2 ** 20} MiB limit per array. Split it over several files.`);
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of (await stream(zip, m, file)) as AsyncIterable<Buffer>) chunks.push(chunk);
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${name} cannot be read, the archive is damaged (${(e as Error).message}). ${SAVE_AGAIN}`);
  }
  const bytes = Buffer.concat(chunks);
  if (crc32(bytes) >>> 0 !== m.entry.crc32 >>> 0) throw new DataError(`${name} is damaged (its checksum does not match). ${SAVE_AGAIN}`);
  return parseNpy(bytes, name);
}
