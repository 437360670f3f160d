// An image made of one image's layers and another image's config, without copying a layer:
// `docker load` of an archive that holds only a manifest and a config skips every layer the
// engine already has (its image store looks each layer chain up before reading it). This is how
// a snapshot sheds the settings its container was created with: `docker commit` merges the
// container's Env/Cmd/Entrypoint/… into the image, and no API call removes them afterwards.
import { createHash } from 'node:crypto';
import * as tar from 'tar-stream';

/** What `GET /images/{id}/json` answers, as far as this needs it. */
export interface RawImageInspect {
  Architecture?: string;
  Os?: string;
  Variant?: string;
  Created?: string;
  Config?: Record<string, unknown> | null;
  RootFS?: { Type?: string; Layers?: string[] };
}

export interface ConfigOnlyArchive {
  /** The `docker load` archive. */
  archive: Buffer;
  /** The id the engine gives the loaded image (`sha256:` of its config). */
  id: string;
}

/**
 * The archive that tags `target` as an image with the layers of `layersOf` and the config of
 * `configOf`, plus `labels` (and a one-line `comment` in its history).
 */
export async function configOnlyArchive(opts: {
  target: string;
  layersOf: RawImageInspect;
  configOf: RawImageInspect;
  labels?: Record<string, string>;
  comment?: string;
}): Promise<ConfigOnlyArchive> {
  const layers = opts.layersOf.RootFS?.Layers ?? [];
  if (layers.length === 0) throw new Error('the image has no layers to keep');
  const created = opts.layersOf.Created ?? new Date().toISOString();
  const baseConfig = opts.configOf.Config ?? {};
  const config = {
    ...baseConfig,
    Labels: { ...((baseConfig['Labels'] as Record<string, string> | null) ?? {}), ...opts.labels },
  };
  const image = {
    architecture: opts.layersOf.Architecture ?? 'amd64',
    os: opts.layersOf.Os ?? 'linux',
    ...(opts.layersOf.Variant ? { variant: opts.layersOf.Variant } : {}),
    created,
    config,
    rootfs: { type: 'layers', diff_ids: layers },
    // One entry a layer: the engine checks that the history accounts for every layer.
    history: layers.map((_, i) => ({ created, created_by: i === layers.length - 1 && opts.comment ? opts.comment : `layer ${i + 1}` })),
  };
  const configJson = Buffer.from(JSON.stringify(image));
  const digest = createHash('sha256').update(configJson).digest('hex');
  const manifest = Buffer.from(
    JSON.stringify([{ Config: `${digest}.json`, RepoTags: [opts.target], Layers: layers.map((_, i) => `${i}/layer.tar`) }]),
  );

  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  pack.entry({ name: `${digest}.json`, mode: 0o644 }, configJson);
  pack.entry({ name: 'manifest.json', mode: 0o644 }, manifest);
  pack.finalize();
  await done;
  return { archive: Buffer.concat(chunks), id: `sha256:${digest}` };
}
