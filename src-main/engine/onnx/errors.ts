// Every problem with a model file the user gave us surfaces as a ModelError, so hosts can show its
// message as-is: it names the file and says what to do, and never leaks a stack trace into the UI.

export class ModelError extends Error {
  override readonly name = "ModelError";
  /** The model file the problem is about, when there is one. */
  readonly file: string | undefined;

  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.file = options.file;
  }
}
