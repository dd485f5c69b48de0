// Parsing of the two optional label files at the root of an image folder:
//   classes.txt  one class name per line; line i (blank lines ignored) is class index i.
//   labels.txt   "relative/path label" per line; label is an integer index or a class name.
// Paths may contain spaces, so the label is the last whitespace-separated token of the line.
import { DataError } from "./errors.ts";

export interface LabelLine {
  /** path relative to the folder root, "/"-separated */
  rel: string;
  /** integer index, or a class name still to be resolved */
  label: number | string;
  line: number;
}

export function parseClassesTxt(text: string, file: string): string[] {
  const classes = splitLines(text)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const seen = new Set<string>();
  for (const c of classes) {
    if (seen.has(c)) throw new DataError(`${file} lists class "${c}" twice; each line must name a different class.`);
    seen.add(c);
  }
  return classes;
}

export function parseLabelsTxt(text: string, file: string): LabelLine[] {
  const out: LabelLine[] = [];
  splitLines(text).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^(.*\S)\s+(\S+)$/.exec(line);
    if (!m) {
      throw new DataError(
        `${file} line ${i + 1} ("${line}") has no label. Each line must be "relative/path label", e.g. "cat/001.png 3" or "cat/001.png cat".`,
      );
    }
    // Accept Windows-style separators and a leading "./" so hand-written files match the scanned paths.
    const rel = m[1].replace(/\\/g, "/").replace(/^(\.\/)+/, "");
    const label = /^[0-9]+$/.test(m[2]) ? Number(m[2]) : m[2];
    out.push({ rel, label, line: i + 1 });
  });
  return out;
}

function splitLines(text: string): string[] {
  return text.replace(/^\uFEFF/, "").split(/\r?\n/);
}
