// The desktop window through Playwright's Electron support. It needs Electron's binary, which cannot be
// downloaded on every machine (CI here has none): then the test is skipped and says why.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { _electron as electron } from "playwright";
import { electronBinary } from "../../src-main/electron/binary.ts";
import { REPO, screenshot } from "./web-helpers.ts";

const bin = electronBinary();
const skip = bin ? false : "Electron's binary is not installed (its download is not possible on this machine); the same UI is tested through the web host.";

test("the desktop app opens a sandboxed window with the app and only the narrow bridge", { skip }, async () => {
  execFileSync(process.execPath, ["--import", "tsx", "scripts/build-electron.ts"], { cwd: REPO, stdio: "inherit" });
  const app = await electron.launch({ executablePath: bin as string, args: [REPO], cwd: REPO });
  try {
    const win = await app.firstWindow();
    await win.getByTestId("screen-model").waitFor({ timeout: 60_000 });
    const page = await win.evaluate(() => ({
      bridge: Object.keys((window as unknown as { nibble: object }).nibble).sort(),
      node: typeof (globalThis as { require?: unknown }).require,
      process: typeof (globalThis as { process?: unknown }).process,
      origin: location.origin,
    }));
    assert.deepEqual(page.bridge, ["cancelJob", "choose", "exportModel", "exportReport", "inspect", "onCommand", "onEvent", "previewData", "registerDrop", "reveal", "startJob"]);
    assert.equal(page.node, "undefined");
    assert.equal(page.process, "undefined");
    assert.equal(page.origin, "app://nibble");
    // A path the user never chose is refused by the main process.
    const refused = await win.evaluate(() => (window as unknown as { nibble: { inspect(p: string): Promise<unknown> } }).nibble.inspect("/etc/passwd").then(() => "accepted", (e: Error) => e.message));
    assert.match(refused, /was not chosen/);
    // No request leaves the app.
    const blocked = await win.evaluate(() => fetch("https://example.com/").then(() => "fetched", () => "blocked"));
    assert.equal(blocked, "blocked");
    await screenshot(win, "08-electron");
  } finally {
    await app.close();
  }
});
