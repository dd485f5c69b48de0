// One UI, two hosts: the Electron preload's window.nibble when present, otherwise HTTP + Server-Sent
// Events to the loopback host that served this page (the way Netron runs both as an app and in a browser).
import type { JobEvent, NibbleApi } from "../../shared/engine-api.ts";
import { API_METHODS, HTTP, type ApiMethod, type BrowseResult, type DesktopBridge, type DialogRequest, type HostInfo, type ShellCommand } from "../../shared/ipc.ts";

export interface Transport extends NibbleApi {
  kind: "desktop" | "web";
  onEvent(listener: (e: JobEvent) => void): () => void;
  onCommand(listener: (c: ShellCommand) => void): () => void;
  /** A user-chosen path (native dialog, or the in-app picker on the web); null when cancelled. */
  choose(req: DialogRequest): Promise<string | null>;
  /** The path of a dropped file; null where a browser cannot know it. */
  registerDrop(file: File): Promise<string | null>;
  /** How the user gets at a written file: a download link on the web, null on the desktop (reveal instead). */
  downloadUrl(path: string): string | null;
  reveal(path: string): Promise<void>;
}

/** The web host has no native dialogs; the UI registers its in-app picker here. */
export type Picker = (req: DialogRequest, host: WebHost) => Promise<string | null>;

export interface WebHost {
  info(): Promise<HostInfo>;
  browse(dir: string | null): Promise<BrowseResult>;
}

export class HostError extends Error {
  override name = "HostError";
}

declare global {
  interface Window {
    nibble?: DesktopBridge;
  }
}

function desktop(bridge: DesktopBridge): Transport {
  return {
    kind: "desktop",
    inspect: (p) => bridge.inspect(p),
    previewData: (r) => bridge.previewData(r),
    startJob: (r) => bridge.startJob(r),
    cancelJob: (id) => bridge.cancelJob(id),
    exportModel: (r) => bridge.exportModel(r),
    exportReport: (r) => bridge.exportReport(r),
    onEvent: (l) => bridge.onEvent(l),
    onCommand: (l) => bridge.onCommand(l),
    choose: (r) => bridge.choose(r),
    registerDrop: (f) => bridge.registerDrop(f),
    downloadUrl: () => null,
    reveal: (p) => bridge.reveal(p),
  };
}

async function post<T>(url: string, body: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new HostError("Nibble's local server is not answering. Check that `npm run web` is still running, then reload this page.");
  }
  const data = (await res.json().catch(() => null)) as { error?: string } | null;
  if (!res.ok) {
    if (res.status === 403 && !data?.error) throw new HostError("This page is no longer authorised. Open the address Nibble printed again.");
    throw new HostError(data?.error ?? `The local server answered ${res.status}.`);
  }
  return data as T;
}

function web(picker: () => Picker | null): Transport {
  const eventListeners = new Set<(e: JobEvent) => void>();
  let source: EventSource | null = null;
  const connect = () => {
    if (source) return;
    source = new EventSource(HTTP.events);
    source.onmessage = (m) => {
      const e = JSON.parse(m.data as string) as JobEvent;
      for (const l of eventListeners) l(e);
    };
  };
  const host: WebHost = {
    info: async () => {
      const res = await fetch(HTTP.info, { credentials: "same-origin" });
      if (!res.ok) throw new HostError("This page is no longer authorised. Open the address Nibble printed again.");
      return (await res.json()) as HostInfo;
    },
    browse: (dir) => post<BrowseResult>(HTTP.browse, { dir }),
  };
  const call = <M extends ApiMethod>(m: M) =>
    ((arg: unknown) => post(HTTP.call(m), arg)) as unknown as NibbleApi[M];
  const api = Object.fromEntries(API_METHODS.map((m) => [m, call(m)])) as unknown as NibbleApi;
  return {
    kind: "web",
    ...api,
    onEvent(l) {
      connect();
      eventListeners.add(l);
      return () => eventListeners.delete(l);
    },
    // The browser has no menu or drag-and-drop paths to send.
    onCommand: () => () => {},
    choose(req) {
      const p = picker();
      if (!p) throw new HostError("The file picker is not ready yet.");
      return p(req, host);
    },
    registerDrop: async () => null,
    downloadUrl: (p) => `${HTTP.download}?path=${encodeURIComponent(p)}`,
    reveal: async () => {},
  };
}

let registeredPicker: Picker | null = null;

export function setPicker(p: Picker): void {
  registeredPicker = p;
}

export const transport: Transport = typeof window !== "undefined" && window.nibble ? desktop(window.nibble) : web(() => registeredPicker);

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    // Electron wraps errors thrown in the main process: keep only what the engine said.
    return e.message.replace(/^Error invoking remote method '[^']+': (\w*Error: )?/, "");
  }
  return String(e);
}
