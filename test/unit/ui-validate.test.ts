// Every payload from the renderer is rebuilt by shared/validate.ts: wrong types and ranges are refused
// with the field named, unknown fields are dropped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { apiArg, dialogRequest, pathsOf, ValidationError } from "../../shared/validate.ts";
import { defaultConfig } from "../../src-renderer/lib/presets.ts";

const quantize = {
  kind: "quantize",
  model: "/m/net.onnx",
  calibDir: "/d/calib",
  evalDir: null,
  preprocess: { preset: "imagenet" },
  config: defaultConfig(),
  calibLimit: 512,
};

test("a well-formed job passes through unchanged, minus fields nobody asked for", () => {
  const got = apiArg.startJob({ ...quantize, extra: "dropped", config: { ...defaultConfig(), sneaky: 1 } });
  assert.deepEqual(got, quantize);
  assert.deepEqual(pathsOf("startJob", got), { read: ["/m/net.onnx", "/d/calib"], write: [] });
});

test("wrong types, ranges and relative paths are refused, naming the field", () => {
  const cases: [unknown, RegExp][] = [
    [{ ...quantize, model: "net.onnx" }, /request\.model: must be an absolute path/],
    [{ ...quantize, config: { ...defaultConfig(), wBits: 1 } }, /config\.wBits: must be between 2 and 8/],
    [{ ...quantize, config: { ...defaultConfig(), aBits: 4.5 } }, /config\.aBits: expected a whole number/],
    [{ ...quantize, config: { ...defaultConfig(), methods: ["aciq", "magic"] } }, /methods\[1\]: must be one of/],
    [{ ...quantize, config: { ...defaultConfig(), keep: { conv1: "16" } } }, /keep\[conv1\]/],
    [{ ...quantize, preprocess: { preset: "imagenet", std: [1, 0, 1] } }, /std\[1\]: must be between/],
    [{ ...quantize, kind: "shell" }, /request\.kind/],
    [{ ...quantize, calibDir: "/d/\0x" }, /NUL/],
    [[], /expected an object/],
  ];
  for (const [payload, message] of cases) assert.throws(() => apiArg.startJob(payload), (e: Error) => e instanceof ValidationError && message.test(e.message), String(message));
});

test("ids, exports and dialogs are checked too", () => {
  assert.equal(apiArg.cancelJob("3f1c0e2a-77b1-4c1e-9b0e-0a5f3c2d1e4f"), "3f1c0e2a-77b1-4c1e-9b0e-0a5f3c2d1e4f");
  assert.throws(() => apiArg.cancelJob("../../x"), ValidationError);
  assert.deepEqual(pathsOf("exportReport", apiArg.exportReport({ jobId: "a1", path: "C:\\out\\r.html", format: "html" })), { read: [], write: ["C:\\out\\r.html"] });
  assert.throws(() => apiArg.exportReport({ jobId: "a1", path: "/r.pdf", format: "pdf" }), /format/);
  assert.throws(() => apiArg.previewData({ dir: "/d", model: "/m.onnx", preprocess: { preset: "raw255" }, count: 10_000 }), /count/);
  assert.deepEqual(dialogRequest({ kind: "save", title: "Save", extension: "onnx", defaultPath: "/m/x.onnx" }), { kind: "save", title: "Save", extension: "onnx", defaultPath: "/m/x.onnx" });
  assert.throws(() => dialogRequest({ kind: "save", title: "Save", extension: "../x" }), /extension/);
});
