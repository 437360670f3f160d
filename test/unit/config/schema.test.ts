import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { DEFAULT_CONFIG_TEXT } from '../../../src/config/default-config.js';
import { configJsonSchema } from '../../../src/config/schema.js';

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  return ajv.compile(configJsonSchema());
}

describe('config/schema JSON Schema', () => {
  it('accepts the default config', () => {
    const validate = validator();
    const ok = validate(parse(DEFAULT_CONFIG_TEXT));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('accepts the every-key fixture', () => {
    const validate = validator();
    const text = readFileSync(new URL('../../fixtures/config/every-key.yaml', import.meta.url), 'utf8');
    expect(validate(parse(text))).toBe(true);
  });

  it('rejects unknown keys and wrong types, as an editor would show them', () => {
    const validate = validator();
    expect(validate({ containers: { c: { image: 'x', tmpfs: {} } } })).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({ instancePath: '/containers/c', keyword: 'additionalProperties' });
    expect(validate({ containers: { c: { image: 'x', tty: 'yes' } } })).toBe(false);
    expect(validate({ users: { u: {} } })).toBe(false);
  });

  it('documents keys for editors', () => {
    const schema = JSON.stringify(configJsonSchema());
    expect(schema).toContain('Signal that stops PID 1');
    expect(schema).toContain('a null value passes the argument without a value');
  });
});
