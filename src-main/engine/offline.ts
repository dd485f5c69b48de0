// Nothing leaves the machine. onnxruntime-node 1.29 and later sends usage telemetry to Microsoft
// (mobile.events.data.microsoft.com) from Linux and macOS, and keeps a device id (.ses) and a log in the
// temp folder, unless ORT_DISABLE_TELEMETRY=1 is in the process environment when the runtime starts.
// Import this module before onnxruntime-node loads. Native code reads the real process environment, which
// only the main thread can change (a worker thread's process.env is a private copy): the engine service
// imports this first, before it starts any worker.
process.env.ORT_DISABLE_TELEMETRY = "1";

export {};
