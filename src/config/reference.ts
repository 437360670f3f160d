// The config reference as a Markdown table, generated from the schema's descriptions so the
// README cannot drift from what the program accepts (a unit test compares them).
import { configJsonSchema } from './schema.js';

interface JsonSchemaNode {
  description?: string;
  default?: unknown;
  type?: string;
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: JsonSchemaNode | boolean;
  propertyNames?: JsonSchemaNode;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  enum?: unknown[];
  required?: string[];
}

export function configReferenceMarkdown(): string {
  const rows: string[] = ['| key | default | meaning |', '| --- | --- | --- |'];
  const row = (node: JsonSchemaNode, path: string, required: boolean) => {
    const def = node.default === undefined ? (required ? '*required*' : '') : `\`${JSON.stringify(node.default)}\``;
    rows.push(`| \`${path}\` | ${def} | ${(node.description ?? '').replace(/\|/g, '\\|')} |`);
  };
  // Rows for the keys of an object node; maps (NAME → object) and lists descend into their items.
  const children = (node: JsonSchemaNode, path: string) => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const childPath = path ? `${path}.${key}` : key;
      row(child, childPath, node.required?.includes(key) ?? false);
      children(child, childPath);
    }
    if (typeof node.additionalProperties === 'object') children(node.additionalProperties, `${path}.NAME`);
    if (node.items) children(node.items, `${path}[]`);
  };
  children(configJsonSchema() as JsonSchemaNode, '');
  return rows.join('\n');
}
