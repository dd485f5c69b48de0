// Default names for exported files: the model next to the input model, named after it and the run's
// settings (so several runs' exports sit side by side without overwriting each other by accident), and the
// reports next to wherever the model goes, named after it.
import { ALL_METHODS, type QuantConfig } from "../../shared/types.ts";
import { basename, dirname, sep } from "./format.ts";
import { fileTag } from "./run-names.ts";

export type ExportKind = "model" | "html" | "json";

export const EXTENSION: Record<ExportKind, string> = { model: "onnx", html: "html", json: "json" };

type Settings = Pick<QuantConfig, "wBits" | "aBits"> & Partial<Pick<QuantConfig, "methods" | "keep" | "activations" | "target">>;

function join(dir: string, name: string, like: string): string {
  const s = sep(like);
  return dir.endsWith(s) ? dir + name : dir + s + name;
}

/** The model's default path: beside the input model. */
export function defaultModelPath(modelPath: string, config: Settings): string {
  const stem = basename(modelPath).replace(/\.onnx$/i, "");
  const methods = config.methods ?? [...ALL_METHODS];
  const all = methods.length === ALL_METHODS.length && ALL_METHODS.every((m) => methods.includes(m));
  const tag = fileTag({ methods, keep: {}, activations: "per-channel", ...config } as QuantConfig, all);
  return join(dirname(modelPath), `${stem}-${tag}.onnx`, modelPath);
}

/** A report's default path: beside the exported model, named after it. */
export function reportPathFor(modelTarget: string, kind: Exclude<ExportKind, "model">): string {
  const stem = basename(modelTarget).replace(/\.onnx$/i, "");
  return join(dirname(modelTarget), `${stem}-report.${EXTENSION[kind]}`, modelTarget);
}

export function defaultExportPath(modelPath: string, config: Settings, kind: ExportKind): string {
  const model = defaultModelPath(modelPath, config);
  return kind === "model" ? model : reportPathFor(model, kind);
}
