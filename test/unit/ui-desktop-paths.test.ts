// The desktop main process's path policy, without Electron: only user-chosen paths are read, only
// save-dialog paths are written, and an input can never be overwritten.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PathNotChosenError, UserPaths } from "../../src-main/electron/user-paths.ts";

test("reads need a path the user chose; lookalikes and parents do not count", () => {
  const p = new UserPaths();
  p.allowRead("/home/u/models/net.onnx");
  p.allowRead("/home/u/data/calib/");
  p.checkRead("/home/u/models/net.onnx");
  p.checkRead("/home/u/models/../models/net.onnx");
  p.checkRead("/home/u/data/calib");
  for (const bad of ["/home/u/models", "/home/u/models/other.onnx", "/etc/passwd", "/home/u/data/calib/../../.ssh/id_rsa"]) {
    assert.throws(() => p.checkRead(bad), PathNotChosenError, bad);
  }
});

test("writes need a save-dialog path, and never an input's path", () => {
  const p = new UserPaths();
  p.allowRead("/home/u/models/net.onnx");
  p.allowWrite("/home/u/models/net-w4a4.onnx");
  p.checkWrite("/home/u/models/net-w4a4.onnx");
  assert.throws(() => p.checkWrite("/home/u/models/net-w4a4.html"), /save dialog/);
  p.allowWrite("/home/u/models/net.onnx");
  assert.throws(() => p.checkWrite("/home/u/models/net.onnx"), /one of your inputs/);
  assert.throws(() => p.checkRead("/home/u/models/net-w4a4.onnx"), PathNotChosenError);
});
