// Raw HTTP to the loopback host, so Host and Origin headers are exactly what a test says (fetch would
// fill them in). Shared by the host security tests and the bad-input tests.
import http from "node:http";
import type { JobEvent } from "../../shared/engine-api.ts";
import { HTTP } from "../../shared/ipc.ts";

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RawRequest {
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** the Host header; default 127.0.0.1:port */
  host?: string;
}

export function rawRequest(port: number, opts: RawRequest): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: opts.method ?? "GET",
        path: opts.path,
        headers: { host: opts.host ?? `127.0.0.1:${port}`, ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The options of an authorised JSON POST with `body`. */
export function jsonPost(token: string, body: unknown): Pick<RawRequest, "method" | "headers" | "body"> {
  return { method: "POST", headers: { [HTTP.tokenHeader]: token, "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** Calls `onFrame` with each server-sent-events frame of `res` (the text between blank lines). */
export function readEventFrames(res: http.IncomingMessage, onFrame: (frame: string) => void): void {
  let buffer = "";
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      onFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  });
}

export interface EventStream {
  /** Resolves with the first done/error event of `jobId`, including one that arrived before this call. */
  finished(jobId: string): Promise<JobEvent>;
  close(): void;
}

/** Subscribes to the host's server-sent job events (GET /api/events with the token). */
export function openEvents(port: number, token: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const ended = new Map<string, JobEvent>();
    const waiting = new Map<string, (e: JobEvent) => void>();
    const req = http.request({ host: "127.0.0.1", port, path: HTTP.events, headers: { host: `127.0.0.1:${port}`, [HTTP.tokenHeader]: token } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`events: HTTP ${res.statusCode}`));
      readEventFrames(res, (frame) => {
        if (!frame.startsWith("data: ")) return;
        const e = JSON.parse(frame.slice(6)) as JobEvent;
        if (e.type === "progress") return;
        const w = waiting.get(e.jobId);
        if (w) w(e);
        else ended.set(e.jobId, e);
      });
      resolve({
        finished: (jobId) =>
          new Promise((done) => {
            const e = ended.get(jobId);
            if (e) done(e);
            else waiting.set(jobId, done);
          }),
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}
