// The loopback web host: serves the built renderer and the engine API to a browser on this machine only.
// Any web page the user visits can send requests to 127.0.0.1, so every request must prove it came from
// the page this host served: a per-run token (cookie or header), an exact Host header (against DNS
// rebinding) and, when the browser sends one, a same-origin Origin header.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { HTTP, isApiMethod, type ApiMethod, type HostInfo } from "../../shared/ipc.ts";
import { apiArg, browseRequest, pathsOf, ValidationError, type ApiArg } from "../../shared/validate.ts";
import { CSP, mimeOf, resolveAsset } from "./assets.ts";
import { browse } from "./browse.ts";
import type { EngineService } from "../service/index.ts";
import { OutsideRootsError, type RootPolicy } from "./roots.ts";

export interface HostOptions {
  service: EngineService;
  policy: RootPolicy;
  /** where the picker starts; must be inside the roots */
  home: string;
  /** the built renderer (src-renderer/dist) */
  assetsDir: string;
  /** 0 = any free port */
  port: number;
}

export interface RunningHost {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: http.IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function send(res: http.ServerResponse, status: number, body: string, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, "cache-control": "no-store", ...extra });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), "application/json; charset=utf-8");
}

function readBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) return reject(new HttpError(413, `The request is larger than ${limit} bytes.`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        // Stop reading; the connection is closed once the 413 has been sent (see the error handler).
        req.pause();
        reject(new HttpError(413, `The request is larger than ${limit} bytes.`));
      } else chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new HttpError(400, "The request body is not valid JSON."));
      }
    });
    req.on("error", reject);
  });
}

export async function startHost(opts: HostOptions): Promise<RunningHost> {
  const token = randomBytes(32).toString("base64url");
  const assetsRoot = await realpath(opts.assetsDir);
  /** files this host wrote on the user's request: the only files it will send back as downloads */
  const exported = new Set<string>();
  const streams = new Set<http.ServerResponse>();
  let allowedHosts: string[] = [];
  let allowedOrigins: string[] = [];

  const unsubscribe = opts.service.onEvent((e) => {
    const frame = `data: ${JSON.stringify(e)}\n\n`;
    for (const s of streams) s.write(frame);
  });

  function authorised(req: http.IncomingMessage, url: URL): "header" | "cookie" | "query" | null {
    const header = req.headers[HTTP.tokenHeader];
    if (typeof header === "string" && sameToken(header, token)) return "header";
    const c = cookie(req, HTTP.tokenCookie);
    if (c !== null && sameToken(c, token)) return "cookie";
    // The query form exists only for the printed start address, which trades it for the cookie.
    const q = url.searchParams.get("token");
    if (req.method === "GET" && url.pathname === "/" && q !== null && sameToken(q, token)) return "query";
    return null;
  }

  async function serveAsset(res: http.ServerResponse, pathname: string, head: boolean): Promise<void> {
    const real = await resolveAsset(assetsRoot, pathname);
    if (!real) throw new HttpError(404, "Not found.");
    const st = await stat(real);
    // Hashed build assets never change; index.html must always be fresh.
    const cache = pathname.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-store";
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": mimeOf(real), "content-length": String(st.size), "cache-control": cache });
    if (head) res.end();
    else createReadStream(real).pipe(res);
  }

  async function checkPaths<M extends ApiMethod>(method: M, arg: ApiArg<M>): Promise<void> {
    const { read, write } = pathsOf(method, arg);
    for (const p of read) await opts.policy.readable(p);
    for (const p of write) await opts.policy.writable(p);
  }

  async function call(method: ApiMethod, body: unknown): Promise<unknown> {
    const arg = apiArg[method](body);
    await checkPaths(method, arg);
    const result = await (opts.service[method] as (a: typeof arg) => Promise<unknown>).call(opts.service, arg);
    if (method === "exportModel" || method === "exportReport") exported.add(await realpath((result as { path: string }).path));
    return result;
  }

  async function download(res: http.ServerResponse, url: URL): Promise<void> {
    const p = url.searchParams.get("path") ?? "";
    const real = await realpath(p).catch(() => null);
    if (!real || !exported.has(real)) throw new HttpError(404, "Only files exported in this session can be downloaded.");
    const st = await stat(real);
    const name = path.basename(real).replace(/[^\w.-]/g, "_");
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "application/octet-stream",
      "content-length": String(st.size),
      "content-disposition": `attachment; filename="${name}"`,
      "cache-control": "no-store",
    });
    createReadStream(real).pipe(res);
  }

  function events(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    res.write(": connected\n\n");
    streams.add(res);
    // A comment every 15 s keeps proxies and idle timers from closing the stream.
    const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
    req.on("close", () => {
      clearInterval(ping);
      streams.delete(res);
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!allowedHosts.includes(req.headers.host ?? "")) throw new HttpError(403, "Unknown Host header.");
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.includes(origin)) throw new HttpError(403, "Foreign Origin.");
    const url = new URL(req.url ?? "/", `http://${req.headers.host}`);
    const auth = authorised(req, url);
    if (!auth) {
      throw new HttpError(403, "This address needs the token that Nibble printed when it started. Open the full address it printed.");
    }
    // The token arrives once in the printed URL; it moves to a cookie and out of the address bar.
    if (auth === "query") {
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        location: "/",
        "set-cookie": `${HTTP.tokenCookie}=${token}; HttpOnly; SameSite=Strict; Path=/`,
        "cache-control": "no-store",
      });
      res.end();
      return;
    }
    const { pathname } = url;
    if (req.method === "GET" && pathname === HTTP.events) return events(req, res);
    if (req.method === "GET" && pathname === HTTP.download) return download(res, url);
    if (req.method === "GET" && pathname === HTTP.info) {
      const info: HostInfo = { roots: opts.policy.roots, home: opts.home };
      return sendJson(res, 200, info);
    }
    if (pathname.startsWith("/api/")) {
      if (req.method !== "POST") throw new HttpError(405, "Use POST.");
      // A JSON content type cannot be sent cross-site without a CORS preflight, which this host never grants.
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) throw new HttpError(415, "Send JSON.");
      const body = await readBody(req, HTTP.maxBodyBytes);
      if (pathname === HTTP.browse) return sendJson(res, 200, await browse(opts.policy, browseRequest(body).dir, opts.home));
      const method = pathname.slice("/api/call/".length);
      if (!pathname.startsWith("/api/call/") || !isApiMethod(method)) throw new HttpError(404, "Unknown API method.");
      return sendJson(res, 200, await call(method, body));
    }
    if (req.method === "GET" || req.method === "HEAD") return serveAsset(res, pathname, req.method === "HEAD");
    throw new HttpError(405, "Method not allowed.");
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status =
        err instanceof HttpError ? err.status : err instanceof ValidationError ? 400 : err instanceof OutsideRootsError ? 403 : 500;
      const message = err instanceof Error ? err.message : String(err);
      if (res.headersSent) return res.destroy();
      if (status === 413) {
        res.setHeader("connection", "close");
        res.on("finish", () => req.destroy());
      }
      sendJson(res, status, { error: message });
    });
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  allowedOrigins = allowedHosts.map((h) => `http://${h}`);

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    async close() {
      unsubscribe();
      for (const s of streams) s.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
