// Default names for exported files: next to the model, named after it and the run's bit widths, so
// several exports of one model sit side by side without overwriting each other by accident.
import type { QuantConfig } from "../../shared/types.ts";
import { basename, dirname, sep } from "./format.ts";

export type ExportKind = "model" | "html" | "json";

export const EXTENSION: Record<ExportKind, string> = { model: "onnx", html: "html", json: "json" };

export function defaultExportPath(modelPath: string, config: Pick<QuantConfig, "wBits" | "aBits">, kind: ExportKind): string {
  const stem = basename(modelPath).replace(/\.onnx$/i, "");
  const tag = `w${config.wBits}a${config.aBits}`;
  const name = kind === "model" ? `${stem}-${tag}.onnx` : `${stem}-${tag}-report.${EXTENSION[kind]}`;
  return `${dirname(modelPath)}${sep(modelPath)}${name}`;
}
