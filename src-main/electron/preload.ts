// The only bridge between the sandboxed page and the main process: one narrow, typed API (shared/ipc.ts).
// No Node or Electron object reaches the page; every call is re-validated in the main process.
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from "electron";
import type { JobEvent } from "../../shared/engine-api.ts";
import { IPC, type ApiMethod, type DesktopBridge, type ShellCommand } from "../../shared/ipc.ts";

const call =
  <T>(method: ApiMethod) =>
  (arg: unknown): Promise<T> =>
    ipcRenderer.invoke(IPC.call(method), arg) as Promise<T>;

function subscribe<T>(channel: string, listener: (value: T) => void): () => void {
  const handler = (_e: IpcRendererEvent, value: T) => listener(value);
  ipcRenderer.on(channel, handler);
  return () => ipcRenderer.removeListener(channel, handler);
}

const bridge: DesktopBridge = {
  inspect: call("inspect"),
  previewData: call("previewData"),
  startJob: call("startJob"),
  cancelJob: call("cancelJob"),
  exportModel: call("exportModel"),
  exportReport: call("exportReport"),
  onEvent: (l) => subscribe<JobEvent>(IPC.event, l),
  onCommand: (l) => subscribe<ShellCommand>(IPC.command, l),
  choose: (req) => ipcRenderer.invoke(IPC.dialog, req) as Promise<string | null>,
  // The path comes from Chromium's record of a real drop, never from the page.
  async registerDrop(file) {
    const p = webUtils.getPathForFile(file);
    return p ? ((await ipcRenderer.invoke(IPC.drop, p)) as string | null) : null;
  },
  reveal: (p) => ipcRenderer.invoke(IPC.reveal, p) as Promise<void>,
};

contextBridge.exposeInMainWorld("nibble", bridge);
