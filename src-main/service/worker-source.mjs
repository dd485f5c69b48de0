// Worker entry when running from TypeScript sources: register tsx's loader in this thread, then start.
import { register } from "tsx/esm/api";
register();
await import("./worker.ts");
