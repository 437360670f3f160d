// The backup file's framing: manifest first, the engine's archive after it unchanged, and any
// other input refused with a message that names the file.
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { openBackup, packBackup } from '../../../src/backup/archive.js';
import { MANIFEST_NAME, platformMismatch, type BackupManifest } from '../../../src/backup/manifest.js';

const manifest: BackupManifest = {
  format: 1,
  container: 'core',
  createdAt: '2026-12-07T10:00:00.000Z',
  skiffCoreVersion: '0.1.0',
  snapshot: 'skiff-core-snapshot/core:20261207-100000-000',
  image: 'debian:bookworm',
  platform: { os: 'linux', architecture: 'arm64' },
  entry: { image: 'debian:bookworm', cmd: ['sleep', '1'] },
};

async function tarOf(entries: { name: string; body: string | Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name }, e.body);
  pack.finalize();
  return collect(Readable.from(pack));
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

async function entriesOf(bytes: Buffer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out[header.name] = Buffer.concat(chunks).toString();
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(bytes);
  await done;
  return out;
}

describe('backup archive', () => {
  it('puts the manifest first and gives the engine back exactly its own entries', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const saved = await tarOf([
      { name: 'manifest.json', body: '[{"Config":"c.json"}]' },
      { name: 'blobs/sha256/abc', body: big },
    ]);
    const file = await collect(packBackup(manifest, Readable.from([saved])));
    expect(file.subarray(0, MANIFEST_NAME.length).toString()).toBe(MANIFEST_NAME);

    const opened = await openBackup(Readable.from([file]), 'core.tar');
    expect(opened.manifest).toEqual(manifest);
    const forEngine = await entriesOf(await collect(opened.images));
    expect(Object.keys(forEngine)).toEqual(['manifest.json', 'blobs/sha256/abc']);
    expect(forEngine['blobs/sha256/abc']).toBe(big.toString());
  });

  it('refuses what is not a backup, naming the file', async () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('hello\n'), /^x\.tar is not a skiff-core backup: /],
      [Buffer.alloc(0), /x\.tar is not a skiff-core backup: it is empty/],
      [await tarOf([{ name: 'manifest.json', body: '[]' }]), /its first entry is "manifest\.json", not skiff-core-backup\.json/],
      [await tarOf([{ name: MANIFEST_NAME, body: '{' }]), /skiff-core-backup\.json is not JSON/],
      [await tarOf([{ name: MANIFEST_NAME, body: JSON.stringify({ ...manifest, snapshot: 'evil:1' }) }]), /snapshot: /],
      [await tarOf([{ name: MANIFEST_NAME, body: Buffer.alloc(2 * 1024 * 1024, 32) }]), /skiff-core-backup\.json is \d+ bytes/],
    ];
    for (const [bytes, message] of cases) {
      await expect(openBackup(Readable.from([bytes]), 'x.tar')).rejects.toThrow(message);
    }
  });

  it('refuses another architecture and accepts the same one', () => {
    expect(platformMismatch(manifest, { os: 'linux', arch: 'arm64' })).toBeUndefined();
    expect(platformMismatch(manifest, { os: 'linux', arch: 'amd64' })).toBe(
      'this backup of core holds linux/arm64 files and this device runs linux/amd64: restore it on a device of the same architecture',
    );
  });
});
