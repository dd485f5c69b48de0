// The loopback host's defences, tested over real sockets: token, Host and Origin checks, asset path
// traversal, body size limit, loopback-only binding, and the picker and API refusing paths outside the roots.
import assert from "node:assert/strict";
import { mkdtemp, mkdir, realpath, rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { HTTP } from "../../shared/ipc.ts";
import { createRootPolicy } from "../../src-main/host/roots.ts";
import { startHost, type RunningHost } from "../../src-main/host/server.ts";
import { createEngineService } from "../../src-main/service/index.ts";
import { jsonPost, rawRequest, type RawRequest, type Reply } from "../helpers/http.ts";

let tmp: string;
let root: string;
let outside: string;
let host: RunningHost;
const service = createEngineService();

/** Raw HTTP to this suite's host (see test/helpers/http.ts). */
function request(opts: RawRequest): Promise<Reply> {
  return rawRequest(host.port, opts);
}

const auth = () => ({ [HTTP.tokenHeader]: host.token });
const json = (body: unknown) => jsonPost(host.token, body);

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "nibble-host-"));
  root = path.join(tmp, "root");
  outside = path.join(tmp, "outside");
  const assets = path.join(tmp, "assets");
  await mkdir(path.join(root, "data"), { recursive: true });
  await mkdir(outside);
  await mkdir(path.join(assets, "assets"), { recursive: true });
  await writeFile(path.join(assets, "index.html"), "<!doctype html><title>Nibble</title>");
  await writeFile(path.join(assets, "assets", "app.js"), "export {};");
  await writeFile(path.join(outside, "secret.txt"), "secret");
  await writeFile(path.join(tmp, "sibling.txt"), "secret");
  await writeFile(path.join(root, "data", "model.onnx"), "not really a model");
  // A link inside the root that leads outside it must not open a way out.
  await symlink(outside, path.join(root, "escape"));
  await symlink(path.join(outside, "secret.txt"), path.join(assets, "leak.txt"));
  const policy = await createRootPolicy([root]);
  host = await startHost({ service, policy, home: policy.roots[0], assetsDir: assets, port: 0 });
});

after(async () => {
  await host.close();
  await service.close();
  await rm(tmp, { recursive: true, force: true });
});

test("the printed URL has the documented form and a long random token", () => {
  assert.match(host.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
});

test("it listens on 127.0.0.1 only", async () => {
  const other = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === "IPv4" && !i.internal);
  const targets = ["::1", ...(other ? [other.address] : [])];
  for (const address of targets) {
    const refused = await new Promise<boolean>((resolve) => {
      const req = http.request({ host: address, port: host.port, path: "/", timeout: 2000 }, () => resolve(false));
      req.on("error", () => resolve(true));
      req.on("timeout", () => {
        req.destroy();
        resolve(true);
      });
      req.end();
    });
    assert.ok(refused, `reachable on ${address}`);
  }
});

test("without the token every route is refused", async () => {
  for (const p of ["/", "/index.html", "/assets/app.js", HTTP.info, HTTP.events, `${HTTP.download}?path=/etc/passwd`]) {
    const r = await request({ path: p });
    assert.equal(r.status, 403, p);
    assert.doesNotMatch(r.body, /Nibble<\/title>/);
  }
  const wrong = await request({ path: "/", headers: { [HTTP.tokenHeader]: "x".repeat(43) } });
  assert.equal(wrong.status, 403);
  const post = await request({ path: HTTP.call("inspect"), method: "POST", headers: { "content-type": "application/json" }, body: "\"/x.onnx\"" });
  assert.equal(post.status, 403);
});

test("the token in the URL moves into an HttpOnly SameSite cookie, which then authorises", async () => {
  const first = await request({ path: `/?token=${host.token}` });
  assert.equal(first.status, 303);
  assert.equal(first.headers.location, "/");
  const cookie = String(first.headers["set-cookie"]);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  const page = await request({ path: "/", headers: { cookie: cookie.split(";")[0] } });
  assert.equal(page.status, 200);
  assert.match(page.body, /Nibble<\/title>/);
  // Only the start page takes the token from the query; everything else needs the cookie or header.
  const api = await request({ path: `${HTTP.info}?token=${host.token}` });
  assert.equal(api.status, 403);
});

test("a foreign Host header is refused even with the token (DNS rebinding)", async () => {
  for (const h of ["evil.example:80", `evil.example:${host.port}`, "127.0.0.1", `127.0.0.1.nip.io:${host.port}`, `localhost:${host.port + 1}`]) {
    const r = await request({ path: "/", host: h, headers: auth() });
    assert.equal(r.status, 403, h);
  }
  const ok = await request({ path: "/", host: `localhost:${host.port}`, headers: auth() });
  assert.equal(ok.status, 200);
});

test("a foreign Origin is refused even with the token", async () => {
  for (const o of ["http://evil.example", `http://127.0.0.1:${host.port + 1}`, "null", `https://127.0.0.1:${host.port}`]) {
    const r = await request({ path: HTTP.info, headers: { ...auth(), origin: o } });
    assert.equal(r.status, 403, o);
  }
  const same = await request({ path: HTTP.info, headers: { ...auth(), origin: `http://127.0.0.1:${host.port}` } });
  assert.equal(same.status, 200);
});

test("responses carry a strict CSP and no-sniff headers", async () => {
  const r = await request({ path: "/", headers: auth() });
  const csp = String(r.headers["content-security-policy"]);
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /connect-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal(r.headers["x-content-type-options"], "nosniff");
  assert.equal(r.headers["x-frame-options"], "DENY");
});

test("only the renderer's own assets are served: traversal, encoded traversal and links out are refused", async () => {
  assert.equal((await request({ path: "/assets/app.js", headers: auth() })).status, 200);
  for (const p of [
    "/../outside/secret.txt",
    "/..%2f..%2foutside%2fsecret.txt",
    "/%2e%2e/%2e%2e/sibling.txt",
    "/assets/..%2f..%2fsibling.txt",
    "/..\\..\\sibling.txt",
    "/%5c..%5csibling.txt",
    "/leak.txt",
    "/assets",
    "/%00index.html",
    "/%E0%A4%A",
  ]) {
    const r = await request({ path: p, headers: auth() });
    assert.ok(r.status === 404 || r.status === 400, `${p} -> ${r.status}`);
    assert.doesNotMatch(r.body, /secret/);
  }
});

test("request bodies over the limit are refused with 413", async () => {
  const big = JSON.stringify({ dir: "/" + "a".repeat(HTTP.maxBodyBytes) });
  const r = await request({ path: HTTP.browse, method: "POST", headers: { ...auth(), "content-type": "application/json" }, body: big });
  assert.equal(r.status, 413);
});

test("API calls must be JSON POSTs with valid payloads", async () => {
  const get = await request({ path: HTTP.call("inspect"), headers: auth() });
  assert.equal(get.status, 405);
  const form = await request({ path: HTTP.call("inspect"), method: "POST", headers: { ...auth(), "content-type": "text/plain" }, body: "\"/x\"" });
  assert.equal(form.status, 415);
  const bad = await request({ path: HTTP.call("inspect"), method: "POST", headers: { ...auth(), "content-type": "application/json" }, body: "{not json" });
  assert.equal(bad.status, 400);
  const relative = await request({ path: HTTP.call("inspect"), ...json("model.onnx") });
  assert.equal(relative.status, 400);
  assert.match(JSON.parse(relative.body).error, /absolute path/);
  const job = await request({ path: HTTP.call("startJob"), ...json({ kind: "quantize", model: path.join(root, "data", "model.onnx"), calibDir: root, evalDir: null, preprocess: { preset: "imagenet" }, config: { wBits: 99 } }) });
  assert.equal(job.status, 400);
  const unknown = await request({ path: "/api/call/constructor", ...json({}) });
  assert.equal(unknown.status, 404);
});

test("the picker lists inside the roots only, and links out of a root are refused", async () => {
  const list = await request({ path: HTTP.browse, ...json({ dir: null }) });
  assert.equal(list.status, 200);
  const listing = JSON.parse(list.body);
  assert.equal(listing.parent, null);
  assert.deepEqual(
    listing.entries.map((e: { name: string }) => e.name),
    ["data", "escape"],
  );
  for (const dir of [outside, tmp, "/", path.join(root, ".."), path.join(root, "escape")]) {
    const r = await request({ path: HTTP.browse, ...json({ dir }) });
    assert.equal(r.status, 403, dir);
    assert.match(JSON.parse(r.body).error, /outside the folders Nibble was started with/);
  }
  const sub = JSON.parse((await request({ path: HTTP.browse, ...json({ dir: path.join(root, "data") }) })).body);
  assert.equal(sub.parent, await realpath(root));
});

test("engine calls with paths outside the roots are refused before they reach the engine", async () => {
  const read = await request({ path: HTTP.call("inspect"), ...json(path.join(outside, "secret.txt")) });
  assert.equal(read.status, 403);
  const viaLink = await request({ path: HTTP.call("inspect"), ...json(path.join(root, "escape", "secret.txt")) });
  assert.equal(viaLink.status, 403);
  const preview = await request({ path: HTTP.call("previewData"), ...json({ dir: "/etc", model: path.join(root, "data", "model.onnx"), preprocess: { preset: "imagenet" }, count: 4 }) });
  assert.equal(preview.status, 403);
  const write = await request({ path: HTTP.call("exportModel"), ...json({ jobId: "abc", path: path.join(outside, "model.onnx") }) });
  assert.equal(write.status, 403);
  const writeViaLink = await request({ path: HTTP.call("exportReport"), ...json({ jobId: "abc", path: path.join(root, "escape", "r.html"), format: "html" }) });
  assert.equal(writeViaLink.status, 403);
});

test("downloads serve only files this session exported", async () => {
  for (const p of [path.join(root, "data", "model.onnx"), path.join(outside, "secret.txt"), "/etc/passwd"]) {
    const r = await request({ path: `${HTTP.download}?path=${encodeURIComponent(p)}`, headers: auth() });
    assert.equal(r.status, 404, p);
  }
});
