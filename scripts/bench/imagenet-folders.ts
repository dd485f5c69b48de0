// The ImageNet folders the CLI commands of docs/BENCHMARKS.md read ("Issue 9", `--max-drop`): the seeded split of
// ../shared/fixtures/imagenet-val-1300 into 300 calibration and 1,000 evaluation images, each with its labels in
// both models' class orders, and the evaluation images' two halves, so a search on one half can be checked on the
// other. Usage: node --import tsx scripts/bench/imagenet-folders.ts [OUT=/tmp/inet] [SEED=0]
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseLabelsTxt } from "../../src-main/engine/data/labels.ts";
import { imageNames, linkFolder, splitNames } from "./split.ts";

const out = process.argv[2] ?? "/tmp/inet";
const seed = Number(process.argv[3] ?? 0);
const images = path.resolve(import.meta.dirname, "../../../shared/fixtures/imagenet-val-1300");
const s = splitNames(await imageNames(images), 300, 1000, seed);
const half = s.eval.length / 2;
const folders: Record<string, string[]> = { calib: s.calib, eval: s.eval, "eval-a": s.eval.slice(0, half), "eval-b": s.eval.slice(half) };

for (const [labelFile, suffix] of [["labels.txt", ""], ["labels-darknet.txt", "-darknet"]]) {
  const file = path.join(images, labelFile);
  const labels = new Map(parseLabelsTxt(await readFile(file, "utf8"), file).map((l) => [l.rel, l.label]));
  for (const [name, files] of Object.entries(folders)) {
    const dir = await linkFolder(images, files, path.join(out, `${name}${suffix}`));
    await writeFile(path.join(dir, "labels.txt"), files.map((f) => `${f} ${labels.get(f)}`).join("\n") + "\n");
  }
}
console.log(`${out}: ${Object.entries(folders).map(([k, v]) => `${k} ${v.length}`).join(", ")} (seed ${seed}), each also as *-darknet`);
