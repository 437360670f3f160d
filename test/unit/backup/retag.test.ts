// A restore loads the backup's images under names of its own and drops every other name the
// archive carries, in each of the three lists an engine reads names from.
import { describe, expect, it } from 'vitest';
import { renameFor, rewriteNaming } from '../../../src/backup/retag.js';

const rename = renameFor({
  snapshot: 'skiff-core-snapshot/core:20261207-100000-000',
  snapshotAs: 'skiff-core-restore/core:20261207-100000-000-files',
  image: 'debian:bookworm',
  imageAs: 'skiff-core-restore/core:20261207-100000-000-image',
});
const parse = (b: Buffer) => JSON.parse(b.toString()) as unknown;

describe('backup/retag', () => {
  it('renames the snapshot and the image (however the archive spells them) and drops other names', () => {
    expect(rename('docker.io/library/debian:bookworm')).toBe('skiff-core-restore/core:20261207-100000-000-image');
    expect(rename('skiff-core-snapshot/core:20261207-100000-000')).toBe('skiff-core-restore/core:20261207-100000-000-files');
    expect(rename('skiffos/skiff-core-debian:latest')).toBeUndefined();
    expect(rename('not a ref!')).toBeUndefined();
  });

  it('rewrites manifest.json', () => {
    const manifest = [
      { Config: 'a.json', RepoTags: ['debian:bookworm', 'skiffos/skiff-core-debian:latest'], Layers: ['1/layer.tar'] },
      { Config: 'b.json', RepoTags: ['skiff-core-snapshot/core:20261207-100000-000'], Layers: ['1/layer.tar', '2/layer.tar'] },
    ];
    expect(parse(rewriteNaming('manifest.json', Buffer.from(JSON.stringify(manifest)), rename))).toEqual([
      { Config: 'a.json', RepoTags: ['skiff-core-restore/core:20261207-100000-000-image'], Layers: ['1/layer.tar'] },
      { Config: 'b.json', RepoTags: ['skiff-core-restore/core:20261207-100000-000-files'], Layers: ['1/layer.tar', '2/layer.tar'] },
    ]);
  });

  it('rewrites repositories and index.json', () => {
    const repositories = { debian: { bookworm: 'id1' }, 'skiffos/skiff-core-debian': { latest: 'id1' } };
    expect(parse(rewriteNaming('repositories', Buffer.from(JSON.stringify(repositories)), rename))).toEqual({
      'skiff-core-restore/core': { '20261207-100000-000-image': 'id1' },
    });
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          digest: 'sha256:1',
          annotations: { 'io.containerd.image.name': 'docker.io/library/debian:bookworm', 'org.opencontainers.image.ref.name': 'bookworm' },
        },
        {
          digest: 'sha256:2',
          annotations: {
            'io.containerd.image.name': 'docker.io/skiffos/skiff-core-debian:latest',
            'org.opencontainers.image.ref.name': 'latest',
          },
        },
      ],
    };
    expect(parse(rewriteNaming('index.json', Buffer.from(JSON.stringify(index)), rename))).toEqual({
      schemaVersion: 2,
      manifests: [
        {
          digest: 'sha256:1',
          annotations: {
            'io.containerd.image.name': 'skiff-core-restore/core:20261207-100000-000-image',
            'org.opencontainers.image.ref.name': '20261207-100000-000-image',
          },
        },
        { digest: 'sha256:2', annotations: {} },
      ],
    });
  });

  it('names nothing from a list that is not JSON or not the expected shape', () => {
    expect(parse(rewriteNaming('manifest.json', Buffer.from('{'), rename))).toEqual([]);
    expect(parse(rewriteNaming('manifest.json', Buffer.from('{"a":1}'), rename))).toEqual([]);
    expect(parse(rewriteNaming('repositories', Buffer.from('[1]'), rename))).toEqual({});
    expect(parse(rewriteNaming('index.json', Buffer.from('null'), rename))).toEqual({ schemaVersion: 2, manifests: [] });
  });
});
