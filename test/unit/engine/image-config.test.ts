import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { configOnlyArchive } from '../../../src/engine/image-config.js';

async function entries(archive: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      out.set(header.name, Buffer.concat(chunks));
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', () => resolve());
    extract.on('error', reject);
    Readable.from([archive]).pipe(extract);
  });
  return out;
}

describe('configOnlyArchive', () => {
  const snapshot = {
    Architecture: 'arm64',
    Os: 'linux',
    Variant: 'v8',
    Created: '2026-01-02T03:04:05Z',
    Config: { Env: ['PATH=/bin', 'EDITION=2'], Cmd: ['old'], Labels: { 'io.skiff-core.snapshot-of': 'core' } },
    RootFS: { Type: 'layers', Layers: ['sha256:aaa', 'sha256:bbb'] },
  };
  const base = { Config: { Env: ['PATH=/bin'], Entrypoint: ['/lib/systemd/systemd'], Labels: { vendor: 'x' } } };

  it("keeps the snapshot's layers and takes the base image's config, plus the labels", async () => {
    const { archive, id } = await configOnlyArchive({
      target: 'skiff-core-snapshot/core:1',
      layersOf: snapshot,
      configOf: base,
      labels: { 'io.skiff-core.snapshot-of': 'core' },
      comment: 'snap',
    });
    const files = await entries(archive);
    const manifest = JSON.parse(files.get('manifest.json')!.toString());
    expect(manifest).toEqual([
      { Config: `${id.slice(7)}.json`, RepoTags: ['skiff-core-snapshot/core:1'], Layers: ['0/layer.tar', '1/layer.tar'] },
    ]);
    const configBytes = files.get(`${id.slice(7)}.json`)!;
    expect(`sha256:${createHash('sha256').update(configBytes).digest('hex')}`).toBe(id);
    const config = JSON.parse(configBytes.toString());
    expect(config).toMatchObject({
      architecture: 'arm64',
      os: 'linux',
      variant: 'v8',
      rootfs: { type: 'layers', diff_ids: ['sha256:aaa', 'sha256:bbb'] },
    });
    expect(config.config).toEqual({
      Env: ['PATH=/bin'],
      Entrypoint: ['/lib/systemd/systemd'],
      Labels: { vendor: 'x', 'io.skiff-core.snapshot-of': 'core' },
    });
    expect(config.history).toHaveLength(2);
    expect(config.history[1].created_by).toBe('snap');
    // No layer is carried: the engine already has them.
    expect([...files.keys()].sort()).toEqual([`${id.slice(7)}.json`, 'manifest.json']);
  });

  it('refuses an image without layers', async () => {
    await expect(configOnlyArchive({ target: 'a:1', layersOf: { RootFS: { Layers: [] } }, configOf: base })).rejects.toThrow('no layers');
  });
});
