// Detection fidelity's parts against hand-computed cases, and its decoding on a real detector: UltraFace's FP32
// outputs on the faces fixtures (run directly in onnxruntime) must yield faces, as the model's own demo finds them.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { imageFeeder } from "../../src-main/engine/data/feeds.ts";
import { scanImages } from "../../src-main/engine/data/scan.ts";
import { DEFAULT_DETECTION, DetectionAccumulator, detectionsOf, findDetectorOutputs, iou, matchDetections, nms, type Detection } from "../../src-main/engine/pipeline/detection.ts";
import { openSession, runFeeds, tensorValues } from "../../src-main/engine/pipeline/runtime.ts";

const fixtures = path.resolve(import.meta.dirname, "../../../shared/fixtures");
const det = (cls: number, score: number, box: Detection["box"]): Detection => ({ cls, score, box });

describe("detection parts", () => {
  test("IoU of corner boxes", () => {
    assert.equal(iou([0, 0, 2, 2], [1, 1, 3, 3]), 1 / 7);
    assert.equal(iou([0, 0, 1, 1], [2, 2, 3, 3]), 0);
    assert.equal(iou([0, 0, 1, 1], [0, 0, 1, 1]), 1);
  });
  test("NMS keeps the best of overlapping boxes per class, never across classes", () => {
    const kept = nms([det(1, 0.8, [0, 0, 2, 2]), det(1, 0.9, [0.1, 0, 2.1, 2]), det(2, 0.85, [0, 0, 2, 2]), det(1, 0.75, [5, 5, 6, 6])], 0.45);
    assert.deepEqual(kept.map((d) => d.score), [0.9, 0.85, 0.75]);
  });
  test("matching uses each candidate once, same class, IoU at the threshold", () => {
    const ref = [det(1, 0.9, [0, 0, 2, 2]), det(1, 0.8, [0.2, 0, 2.2, 2]), det(1, 0.7, [5, 5, 6, 6])];
    assert.equal(matchDetections(ref, [det(1, 0.9, [0, 0, 2, 2])], 0.5), 1);
    assert.equal(matchDetections(ref, [det(2, 0.9, [0, 0, 2, 2])], 0.5), 0);
    assert.equal(matchDetections([det(1, 0.9, [0, 0, 2, 2])], [det(1, 0.9, [1, 0, 3, 2])], 1 / 3), 1);
    assert.equal(matchDetections([det(1, 0.9, [0, 0, 2, 2])], [det(1, 0.9, [1, 0, 3, 2])], 0.34), 0);
  });
  test("the outputs of a detector are found by shape, names breaking ties", () => {
    const io = (name: string, shape: (number | string)[]) => ({ name, elemType: "float32", shape });
    assert.deepEqual(findDetectorOutputs([io("scores", [1, 4420, 2]), io("boxes", [1, 4420, 4])]), { scores: "scores", boxes: "boxes" });
    assert.deepEqual(findDetectorOutputs([io("a", ["N", "A", 4]), io("b", ["N", "A", 3])]), { scores: "b", boxes: "a" });
    assert.equal(findDetectorOutputs([io("logits", [1, 1000])]), null);
    assert.equal(findDetectorOutputs([io("scores", [1, 100, 2]), io("boxes", [1, 200, 4])]), null);
  });
});

describe("UltraFace (RFB-320) FP32 outputs on the faces fixtures", () => {
  test("decode to faces in every photo, and identical outputs keep all of them", async () => {
    const model = path.join(fixtures, "models", "ultraface-rfb-320.onnx");
    const session = await openSession(model);
    const set = await scanImages(path.join(fixtures, "faces"));
    const feeder = imageFeeder(set, { name: "input", layout: "NCHW", channels: 3, height: 240, width: 320, fixedBatch: 1 }, { preset: "custom", mean: [127, 127, 127], std: [128, 128, 128], scale: 1 });
    const acc = new DetectionAccumulator({ scores: "scores", boxes: "boxes" }, DEFAULT_DETECTION);
    let withFaces = 0;
    try {
      for await (const b of feeder.batches(1)) {
        const out = await runFeeds(session, b.feeds, ["scores", "boxes"]);
        const scores = tensorValues(out.scores);
        const boxes = tensorValues(out.boxes);
        const faces = detectionsOf(scores, boxes, 0, 4420, 2, DEFAULT_DETECTION);
        if (faces.length > 0) withFaces++;
        for (const f of faces) assert.ok(f.box[0] < f.box[2] && f.box[1] < f.box[3] && f.box[0] > -0.1 && f.box[2] < 1.1, JSON.stringify(f));
        acc.add({ scores, boxes }, { scores, boxes }, 1, out.scores.dims);
      }
    } finally {
      await session.release();
    }
    assert.equal(withFaces, set.files.length, "a face in each of the photographs of people");
    const r = acc.result();
    assert.equal(r.kept, r.fp32Detections);
    assert.equal(r.keptPercent, 100);
    assert.equal(r.extra, 0);
  });
});
