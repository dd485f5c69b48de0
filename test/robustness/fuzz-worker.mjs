// Worker entry of the fuzzer (see fuzz-core.ts): register tsx's loader in this thread, then start.
import { register } from "tsx/esm/api";
register();
await import("./fuzz-target.ts");
