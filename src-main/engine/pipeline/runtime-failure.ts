// When onnxruntime fails on a model Nibble derived from the user's file, the fault is either the file's
// (operators that do not fit together: channel counts, shapes, unknown operators) or Nibble's own. One run
// of the user's file exactly as it is tells them apart: if that fails too, the user gets a ModelError that
// says so; otherwise the original error stays what it is, an unexpected one.
import { DataError } from "../data/errors.ts";
import { ModelError } from "../onnx/errors.ts";
import { CancelledError } from "./progress.ts";
import { closeSession, openSession, runFeeds, type Feeds, type ort } from "./runtime.ts";

/** The error to report for `err`, raised by onnxruntime while running a model derived from `file`. */
export async function explainRuntimeFailure(err: unknown, file: string, feeds: Feeds): Promise<unknown> {
  if (err instanceof ModelError || err instanceof DataError || err instanceof CancelledError) return err;
  const failure = await originalFailure(file, feeds);
  if (!failure) return err;
  return new ModelError(
    `onnxruntime cannot run "${file}" as it is, so Nibble cannot measure or quantize it: ${failure.replace(/\s+$/, "").replace(/\.$/, "")}. ` +
      `The model's operators do not fit together (the file is damaged or was edited by hand); export it again from the original framework.`,
    { file, cause: err },
  );
}

/** onnxruntime's message for `feeds` (one sample) run through the user's own file, or null when it runs. */
async function originalFailure(file: string, feeds: Feeds): Promise<string | null> {
  let session: ort.InferenceSession | null = null;
  try {
    session = await openSession(file);
    await runFeeds(session, feeds, session.outputNames);
    return null;
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    // onnxruntime prefixes load errors with the path, which the message names already
    return (e instanceof Error ? e.message : String(e)).replace(/^Load model from .* failed:\s*/, "");
  } finally {
    await closeSession(session).catch(() => undefined);
  }
}
