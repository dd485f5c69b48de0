import { DataError } from "../engine/data/errors.ts";
import { ModelError } from "../engine/onnx/errors.ts";
import { CancelledError } from "../engine/pipeline/progress.ts";

/** The message a user sees: our own errors already say what to do; anything else is wrapped so it does. */
export function describeError(err: unknown, aborted: boolean): { message: string; cancelled: boolean } {
  if (err instanceof CancelledError || aborted) return { message: "Cancelled. Nothing was written.", cancelled: true };
  if (err instanceof ModelError || err instanceof DataError) return { message: err.message, cancelled: false };
  const text = err instanceof Error ? err.message : String(err);
  return {
    message: `The engine stopped with an unexpected error: ${text}. Check the model and the image folders; if it happens again, report it with the model's inspect output.`,
    cancelled: false,
  };
}
