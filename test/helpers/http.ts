// Raw HTTP to the loopback host, so Host and Origin headers are exactly what a test says (fetch would
// fill them in). Shared by the host security tests and the bad-input tests.
import http from "node:http";
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
