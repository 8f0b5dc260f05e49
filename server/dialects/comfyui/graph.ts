// An API-format workflow checked as ComfyUI checks it before it queues one: every node's class
// exists, every required input is there, links point at existing nodes' outputs of the right type,
// values convert and lie in range, and no node depends on itself. Errors come in ComfyUI's shape:
// { error: { type, message, details, extra_info }, node_errors: { id: { errors, dependent_outputs, class_type } } }.

import { inputSpec, nodeClasses, type ChoiceLists } from './nodes/index.js';
import type { InputSpec } from './nodes/types.js';

export interface GraphNode {
  class_type: string;
  inputs: Record<string, unknown>;
}
export type Graph = Record<string, GraphNode>;

export interface ComfyError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

export interface NodeErrors {
  errors: ComfyError[];
  dependent_outputs: string[];
  class_type: string;
}

export type GraphCheck =
  | { ok: true; graph: Graph; outputs: string[]; nodeErrors: Record<string, NodeErrors> }
  | { ok: false; error: ComfyError; nodeErrors: Record<string, NodeErrors> | [] };

/** A link: [source node id, output index]. */
export function linkOf(value: unknown): [string, number] | undefined {
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [id, index] = value as unknown[];
  if ((typeof id !== 'string' && typeof id !== 'number') || typeof index !== 'number' || !Number.isInteger(index)) return undefined;
  return [String(id), index];
}

function error(type: string, message: string, details = '', extra_info: Record<string, unknown> = {}): ComfyError {
  return { type, message, details, extra_info };
}

/** A primitive input's value converted as ComfyUI converts it, or the error saying why not. */
function convertValue(name: string, value: unknown, spec: InputSpec): { value: unknown } | { error: ComfyError } {
  const [type, options = {}] = spec;
  const extra = { input_name: name, input_config: spec, received_value: value };
  if (Array.isArray(type)) {
    if (!type.includes(value as string)) {
      return { error: error('value_not_in_list', 'Value not in list', `${name}: '${String(value)}' not in ${JSON.stringify(type)}`, extra) };
    }
    return { value };
  }
  let converted: unknown = value;
  if (type === 'INT' || type === 'FLOAT') {
    converted = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof converted === 'boolean') converted = Number(converted);
    if (typeof converted !== 'number' || !Number.isFinite(converted)) {
      return { error: error('invalid_input_type', `Failed to convert an input value to a ${type} value`, `${name}, ${String(value)}`, extra) };
    }
    if (type === 'INT') converted = Math.trunc(converted as number);
    const { min, max } = options as { min?: number; max?: number };
    if (min !== undefined && (converted as number) < min) {
      return { error: error('value_smaller_than_min', `Value ${String(converted)} smaller than min of ${min}`, name, extra) };
    }
    if (max !== undefined && (converted as number) > max) {
      return { error: error('value_bigger_than_max', `Value ${String(converted)} bigger than max of ${max}`, name, extra) };
    }
  } else if (type === 'STRING') {
    if (typeof value === 'number' || typeof value === 'boolean') converted = String(value);
    if (typeof converted !== 'string') {
      return { error: error('invalid_input_type', 'Failed to convert an input value to a STRING value', `${name}, ${String(value)}`, extra) };
    }
  } else if (type === 'BOOLEAN') {
    if (typeof value !== 'boolean') {
      return { error: error('invalid_input_type', 'Failed to convert an input value to a BOOLEAN value', `${name}, ${String(value)}`, extra) };
    }
  } else {
    return { error: error('required_input_missing', `${name} must be linked to a node's ${type} output`, name, extra) };
  }
  return { value: converted };
}

/** Checks `prompt` (the body's `prompt`) against the node classes and the server's lists. */
export function checkGraph(prompt: unknown, lists: ChoiceLists): GraphCheck {
  if (typeof prompt !== 'object' || prompt === null || Array.isArray(prompt)) {
    return { ok: false, error: error('invalid_prompt', 'The prompt must be an object of nodes (ComfyUI\'s API format)'), nodeErrors: [] };
  }
  const nodes = prompt as Record<string, unknown>;
  for (const [id, value] of Object.entries(nodes)) {
    const node = value as Partial<GraphNode> | null;
    if (typeof node !== 'object' || node === null || typeof node.class_type !== 'string') {
      return {
        ok: false, error: error('invalid_prompt', 'Cannot execute because a node is missing the class_type property.', `Node ID '#${id}'`), nodeErrors: [],
      };
    }
    if (!Object.hasOwn(nodeClasses, node.class_type)) {
      return {
        ok: false,
        error: error('invalid_prompt', `Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`),
        nodeErrors: [],
      };
    }
    if (typeof node.inputs !== 'object' || node.inputs === null || Array.isArray(node.inputs)) {
      return { ok: false, error: error('invalid_prompt', `Node ${id} has no inputs object.`, `Node ID '#${id}'`), nodeErrors: [] };
    }
  }
  const graph = nodes as Graph;
  const outputIds = Object.keys(graph).filter((id) => nodeClasses[graph[id]!.class_type]!.outputNode);
  if (outputIds.length === 0) return { ok: false, error: error('prompt_no_outputs', 'Prompt has no outputs'), nodeErrors: [] };

  const checked: Graph = {};
  const errorsOf = new Map<string, ComfyError[]>();
  // Nodes whose check is under way (a link back to one is a cycle) or done (true: valid).
  const visiting = new Set<string>();
  const valid = new Map<string, boolean>();

  const checkNode = (id: string): boolean => {
    const known = valid.get(id);
    if (known !== undefined) return known;
    visiting.add(id);
    const node = graph[id]!;
    const definition = nodeClasses[node.class_type]!;
    const errors: ComfyError[] = [];
    const inputs: Record<string, unknown> = {};
    let sourcesValid = true;
    const specs: [string, InputSpec, boolean][] = [
      ...Object.entries(definition.required).map(([name, spec]) => [name, spec, true] as [string, InputSpec, boolean]),
      ...Object.entries(definition.optional ?? {}).map(([name, spec]) => [name, spec, false] as [string, InputSpec, boolean]),
    ];
    for (const [name, rawSpec, required] of specs) {
      const spec = inputSpec(node.class_type, name, rawSpec, lists);
      const value = node.inputs[name];
      if (value === undefined) {
        if (required) errors.push(error('required_input_missing', 'Required input is missing', name, { input_name: name }));
        continue;
      }
      const link = linkOf(value);
      if (!link) {
        const result = convertValue(name, value, spec);
        if ('error' in result) errors.push(result.error);
        else inputs[name] = result.value;
        continue;
      }
      const [source, index] = link;
      const sourceNode = graph[source];
      if (!sourceNode) {
        errors.push(error('bad_linked_input', `Input ${name} is linked to node ${source}, which is not in the prompt`, name,
          { input_name: name, linked_node: link }));
        continue;
      }
      if (visiting.has(source)) {
        errors.push(error('dependency_cycle', 'Dependency cycle detected', `${name}: node ${source} depends on node ${id}`,
          { input_name: name, linked_node: link }));
        continue;
      }
      const received = nodeClasses[sourceNode.class_type]!.outputs[index]?.[0];
      const expected = spec[0];
      if (received === undefined || Array.isArray(expected) || received !== expected) {
        errors.push(error('return_type_mismatch', 'Return type mismatch between linked nodes',
          `${name}, received_type(${received ?? 'none'}) mismatch input_type(${Array.isArray(expected) ? 'COMBO' : expected})`,
          { input_name: name, input_config: spec, received_type: received ?? null, linked_node: link }));
        continue;
      }
      // An invalid source makes this node invalid too; as in ComfyUI, only the source's own errors are reported.
      if (!checkNode(source)) sourcesValid = false;
      inputs[name] = [source, index];
    }
    visiting.delete(id);
    if (errors.length > 0) errorsOf.set(id, errors);
    const ok = errors.length === 0 && sourcesValid;
    if (ok) checked[id] = { class_type: node.class_type, inputs };
    valid.set(id, ok);
    return ok;
  };

  const goodOutputs: string[] = [];
  const nodeErrors: Record<string, NodeErrors> = {};
  for (const output of outputIds) {
    if (checkNode(output)) {
      goodOutputs.push(output);
      continue;
    }
    for (const id of dependencies(graph, output)) {
      const errors = errorsOf.get(id);
      if (!errors) continue;
      nodeErrors[id] ??= { errors, dependent_outputs: [], class_type: graph[id]!.class_type };
      nodeErrors[id].dependent_outputs.push(output);
    }
  }
  if (goodOutputs.length === 0) {
    const details = Object.values(nodeErrors).flatMap((node) => node.errors.map((e) => `${e.message}: ${e.details}`)).join('\n');
    return { ok: false, error: error('prompt_outputs_failed_validation', 'Prompt outputs failed validation', details), nodeErrors };
  }
  const needed = new Set(goodOutputs.flatMap((output) => dependencies(graph, output)));
  const runnable = Object.fromEntries(Object.entries(checked).filter(([id]) => needed.has(id)));
  return { ok: true, graph: runnable, outputs: goodOutputs, nodeErrors };
}

/** `id` and every node it reads from, each once, sources before the nodes that read them. */
export function dependencies(graph: Graph, id: string, seen = new Set<string>()): string[] {
  if (seen.has(id) || !graph[id]) return [];
  seen.add(id);
  const order: string[] = [];
  for (const value of Object.values(graph[id].inputs)) {
    const link = linkOf(value);
    if (link) order.push(...dependencies(graph, link[0], seen));
  }
  order.push(id);
  return order;
}
