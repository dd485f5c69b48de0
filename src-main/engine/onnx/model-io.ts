// Loading and saving .onnx files. Loading is where untrusted bytes enter the app, so it validates
// everything later stages rely on (opset, graph order, tensor sizes, external data paths, finite
// parameters, allocatable inputs) and turns every failure into a ModelError that names the file and
// says what to do. It also brings every model to the one form later stages assume: operator set 21,
// and initializers that are constants, not graph inputs.
import { clearField, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ModelProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  Version,
  type GraphProto,
  type ModelProto,
  type TensorProto,
} from "onnx-buf";
import { randomBytes } from "node:crypto";
import { open, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { DETAILS_MARKER } from "../../../shared/describe.ts";
import { ModelError } from "./errors.ts";
import { findOrderProblem } from "./graph.ts";
import { convertToTargetOpset, TARGET_OPSET, type ConversionResult } from "./opset/index.ts";
import { rawByteLength, tensorElementCount, tensorStorageProblem, MAX_TENSOR_ELEMENTS } from "./tensor.ts";
import { inputProblem, parameterProblem } from "./validate.ts";

export const MIN_OPSET = 7;
export const MAX_OPSET = 21;
const MIN_IR_VERSION = 3;
/** Protobuf cannot encode or decode a single message of 2 GiB or more. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

export interface LoadedModel {
  /** Absolute path of the .onnx file. */
  path: string;
  /** The model converted to operator set 21, with no initializer listed as a graph input. */
  model: ModelProto;
  /** Size of the .onnx file itself. */
  fileBytes: number;
  /** Bytes read from external data files into the tensors (they are now inline). */
  externalBytes: number;
  /** IR version of `model` (at least 10 once converted). */
  irVersion: number;
  /** Version of the default ("" / "ai.onnx") operator set of `model`: always TARGET_OPSET. */
  opset: number;
  /** What the file itself declares, before conversion: what inspect shows. */
  declared: { irVersion: number; opset: number; opsets: { domain: string; version: number }[] };
  /** Names of the initializers the file also listed as graph inputs (now constants only). */
  initializerInputs: string[];
  conversion: ConversionResult;
  /** Facts worth showing the user that do not stop us, e.g. an old IR version. */
  notes: string[];
}

export interface LoadOptions {
  /** Refuse models whose file plus external data exceed this many bytes. Default 2 GiB - 1. */
  maxBytes?: number;
}

export async function loadModel(file: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const abs = path.resolve(file);
  const maxBytes = options.maxBytes ?? PROTOBUF_LIMIT;
  const bytes = await readModelFile(abs, maxBytes);
  const other = otherFormat(bytes);
  if (other) {
    throw new ModelError(`"${abs}" is ${other}, not an ONNX model, whatever its name says. Choose the .onnx file itself${other.includes("archive") ? " (unpack the archive first)" : ""}.`, { file: abs });
  }
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes);
  } catch (err) {
    if (looksLikeText(bytes)) {
      throw new ModelError(`"${abs}" is a text file, not an ONNX model, whatever its name says. Choose the .onnx file itself: a binary file exported by your training framework.`, { file: abs, cause: err });
    }
    // The decoder's own words ("illegal tag: field no 13 wire type 6") help a bug report, not the user.
    throw new ModelError(
      `"${abs}" is not a readable ONNX model: the file is damaged or is not ONNX. Export the model again or download it again.${DETAILS_MARKER}${(err as Error).message}`,
      { file: abs, cause: err },
    );
  }
  const { irVersion, opset, notes } = checkHeader(model, abs);
  const externalBytes = await resolveExternalData(model, abs, maxBytes - bytes.length);
  checkTensors(model, abs);
  const order = findOrderProblem(model.graph!);
  if (order) {
    throw new ModelError(`"${abs}" has a broken graph: ${order}. The file is damaged or was not saved completely; export it again.`, { file: abs });
  }
  const parameters = parameterProblem(model);
  if (parameters) throw new ModelError(`"${abs}" is damaged: ${parameters.reason}. ${parameters.todo}`, { file: abs });
  const input = inputProblem(model);
  if (input) throw new ModelError(`"${abs}" cannot be run: ${input.reason}. ${input.todo}`, { file: abs });
  const declared = { irVersion, opset, opsets: model.opsetImport.map((o) => ({ domain: o.domain || "ai.onnx", version: Number(o.version) })) };
  const initializerInputs = constantInitializers(model);
  if (initializerInputs.length > 0) notes.push(initializerInputsNote(model, initializerInputs.length));
  const conversion = convert(model, abs, opset);
  notes.push(...conversionNotes(conversion));
  return { path: abs, model, fileBytes: bytes.length, externalBytes, irVersion: Number(model.irVersion), opset: TARGET_OPSET, declared, initializerInputs, conversion, notes };
}

function convert(model: ModelProto, file: string, opset: number): ConversionResult {
  try {
    return convertToTargetOpset(model, { file });
  } catch (err) {
    // a tensor a rule reads holds the wrong type (tensor.ts says which): the file's fault, named here
    if (err instanceof ModelError && err.file === undefined) {
      throw new ModelError(`"${file}" cannot be converted from ONNX operator set ${opset} to ${TARGET_OPSET}: ${err.message} The file is damaged; export it again.`, { file, cause: err });
    }
    throw err;
  }
}

/**
 * Removes from the graph inputs every name that is also an initializer, and returns those names. Before
 * IR version 4 every initializer had to be listed as an input too, and exporters kept doing it long
 * after (PyTorch 1.2 still did); onnxruntime then treats each as an input the caller may override,
 * which keeps it from folding constants and fusing layers. Weights a caller replaces at run time would
 * bypass the quantization anyway, so in Nibble an initializer is always a constant.
 */
function constantInitializers(model: ModelProto): string[] {
  const graph = model.graph!;
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const listed = graph.input.filter((v) => initializers.has(v.name)).map((v) => v.name);
  if (listed.length === 0) return listed;
  graph.input = graph.input.filter((v) => !initializers.has(v.name));
  // IR 4 is the first version that allows an initializer that is not an input
  if (model.irVersion < 4n) model.irVersion = 4n;
  return listed;
}

function initializerInputsNote(model: ModelProto, count: number): string {
  const inputs = model.graph!.input.map((v) => `"${v.name}"`).join(", ");
  return (
    `The file also lists its ${count} stored tensors (weights and constants) as graph inputs, as exporters did before ONNX IR version 4. ` +
    `Nibble treats them as the constants they are, so onnxruntime can fold and fuse them; the exported model's inputs are ${inputs} only.`
  );
}

// Silent when only the version number changed: nothing in the model did.
function conversionNotes(c: ConversionResult): string[] {
  if (c.rewritten.size === 0) return c.notes;
  const rewritten = [...c.rewritten].map(([op, n]) => (n > 1 ? `${op} (${n}x)` : op)).join(", ");
  return [
    `The model uses ONNX operator set ${c.from}; Nibble converted it to ${TARGET_OPSET}, which the 4-bit format needs, ` +
      `rewriting ${rewritten} (the other operators mean the same at ${TARGET_OPSET}).`,
    ...c.notes,
  ];
}

/** Signatures of files people pick by mistake. No ONNX file starts with them: none is a valid first ModelProto field. */
const SIGNATURES: [number[], string][] = [
  [[0x89, 0x50, 0x4e, 0x47], "a PNG image"],
  [[0xff, 0xd8, 0xff], "a JPEG image"],
  [[0x47, 0x49, 0x46, 0x38], "a GIF image"],
  [[0x50, 0x4b, 0x03, 0x04], "a ZIP archive"],
  [[0x1f, 0x8b], "a gzip archive"],
  [[0x25, 0x50, 0x44, 0x46], "a PDF document"],
];

/** Only control characters a text file never has (NUL, most of C0, DEL) mark it as binary; UTF-8 passes. */
function looksLikeText(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 4096);
  return head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b !== 0x7f));
}

function otherFormat(bytes: Uint8Array): string | null {
  for (const [magic, what] of SIGNATURES) if (bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b)) return what;
  return null;
}

async function readModelFile(abs: string, maxBytes: number): Promise<Uint8Array> {
  let size: number;
  try {
    const st = await stat(abs);
    if (st.isDirectory()) throw new ModelError(`"${abs}" is a folder, not a model file. Choose the .onnx file inside it.`, { file: abs });
    size = st.size;
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw fsError(err, abs, "open");
  }
  if (size === 0) throw new ModelError(`"${abs}" is empty (0 bytes). Export the model again or download it again.`, { file: abs });
  if (size > maxBytes) {
    throw new ModelError(`"${abs}" is ${formatBytes(size)}, more than the ${formatBytes(maxBytes)} Nibble accepts. Use a smaller model.`, { file: abs });
  }
  const fh = await open(abs, "r").catch((err: unknown) => {
    throw fsError(err, abs, "open");
  });
  try {
    return await readExactly(fh, 0, size, abs);
  } finally {
    await fh.close();
  }
}

async function readExactly(fh: FileHandle, offset: number, length: number, file: string): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) throw new ModelError(`"${file}" ended early while reading it; it may be changing on disk. Try again.`, { file });
    done += bytesRead;
  }
  return buf;
}

function checkHeader(model: ModelProto, file: string): { irVersion: number; opset: number; notes: string[] } {
  const notes: string[] = [];
  const irVersion = Number(model.irVersion);
  if (!model.graph || irVersion <= 0) {
    throw new ModelError(`"${file}" is not an ONNX model (it has no ${model.graph ? "IR version" : "graph"}). Check that you chose the right file.`, { file });
  }
  if (irVersion < MIN_IR_VERSION) {
    throw new ModelError(`"${file}" uses ONNX IR version ${irVersion}, which is too old. Re-export it with a current exporter (IR version ${MIN_IR_VERSION} or later).`, { file });
  }
  if (irVersion < 4) notes.push(`The model uses ONNX IR version ${irVersion} (from 2017); it is read, but newer exports are better tested.`);
  if (irVersion > Version.IR_VERSION) notes.push(`The model uses ONNX IR version ${irVersion}, newer than Nibble knows (${Version.IR_VERSION}); unknown fields are kept as they are.`);
  const defaults = model.opsetImport.filter((o) => o.domain === "" || o.domain === "ai.onnx");
  if (defaults.length === 0) {
    throw new ModelError(`"${file}" does not say which ONNX operator set it uses; the file is damaged or incomplete. Export it again.`, { file });
  }
  const opset = Number(defaults[0].version);
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new ModelError(
      `"${file}" uses ONNX operator set ${opset}; Nibble reads operator sets ${MIN_OPSET} to ${MAX_OPSET}. ` +
        `Convert it (for example with onnx.version_converter to opset 13) or re-export it with that opset.`,
      { file },
    );
  }
  const graph = model.graph;
  if (graph.node.length === 0) throw new ModelError(`"${file}" has an empty graph (no operators). Check that you chose the right file.`, { file });
  if (graph.node.some((n) => n.opType === "")) {
    throw new ModelError(`"${file}" contains an operator without a type; the file is damaged. Export it again.`, { file });
  }
  if (graph.input.length === 0 || graph.output.length === 0) {
    throw new ModelError(`"${file}" declares no ${graph.input.length === 0 ? "inputs" : "outputs"}; the file is damaged or incomplete. Export it again.`, { file });
  }
  return { irVersion, opset, notes };
}

/** Every TensorProto in the model: initializers, Constant values, sparse parts, subgraphs, functions. */
export function allTensors(model: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const visitGraph = (g: GraphProto): void => {
    out.push(...g.initializer);
    for (const s of g.sparseInitializer) {
      if (s.values) out.push(s.values);
      if (s.indices) out.push(s.indices);
    }
    for (const n of g.node) visitNodes([n]);
  };
  const visitNodes = (nodes: GraphProto["node"]): void => {
    for (const n of nodes) {
      for (const a of n.attribute) {
        if (a.t) out.push(a.t);
        out.push(...a.tensors);
        if (a.g) visitGraph(a.g);
        a.graphs.forEach(visitGraph);
      }
    }
  };
  if (model.graph) visitGraph(model.graph);
  for (const f of model.functions) visitNodes(f.node);
  return out;
}

function checkTensors(model: ModelProto, file: string): void {
  for (const t of allTensors(model)) {
    const problem = tensorStorageProblem(t);
    if (problem) {
      throw new ModelError(`"${file}" is damaged: tensor "${t.name}" ${problem}. Export the model again.`, { file });
    }
  }
}

/**
 * Reads EXTERNAL tensors into raw_data, so the rest of the app sees one self-contained model and can
 * hand it to onnxruntime as a buffer. Locations must stay inside the model's folder: a model file is
 * untrusted input and must not make us read arbitrary files.
 */
async function resolveExternalData(model: ModelProto, file: string, budget: number): Promise<number> {
  const external = allTensors(model).filter((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL);
  if (external.length === 0) return 0;
  const dir = await realpath(path.dirname(file));
  const handles = new Map<string, { fh: FileHandle; size: number }>();
  let total = 0;
  try {
    for (const t of external) {
      const entry = new Map(t.externalData.map((e) => [e.key, e.value]));
      const location = entry.get("location");
      const what = `tensor "${t.name}"`;
      if (!location) throw new ModelError(`"${file}" is damaged: ${what} is stored outside the file but does not say where. Export the model again.`, { file });
      const target = await externalPath(dir, location, file, what);
      const count = tensorElementCount(t);
      const need = rawByteLength(t.dataType, count);
      if (t.dims.some((d) => d < 0n) || count > MAX_TENSOR_ELEMENTS || need === undefined) {
        throw new ModelError(`"${file}" is damaged: ${what} ${tensorStorageProblem(t) ?? "has an impossible shape"}. Export the model again.`, { file });
      }
      const offset = parseByteField(entry.get("offset"), 0, file, what);
      const length = parseByteField(entry.get("length"), need, file, what);
      if (length !== need) {
        throw new ModelError(`"${file}" is damaged: ${what} has shape ${t.dims.join(" x ")} (${need} bytes) but its external data is ${length} bytes. Export the model again.`, { file });
      }
      total += need;
      if (total > budget) throw new ModelError(`"${file}" and its external data exceed ${formatBytes(budget)}; Nibble cannot load a model this large.`, { file });
      let h = handles.get(target);
      if (!h) {
        const fh = await open(target, "r").catch((err: unknown) => {
          throw fsError(err, target, "open", `the external data of "${file}" (${what})`);
        });
        h = { fh, size: (await fh.stat()).size };
        handles.set(target, h);
      }
      if (offset + need > h.size) {
        throw new ModelError(
          `The external data file "${target}" of "${file}" is too short: ${what} needs bytes ${offset} to ${offset + need} but the file has ${h.size}. ` +
            `It was not copied completely; copy it again next to the model.`,
          { file },
        );
      }
      t.rawData = await readExactly(h.fh, offset, need, target);
      // Cleared rather than set to DEFAULT, so the tensor encodes exactly like one saved inline.
      clearField(t, TensorProtoSchema.field.dataLocation);
      t.externalData = [];
    }
  } finally {
    for (const h of handles.values()) await h.fh.close();
  }
  return total;
}

async function externalPath(dir: string, location: string, file: string, what: string): Promise<string> {
  const refuse = (): never => {
    throw new ModelError(
      `"${file}" asks to read ${what} from "${location}", outside the model's folder. Nibble only reads external data stored next to the model; ` +
        `move the data file into the model's folder and fix the model, or re-export it.`,
      { file },
    );
  };
  const parts = location.split(/[\\/]/);
  if (path.isAbsolute(location) || path.win32.isAbsolute(location) || parts.includes("..") || location.includes("\0")) refuse();
  const target = path.resolve(dir, location);
  let real: string;
  try {
    real = await realpath(target);
  } catch (err) {
    throw fsError(err, target, "open", `the external data of "${file}" (${what})`);
  }
  // A symbolic link inside the folder could still point elsewhere.
  const rel = path.relative(dir, real);
  if (rel.startsWith("..") || path.isAbsolute(rel)) refuse();
  return real;
}

function parseByteField(value: string | undefined, fallback: number, file: string, what: string): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) > Number.MAX_SAFE_INTEGER) {
    throw new ModelError(`"${file}" is damaged: ${what} has an invalid external data offset or length ("${value}"). Export the model again.`, { file });
  }
  return Number(value);
}

/** The model as ONNX bytes, e.g. for onnxruntime's InferenceSession.create(buffer). */
export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

/** Writes the model with atomicWrite and returns the number of bytes written. */
export async function saveModelAtomic(model: ModelProto, target: string): Promise<number> {
  const bytes = encodeModel(model);
  if (bytes.length > PROTOBUF_LIMIT) {
    throw new ModelError(`Could not save "${path.resolve(target)}": the model is ${formatBytes(bytes.length)}, more than one ONNX file can hold (2 GiB).`, { file: target });
  }
  await atomicWrite(target, bytes);
  return bytes.length;
}

/**
 * Leaves `target` either holding exactly `data` or untouched: writes a temp file in the same folder
 * (same filesystem, so the rename is atomic), fsyncs it, then renames it over the target. Failures
 * remove the temp file and become a ModelError a user can act on (disk full, no permission, ...).
 */
export async function atomicWrite(target: string, data: Uint8Array): Promise<void> {
  const abs = path.resolve(target);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, "wx");
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, abs);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw fsError(err, abs, "save");
  }
  await syncFolder(path.dirname(abs));
}

// Makes the rename itself durable. Not every platform can fsync a directory (Windows cannot), and
// the file is already complete, so failure here is not an error.
async function syncFolder(dir: string): Promise<void> {
  try {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // see above
  }
}

function fsError(err: unknown, file: string, action: "open" | "save", subject = `"${file}"`): ModelError {
  const code = (err as NodeJS.ErrnoException).code;
  const cause = { file, cause: err };
  if (action === "save") {
    const head = `Could not save "${file}":`;
    switch (code) {
      case "ENOSPC": case "EDQUOT": case "EFBIG":
        return new ModelError(`${head} the disk is full (or your quota is used up). Free some space or choose another drive, then save again.`, cause);
      case "ENOENT": case "ENOTDIR":
        return new ModelError(`${head} the folder "${path.dirname(file)}" does not exist. Choose an existing folder.`, cause);
      case "EACCES": case "EPERM": case "EROFS":
        return new ModelError(`${head} you do not have permission to write there. Choose another folder.`, cause);
      case "EISDIR": case "ENOTEMPTY": case "EEXIST":
        return new ModelError(`${head} a folder with that name already exists. Choose another file name.`, cause);
      default:
        return new ModelError(`${head} ${(err as Error).message}`, cause);
    }
  }
  switch (code) {
    case "ENOENT": case "ENOTDIR":
      return new ModelError(`Could not find ${subject}. Check that the file exists and the path is right.`, cause);
    case "EACCES": case "EPERM":
      return new ModelError(`You do not have permission to read ${subject}. Check the file's permissions.`, cause);
    case "EISDIR":
      return new ModelError(`${subject} is a folder, not a file.`, cause);
    default:
      return new ModelError(`Could not read ${subject}: ${(err as Error).message}`, cause);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ["KB", "MB", "GB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
