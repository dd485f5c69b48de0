// The shape of a conversion rule, and what a rule may ask of the graph it rewrites. A rule is data: for
// one operator, the opset versions at which its signature or meaning changed, each with the small edit
// that carries a node from the previous version to that one (as onnx's version_converter adapters do).
import type { AttributeProto, NodeProto, TensorProto } from "onnx-buf";

export interface Step {
  /** the operator set whose version of the operator this step produces */
  to: number;
  /**
   * Rewrites `node` from the operator's previous version. Returns false when the node needed nothing,
   * the nodes that take its place when it becomes several (they may include `node` itself), or nothing
   * when it was edited in place. Nodes it returns are already in their opset-21 form.
   */
  apply(node: NodeProto, ctx: RuleContext): NodeProto[] | false | void;
}

export interface Rule {
  op: string;
  steps: Step[];
}

export interface RuleContext {
  /** the model's operator set before conversion */
  readonly from: number;
  /** `Conv "name"`, or the output name for unnamed nodes: how messages name the node */
  label(node: NodeProto): string;
  /** a name unused anywhere in the model */
  name(base: string): string;
  /** adds a 1-D int64 initializer (a 0-D one with `scalar`) and returns its name */
  int64(base: string, values: readonly (number | bigint)[], scalar?: boolean): string;
  /** adds a float32 initializer and returns its name */
  float32(base: string, values: ArrayLike<number>, dims: readonly number[]): string;
  /** adds an initializer (named after `tensor.name`, made unique) and returns its name */
  initializer(tensor: TensorProto): string;
  /**
   * A 0-D tensor holding `value` in the element type of `like`: a float32 initializer when `like` is
   * known to be float32, otherwise a CastLike node (returned in `nodes`, to run before the reader).
   */
  scalarLike(base: string, value: number, like: string): { name: string; nodes: NodeProto[] };
  node(opType: string, inputs: string[], outputs: string[], attributes?: AttributeProto[]): NodeProto;
  constant(tensor: string): TensorProto | undefined;
  rank(tensor: string): number | undefined;
  /** the channel count (axis 1) of an [N, C, ...] tensor, when the graph tells */
  channels(tensor: string): number | undefined;
  elemType(tensor: string): number | undefined;
  /** whether any node (in any graph) reads the tensor or a graph returns it */
  isRead(tensor: string): boolean;
  /** a plain-language fact for the user about this conversion */
  note(text: string): void;
  /** stops the conversion with a ModelError: `reason` says what cannot be converted, `todo` what to do */
  refuse(reason: string, todo: string): never;
}
